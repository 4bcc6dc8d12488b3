"""The distributed engine: a Qdrant server or cluster reached through qdrant-client.

The same code runs against qdrant-client's local mode (``QdrantClient(path=...)``), which
the tests use; the differences are handled here:

- Local mode warns that payload indexes have no effect, so they are created on a server only.
- A missing collection is ``UnexpectedResponse`` 404 from a server and ``ValueError``
  ("Collection ... not found") from local mode; both become NotFound. A wrong vector
  dimension is 400 from a server and ``ValueError`` ("Wrong input") locally: InvalidInput.
- The server drops a hit whose score equals ``score_threshold``, local mode keeps it: the
  engine gets a slightly lower threshold and ``score >= threshold`` is applied here.

Connection failures and timeouts (``ResponseHandlingException`` wrapping httpx's errors, or
httpx's own) and 5xx answers become Unavailable, naming the URL and what to check. The
client is built for REST (no gRPC), so no gRPC errors arise. Any other error propagates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from retrieval.errors import Conflict, InvalidInput, NotFound, Unavailable
from retrieval.store.base import ChunkPayload, ChunkPoint, MetadataFilter, StoredHit

THRESHOLD_SLACK = 1e-6
"""The engine gets a slightly lower threshold; the exact rule is applied on its scores."""


class ServerVectorStore:
    """VectorStore on a Qdrant server (or qdrant-client's local mode in tests)."""

    def __init__(self, *, client: QdrantClient) -> None:
        self._client = client
        options = client.init_options
        self._is_local = options.get("path") is not None or options.get("location") == ":memory:"
        self._where = _describe_location(options)

    def create_collection(self, name: str, *, dimension: int) -> None:
        with self._translate_errors(name):
            if self._client.collection_exists(name):
                self._check_dimension(name, dimension)
                return
            try:
                self._client.create_collection(
                    name,
                    vectors_config=models.VectorParams(
                        size=dimension, distance=models.Distance.COSINE
                    ),
                )
            except (UnexpectedResponse, ValueError):
                # Created meanwhile by another process: the server answers 409, local mode
                # raises ValueError("Collection ... already exists").
                if not self._client.collection_exists(name):
                    raise
                self._check_dimension(name, dimension)
                return
            if not self._is_local:
                self._client.create_payload_index(
                    name, "document_id", models.PayloadSchemaType.KEYWORD, wait=True
                )
                self._client.create_payload_index(
                    name, "chunk_index", models.PayloadSchemaType.INTEGER, wait=True
                )

    def drop_collection(self, name: str) -> None:
        with self._translate_errors(name):
            self._client.delete_collection(name)

    def collection_exists(self, name: str) -> bool:
        with self._translate_errors(name):
            return self._client.collection_exists(name)

    def upsert(self, name: str, points: Sequence[ChunkPoint]) -> None:
        structs = [
            models.PointStruct(
                id=point.id, vector=_as_floats(point.vector), payload=point.payload.to_dict()
            )
            for point in points
        ]
        with self._translate_errors(name):
            if not structs:
                self._require_collection(name)
                return
            self._client.upsert(name, points=structs, wait=True)

    def delete_document(self, name: str, document_id: str, *, from_chunk: int = 0) -> None:
        selector = models.FilterSelector(
            filter=models.Filter(
                must=[
                    models.FieldCondition(
                        key="document_id", match=models.MatchValue(value=document_id)
                    ),
                    models.FieldCondition(key="chunk_index", range=models.Range(gte=from_chunk)),
                ]
            )
        )
        with self._translate_errors(name):
            self._client.delete(name, points_selector=selector, wait=True)

    def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        top_k: int,
        threshold: float | None = None,
        metadata_filter: MetadataFilter | None = None,
    ) -> list[StoredHit]:
        with self._translate_errors(name):
            if top_k < 1:
                self._require_collection(name)
                return []
            response = self._client.query_points(
                name,
                query=_as_floats(vector),
                limit=top_k,
                query_filter=_metadata_filter(metadata_filter),
                score_threshold=None if threshold is None else threshold - THRESHOLD_SLACK,
                with_payload=True,
            )
        return [
            StoredHit(
                id=str(point.id),
                score=float(point.score),
                payload=ChunkPayload.from_dict(point.payload or {}),
            )
            for point in response.points
            if threshold is None or point.score >= threshold
        ]

    def count(self, name: str, *, document_id: str | None = None) -> int:
        condition = (
            None
            if document_id is None
            else models.Filter(
                must=[
                    models.FieldCondition(
                        key="document_id", match=models.MatchValue(value=document_id)
                    )
                ]
            )
        )
        with self._translate_errors(name):
            return self._client.count(name, count_filter=condition, exact=True).count

    def close(self) -> None:
        self._client.close()

    def _require_collection(self, name: str) -> None:
        if not self._client.collection_exists(name):
            raise NotFound(f"Collection {name!r} does not exist; create it first.")

    def _check_dimension(self, name: str, dimension: int) -> None:
        vectors = self._client.get_collection(name).config.params.vectors
        existing = vectors.size if isinstance(vectors, models.VectorParams) else None
        if existing != dimension:
            raise Conflict(
                f"Collection {name!r} exists with dimension {existing}, not {dimension}; "
                "drop it or use the model it was built with."
            )

    @contextmanager
    def _translate_errors(self, name: str) -> Iterator[None]:
        """Turn qdrant-client's errors (server and local kinds) into retrieval.errors."""
        try:
            yield
        except UnexpectedResponse as exc:
            status = exc.status_code or 0
            detail = exc.content.decode(errors="replace")[:500]
            if status == 404:
                raise NotFound(f"Collection {name!r} does not exist; create it first.") from exc
            if status in {400, 422}:
                raise InvalidInput(f"Qdrant refused the request on {name!r}: {detail}") from exc
            if status == 409:
                raise Conflict(f"Qdrant reports a conflict on {name!r}: {detail}") from exc
            if status in {401, 403}:
                raise Unavailable(
                    f"Qdrant at {self._where} refused the credentials (HTTP {status}); "
                    "check SEMSEARCH_QDRANT_API_KEY."
                ) from exc
            if status >= 500:
                raise Unavailable(
                    f"Qdrant at {self._where} failed (HTTP {status}): {detail}; "
                    "check the server's health and logs, then retry."
                ) from exc
            raise
        except (ResponseHandlingException, httpx.TransportError) as exc:
            raise Unavailable(
                f"Qdrant at {self._where} cannot be reached ({_reason(exc)}); check that the "
                "server is running and reachable, and SEMSEARCH_QDRANT_URL and "
                "SEMSEARCH_QDRANT_TIMEOUT_S."
            ) from exc
        except ValueError as exc:
            message = str(exc)
            if "not found" in message and "Collection" in message:
                raise NotFound(f"Collection {name!r} does not exist; create it first.") from exc
            if message.startswith("Wrong input"):
                raise InvalidInput(f"Qdrant refused the request on {name!r}: {message}") from exc
            raise


def _describe_location(options: dict[str, object]) -> str:
    for key in ("url", "host", "location"):
        value = options.get(key)
        if value:
            return str(value)
    if options.get("path") is not None:
        return f"local folder {options['path']}"
    return "the configured address"


def _reason(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    shown = cause if isinstance(cause, Exception) else exc
    return f"{type(shown).__name__}: {shown}" if str(shown) else type(shown).__name__


def _as_floats(vector: Sequence[float]) -> list[float]:
    tolist = getattr(vector, "tolist", None)
    if callable(tolist):  # a numpy row: one C-level conversion instead of one per element
        return list(tolist())
    return [float(value) for value in vector]


def _metadata_filter(metadata_filter: MetadataFilter | None) -> models.Filter | None:
    if not metadata_filter:
        return None
    conditions: list[models.Condition] = []
    for key, value in metadata_filter.items():
        path = f"metadata.{key}"
        if isinstance(value, float):
            # MatchValue takes str, int and bool only; a closed range is float equality.
            conditions.append(
                models.FieldCondition(key=path, range=models.Range(gte=value, lte=value))
            )
        else:
            conditions.append(models.FieldCondition(key=path, match=models.MatchValue(value=value)))
    return models.Filter(must=conditions)
