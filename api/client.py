"""A typed httpx client of the HTTP API, sync and async; the CLI's remote commands use it.

Every endpoint is written once, in `Endpoints`, as a `Call`: the request to send and how to read
its answer into the API's own response models (api/schemas.py). `SemsearchClient` (over
httpx.Client) and `AsyncSemsearchClient` (over httpx.AsyncClient) only send calls; each of
their endpoint methods is the same `Endpoints` function bound to its sender.

    with SemsearchClient(base_url="http://127.0.0.1:8000") as client:
        job = client.ingest("kb", [DocumentIn(id="pwd", text="To reset your password, ...")])
        client.wait_for_job(job.id, timeout_s=120)
        hits = client.search("kb", "forgot my password", metadata_filter={"lang": "en"}).hits

The errors, all raised instead of httpx's own:

    ApiError            the call gave no usable answer; `status_code` (None without an answer)
    │                   and `detail`, the service's one-line message
    ├── ServiceUnreachable
    │                   no answer at all: connection refused, DNS, timeout, broken connection
    └── JobTimeout      wait_for_job: the job was still queued or running at the deadline

A request that the API's own schema refuses (an empty query, top_k 0) raises pydantic's
ValidationError before anything is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Concatenate, Generic, Literal, ParamSpec, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from api.schemas import (
    CalibrateRequest,
    CalibrationPublic,
    CollectionCreate,
    CollectionList,
    CollectionPublic,
    CollectionUpdate,
    DocumentIn,
    DocumentList,
    DocumentPublic,
    IngestRequest,
    JobPublic,
    Mode,
    ModelList,
    ReconcileReportPublic,
    ReconcileRequest,
    SearchRequest,
    SearchResponse,
    SimilarityInputs,
    SimilarityRequest,
)

T = TypeVar("T")
Answer = TypeVar("Answer", bound=BaseModel)
P = ParamSpec("P")

DEFAULT_TIMEOUT_S = 60.0
"""How long one request may take; calibration of many samples needs more."""
DEFAULT_JOB_TIMEOUT_S = 600.0
FINISHED_JOB_STATUSES = frozenset({"succeeded", "failed"})
MAX_DETAIL_CHARS = 500
"""An error body that is not the API's JSON (a proxy's HTML page) is cut to this much."""


class ApiError(Exception):
    """Raised when a call gives no usable answer: an error status (`status_code`, `detail` the
    service's message), or no answer at all (subclasses, `status_code` None)."""

    def __init__(self, status_code: int | None, detail: str) -> None:
        super().__init__(detail if status_code is None else f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class ServiceUnreachable(ApiError):
    """Raised when no HTTP answer came: nothing listens at the URL, or the connection failed or
    timed out. `detail` names the URL and how to start a service."""

    def __init__(self, detail: str) -> None:
        super().__init__(None, detail)


class JobTimeout(ApiError):
    """Raised by wait_for_job when the job has not finished by the deadline; it keeps running
    on the service. `job` is how it stood at the last poll."""

    def __init__(self, job: JobPublic, timeout_s: float) -> None:
        super().__init__(
            None,
            f"job {job.id} is still {job.status} after {timeout_s:g} s "
            f"({job.documents_done}/{job.documents_total} documents); it keeps running",
        )
        self.job = job


class EmbeddingData(BaseModel):
    embedding: list[float]
    index: int


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class Embeddings(BaseModel):
    """The answer of the OpenAI-compatible POST /v1/embeddings."""

    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage

    @property
    def vectors(self) -> list[list[float]]:
        """One vector per input text, in the order the texts were given."""
        return [item.embedding for item in sorted(self.data, key=lambda item: item.index)]


_SCORES = TypeAdapter(list[float])


def _reads(model: type[Answer]) -> Callable[[httpx.Response], Answer]:
    return lambda response: model.model_validate_json(response.content)


def _reads_nothing(_: httpx.Response) -> None:
    return None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request of the API and how to read its answer: the part both clients share."""

    method: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str
    read: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, str | int] = field(default_factory=dict)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        return http.build_request(self.method, self.path, json=self.json, params=self.params)

    def answer(self, response: httpx.Response) -> T:
        """The answer read into its type; ApiError for an error status or a body that is not
        this API's (a --url that points at some other server)."""
        if response.is_error:
            raise ApiError(response.status_code, _error_detail(response))
        try:
            return self.read(response)
        except ValueError as exc:  # pydantic's ValidationError too
            raise ApiError(
                response.status_code,
                f"{response.request.url} answered something that is not the semsearch API's "
                f"answer; is --url / SEMSEARCH_URL a semsearch service? ({_first_line(exc)})",
            ) from exc


def _error_detail(response: httpx.Response) -> str:
    """The API's `detail` (`error.message` under /v1, OpenAI's shape), or for a body that is
    not the API's JSON, the status line."""
    try:
        body = response.json()
        detail = body.get("detail") or body.get("error", {}).get("message")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return " ".join(detail.split())[:MAX_DETAIL_CHARS]
    return f"HTTP {response.status_code} {response.reason_phrase} from {response.request.url}"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _unreachable(base_url: httpx.URL, error: httpx.TransportError) -> ServiceUnreachable:
    if isinstance(error, httpx.TimeoutException):
        return ServiceUnreachable(
            f"the semsearch service at {base_url} did not answer within the client's timeout "
            f"({type(error).__name__}); it may be busy: try again"
        )
    return ServiceUnreachable(
        f"cannot reach the semsearch service at {base_url} ({_first_line(error)}); start it "
        "with `semsearch serve` or point --url / SEMSEARCH_URL at it"
    )


def _segment(value: str) -> str:
    """A path parameter, escaped so that '/', '?', '#' or '..' stay inside it."""
    return quote(value, safe="")


class Endpoints:
    """Every call of the HTTP API, one function each, mirroring api/routes/."""

    @staticmethod
    def list_collections() -> Call[CollectionList]:
        """The collections the API key may see."""
        return Call("GET", "/collections", _reads(CollectionList))

    @staticmethod
    def get_collection(name: str) -> Call[CollectionPublic]:
        return Call("GET", f"/collections/{_segment(name)}", _reads(CollectionPublic))

    @staticmethod
    def create_collection(body: CollectionCreate) -> Call[CollectionPublic]:
        return Call(
            "POST",
            "/collections",
            _reads(CollectionPublic),
            json=body.model_dump(mode="json", exclude_none=True),
        )

    @staticmethod
    def update_collection(name: str, body: CollectionUpdate) -> Call[CollectionPublic]:
        """Change the fields set in `body`; a new model, term map or chunking starts a
        re-index job (`reindex.job_id` of the answer)."""
        return Call(
            "PATCH",
            f"/collections/{_segment(name)}",
            _reads(CollectionPublic),
            json=body.model_dump(mode="json", exclude_none=True),
        )

    @staticmethod
    def delete_collection(name: str) -> Call[None]:
        """Delete the collection, its documents and its vectors."""
        return Call("DELETE", f"/collections/{_segment(name)}", _reads_nothing)

    @staticmethod
    def ingest(collection: str, documents: Sequence[DocumentIn]) -> Call[JobPublic]:
        """Submit documents for indexing; the answer is the job (see wait_for_job)."""
        return Call(
            "POST",
            f"/collections/{_segment(collection)}/documents",
            _reads(JobPublic),
            json=IngestRequest(documents=list(documents)).model_dump(mode="json"),
        )

    @staticmethod
    def reindex_collection(name: str) -> Call[JobPublic]:
        """Re-embed the collection from its stored text with its current model, term map and
        chunking; the answer is the job (see wait_for_job)."""
        return Call("POST", f"/collections/{_segment(name)}/reindex", _reads(JobPublic))

    @staticmethod
    def reconcile_collection(name: str, *, dry_run: bool = False) -> Call[ReconcileReportPublic]:
        """Compare the collection's vectors with its catalog and, unless `dry_run`, repair
        them; a re-indexing job, if one was queued, is the report's `job_id`."""
        return Call(
            "POST",
            f"/collections/{_segment(name)}/reconcile",
            _reads(ReconcileReportPublic),
            json=ReconcileRequest(dry_run=dry_run).model_dump(mode="json"),
        )

    @staticmethod
    def list_documents(collection: str, *, offset: int = 0, limit: int = 50) -> Call[DocumentList]:
        """One page of the collection's documents, ordered by id; `count` counts them all."""
        return Call(
            "GET",
            f"/collections/{_segment(collection)}/documents",
            _reads(DocumentList),
            params={"offset": offset, "limit": limit},
        )

    @staticmethod
    def get_document(collection: str, document_id: str) -> Call[DocumentPublic]:
        return Call(
            "GET",
            f"/collections/{_segment(collection)}/documents/{quote(document_id, safe='/')}",
            _reads(DocumentPublic),
        )

    @staticmethod
    def delete_document(collection: str, document_id: str) -> Call[None]:
        """Delete the document and every chunk of it."""
        return Call(
            "DELETE",
            f"/collections/{_segment(collection)}/documents/{quote(document_id, safe='/')}",
            _reads_nothing,
        )

    @staticmethod
    def get_job(job_id: str) -> Call[JobPublic]:
        return Call("GET", f"/jobs/{_segment(job_id)}", _reads(JobPublic))

    @staticmethod
    def search(
        collection: str,
        query: str,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        metadata_filter: Mapping[str, Any] | None = None,
        mode: Mode | None = None,
        group_by: Literal["document"] | None = None,
        unit: Literal["passage", "document"] = "passage",
    ) -> Call[SearchResponse]:
        """The hits scoring at or above the threshold (the collection's, or `threshold`);
        `metadata_filter` is the API's `filter`: {"field": value} or Qdrant-style must/should;
        `unit` "document" ranks whole documents by their mean vectors."""
        body = SearchRequest(
            query=query,
            top_k=top_k,
            threshold=threshold,
            filter=dict(metadata_filter) if metadata_filter is not None else None,
            mode=mode,
            group_by=group_by,
            unit=unit,
        )
        return Call(
            "POST",
            f"/collections/{_segment(collection)}/search",
            _reads(SearchResponse),
            json=body.model_dump(mode="json", exclude_none=True),
        )

    @staticmethod
    def similarity(
        source_sentence: str, sentences: Sequence[str], *, model: str | None = None
    ) -> Call[list[float]]:
        """One score per sentence: the cosine of `source_sentence` embedded as a query and the
        sentence embedded as a stored chunk, under `model` (default: the service's)."""
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        body = SimilarityRequest(
            inputs=SimilarityInputs(source_sentence=source_sentence, sentences=texts), model=model
        )
        return Call(
            "POST",
            "/similarity",
            lambda response: _SCORES.validate_json(response.content),
            json=body.model_dump(mode="json", exclude_none=True),
        )

    @staticmethod
    def list_models() -> Call[ModelList]:
        """The registered embedding models; the one with `default` set is the service's."""
        return Call("GET", "/models", _reads(ModelList))

    @staticmethod
    def embeddings(texts: Sequence[str], model: str) -> Call[Embeddings]:
        """The OpenAI-compatible POST /v1/embeddings: one unit-length vector per text, each
        text embedded as given (a model with prefixes reads `passage: ...` as a passage and
        anything else as a query)."""
        return Call(
            "POST",
            "/v1/embeddings",
            _reads(Embeddings),
            json={"input": list(texts), "model": model, "encoding_format": "float"},
        )

    @staticmethod
    def calibrate(collection: str, body: CalibrateRequest) -> Call[CalibrationPublic]:
        """Choose the collection's threshold from labelled samples (see api/schemas.py)."""
        return Call(
            "POST",
            f"/collections/{_segment(collection)}/calibrate",
            _reads(CalibrationPublic),
            json=body.model_dump(mode="json", exclude_none=True),
        )

    @staticmethod
    def calibration_png(collection: str) -> Call[bytes]:
        """The last calibration's curve as a PNG image."""
        return Call(
            "GET",
            f"/collections/{_segment(collection)}/calibration.png",
            lambda response: response.content,
        )


def _default_model(models: ModelList) -> str:
    return next(model.name for model in models.models if model.default)


class _JobClock:
    """When wait_for_job polls next, and when it gives up (never, for timeout_s None)."""

    def __init__(self, timeout_s: float | None, poll_s: float) -> None:
        if (timeout_s is not None and timeout_s <= 0) or poll_s <= 0:
            raise ValueError("timeout_s and poll_s must be positive")
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.started = time.monotonic()

    def finished(self, job: JobPublic) -> bool:
        """Whether `job` has ended; JobTimeout when it has not and time is up."""
        if job.status in FINISHED_JOB_STATUSES:
            return True
        if self.timeout_s is not None and self._elapsed_s() >= self.timeout_s:
            raise JobTimeout(job, self.timeout_s)
        return False

    def pause_s(self) -> float:
        if self.timeout_s is None:
            return self.poll_s
        return max(0.0, min(self.poll_s, self.timeout_s - self._elapsed_s()))

    def _elapsed_s(self) -> float:
        return time.monotonic() - self.started


JobProgress = Callable[[JobPublic], None]
"""Called with the job after every poll of wait_for_job (a progress bar, a log line)."""


def _sends(build: Callable[P, Call[T]]) -> Callable[Concatenate[SemsearchClient, P], T]:
    @wraps(build)
    def method(self: SemsearchClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(build(*args, **kwargs))

    return method


def _sends_async(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncSemsearchClient, P], Coroutine[Any, Any, T]]:
    @wraps(build)
    async def method(self: AsyncSemsearchClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    return method


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class SemsearchClient:
    """The API over a blocking httpx.Client: one method per endpoint (see `Endpoints`)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, headers=_headers(api_key))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call[T]) -> T:
        """Send one call and read its answer; the errors of this module, never httpx's."""
        try:
            response = self._http.send(call.request(self._http))
        except httpx.TransportError as exc:
            raise _unreachable(self._http.base_url, exc) from exc
        return call.answer(response)

    list_collections = _sends(Endpoints.list_collections)
    get_collection = _sends(Endpoints.get_collection)
    create_collection = _sends(Endpoints.create_collection)
    update_collection = _sends(Endpoints.update_collection)
    delete_collection = _sends(Endpoints.delete_collection)
    reindex_collection = _sends(Endpoints.reindex_collection)
    reconcile_collection = _sends(Endpoints.reconcile_collection)
    ingest = _sends(Endpoints.ingest)
    list_documents = _sends(Endpoints.list_documents)
    get_document = _sends(Endpoints.get_document)
    delete_document = _sends(Endpoints.delete_document)
    get_job = _sends(Endpoints.get_job)
    search = _sends(Endpoints.search)
    similarity = _sends(Endpoints.similarity)
    list_models = _sends(Endpoints.list_models)
    calibrate = _sends(Endpoints.calibrate)
    calibration_png = _sends(Endpoints.calibration_png)

    def wait_for_job(
        self,
        job_id: str,
        *,
        timeout_s: float | None = DEFAULT_JOB_TIMEOUT_S,
        poll_s: float = 0.5,
        on_progress: JobProgress | None = None,
    ) -> JobPublic:
        """Poll the job until it succeeds or fails and return it (a failed job is returned,
        not raised: see its `error`); JobTimeout if it is still going after `timeout_s` (None:
        no limit)."""
        clock = _JobClock(timeout_s, poll_s)
        while True:
            job = self.get_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if clock.finished(job):
                return job
            time.sleep(clock.pause_s())

    def embed(self, texts: Sequence[str], *, model: str | None = None) -> Embeddings:
        """Embed texts through POST /v1/embeddings under `model` (default: the service's
        default model, read from GET /models)."""
        name = model or _default_model(self.list_models())
        return self.send(Endpoints.embeddings(texts, name))


class AsyncSemsearchClient:
    """The API over an httpx.AsyncClient: the methods of SemsearchClient, awaited."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, headers=_headers(api_key)
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Send one call and read its answer; the errors of this module, never httpx's."""
        try:
            response = await self._http.send(call.request(self._http))
        except httpx.TransportError as exc:
            raise _unreachable(self._http.base_url, exc) from exc
        return call.answer(response)

    list_collections = _sends_async(Endpoints.list_collections)
    get_collection = _sends_async(Endpoints.get_collection)
    create_collection = _sends_async(Endpoints.create_collection)
    update_collection = _sends_async(Endpoints.update_collection)
    delete_collection = _sends_async(Endpoints.delete_collection)
    reindex_collection = _sends_async(Endpoints.reindex_collection)
    reconcile_collection = _sends_async(Endpoints.reconcile_collection)
    ingest = _sends_async(Endpoints.ingest)
    list_documents = _sends_async(Endpoints.list_documents)
    get_document = _sends_async(Endpoints.get_document)
    delete_document = _sends_async(Endpoints.delete_document)
    get_job = _sends_async(Endpoints.get_job)
    search = _sends_async(Endpoints.search)
    similarity = _sends_async(Endpoints.similarity)
    list_models = _sends_async(Endpoints.list_models)
    calibrate = _sends_async(Endpoints.calibrate)
    calibration_png = _sends_async(Endpoints.calibration_png)

    async def wait_for_job(
        self,
        job_id: str,
        *,
        timeout_s: float | None = DEFAULT_JOB_TIMEOUT_S,
        poll_s: float = 0.5,
        on_progress: JobProgress | None = None,
    ) -> JobPublic:
        """Poll the job until it succeeds or fails and return it (a failed job is returned,
        not raised: see its `error`); JobTimeout if it is still going after `timeout_s` (None:
        no limit)."""
        clock = _JobClock(timeout_s, poll_s)
        while True:
            job = await self.get_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if clock.finished(job):
                return job
            await asyncio.sleep(clock.pause_s())

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> Embeddings:
        """Embed texts through POST /v1/embeddings under `model` (default: the service's
        default model, read from GET /models)."""
        name = model or _default_model(await self.list_models())
        return await self.send(Endpoints.embeddings(texts, name))
