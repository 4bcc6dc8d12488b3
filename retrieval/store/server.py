"""The distributed engine: a Qdrant server or cluster reached through qdrant-client.

The same code runs against qdrant-client's local mode (``QdrantClient(path=...)``), which
the tests use; the differences are handled here:

- Local mode warns that payload indexes have no effect, so they are created on a server only.
- A missing collection is ``UnexpectedResponse`` 404 from a server and ``ValueError``
  ("Collection ... not found") from local mode; both become NotFound. A wrong vector
  dimension is 400 from a server and ``ValueError`` ("Wrong input") locally: InvalidInput.
- The server drops a hit whose score equals ``score_threshold``, local mode keeps it: the
  engine gets a slightly lower threshold and ``score >= threshold`` is applied here.
- Hybrid search with equal legs fuses with ``FusionQuery(RRF)``, whose k is Qdrant's default
  2 (RRF_K); a weighted fusion needs ``RrfQuery`` with weights, which servers before 1.17
  refuse (docker-compose runs 1.17).
  IDF statistics use the default (collection-wide) scope for the same reason: a server
  reads them from its sparse index, which counts deleted points until its optimiser
  rewrites their segment, where local mode (and the Edge engine) count live points only.
  The two agree on data that was only ever added to.
- Grouping by document over-fetches (store/base.py), as on Edge, so that both engines give
  the same answers; the dense score of a hybrid hit is computed from the dense vector the
  fused query returns with it.

Connection failures and timeouts (``ResponseHandlingException`` wrapping httpx's errors, or
httpx's own) and 5xx answers become Unavailable, naming the URL and what to check. The
client is built for REST (no gRPC), so no gRPC errors arise. Any other error propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from retrieval.errors import Conflict, InvalidInput, NotFound, Unavailable
from retrieval.filters import And, DateRange, Filter, Match, MatchAny, Not, Or, Range
from retrieval.hnsw import BeamsBySize, HnswPlan
from retrieval.store import base
from retrieval.store.base import (
    DENSE_VECTOR,
    DOCUMENT_VECTOR,
    LEXICAL_VECTOR,
    RRF_K,
    ChunkPoint,
    PayloadIndexKind,
    SparseVector,
    StoredHit,
)

BEAM_REFRESH_S = 60.0
"""How long the size a collection's search beam was chosen for is trusted."""


class ServerVectorStore:
    """VectorStore on a Qdrant server (or qdrant-client's local mode in tests)."""

    def __init__(self, *, client: QdrantClient, hnsw: HnswPlan | None = None) -> None:
        """`hnsw`: the graph of new collections and the beam of dense searches (None: the
        server's defaults); local mode searches exactly and ignores the beam."""
        self._client = client
        options = client.init_options
        self._is_local = options.get("path") is not None or options.get("location") == ":memory:"
        self._hnsw = hnsw
        self._beams = None if hnsw is None else BeamsBySize(hnsw, refresh_s=BEAM_REFRESH_S)
        self._where = _describe_location(options)
        self._document_vectors: dict[str, bool] = {}
        """Collection name -> whether it has DOCUMENT_VECTOR (read once per collection)."""

    def create_collection(self, name: str, *, dimension: int) -> None:
        with self._translate_errors(name):
            if self._client.collection_exists(name):
                self._check_dimension(name, dimension)
                return
            try:
                self._client.create_collection(
                    name,
                    vectors_config={
                        DENSE_VECTOR: models.VectorParams(
                            size=dimension, distance=models.Distance.COSINE
                        ),
                        # Read by document-unit searches only: kept out of memory.
                        DOCUMENT_VECTOR: models.VectorParams(
                            size=dimension, distance=models.Distance.COSINE, on_disk=True
                        ),
                    },
                    sparse_vectors_config={
                        LEXICAL_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                    hnsw_config=None if self._hnsw is None else _graph(self._hnsw),
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
        self._document_vectors.pop(name, None)
        if self._beams is not None:
            self._beams.forget(name)
        with self._translate_errors(name):
            self._client.delete_collection(name)

    def has_document_vectors(self, name: str) -> bool:
        known = self._document_vectors.get(name)
        if known is None:
            with self._translate_errors(name):
                vectors = self._client.get_collection(name).config.params.vectors
            known = isinstance(vectors, dict) and DOCUMENT_VECTOR in vectors
            self._document_vectors[name] = known
        return known

    def collection_exists(self, name: str) -> bool:
        with self._translate_errors(name):
            return self._client.collection_exists(name)

    def upsert(self, name: str, points: Sequence[ChunkPoint]) -> None:
        structs = [
            models.PointStruct(id=point.id, vector=_vectors(point), payload=point.payload.to_dict())
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

    def delete_documents(self, name: str, document_ids: Sequence[str]) -> None:
        with self._translate_errors(name):
            self._require_collection(name)
            for batch in base.id_batches(document_ids):
                selector = models.FilterSelector(
                    filter=models.Filter(
                        must=[
                            models.FieldCondition(
                                key="document_id", match=models.MatchAny(any=batch)
                            )
                        ]
                    )
                )
                self._client.delete(name, points_selector=selector, wait=True)

    def chunk_indexes(self, name: str) -> dict[str, set[int]]:
        held: dict[str, set[int]] = {}
        offset: models.ExtendedPointId | None = None
        with self._translate_errors(name):
            while True:
                records, offset = self._client.scroll(
                    name,
                    limit=base.SCROLL_PAGE_POINTS,
                    offset=offset,
                    with_payload=["document_id", "chunk_index"],
                    with_vectors=False,
                )
                base.add_chunk_indexes(held, (record.payload for record in records))
                if offset is None:
                    return held

    def create_payload_index(self, name: str, field: str, kind: PayloadIndexKind) -> None:
        schema = base.payload_schema(_PAYLOAD_SCHEMA, kind)
        with self._translate_errors(name):
            self._require_collection(name)
            if not self._is_local:
                self._client.create_payload_index(name, base.metadata_key(field), schema, wait=True)

    def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        sparse: SparseVector | None = None,
        top_k: int,
        threshold: float | None = None,
        query_filter: Filter | None = None,
        group_by_document: bool = False,
        candidates: int | None = None,
        dense_weight: float = 1.0,
        document_level: bool = False,
    ) -> list[StoredHit]:
        base.check_search_arguments(
            sparse=sparse, threshold=threshold, candidates=candidates, document_level=document_level
        )
        weights = base.rrf_weights(dense_weight)
        dense = base.as_floats(vector)
        condition = _filter(query_filter)
        if document_level and not self.has_document_vectors(name):
            raise NotFound(f"Collection {name!r} has no {DOCUMENT_VECTOR!r} vectors.")
        with self._translate_errors(name):
            if top_k < 1:
                self._require_collection(name)
                return []
            params = self._dense_params(name)
            if sparse is None:
                using = DOCUMENT_VECTOR if document_level else DENSE_VECTOR
                fetch = self._dense_fetch(
                    name, dense, condition, threshold, using=using, params=params
                )
            else:
                legs = base.hybrid_candidates(top_k, candidates)
                fetch = self._hybrid_fetch(
                    name,
                    dense,
                    sparse,
                    condition,
                    legs,
                    grouping=group_by_document,
                    weights=weights,
                    params=params,
                )
            return base.collect_hits(
                fetch,
                top_k=top_k,
                group_by_document=group_by_document,
                document_of=base.document_of,
            )

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

    def _dense_fetch(
        self,
        name: str,
        dense: list[float],
        condition: models.Filter | None,
        threshold: float | None,
        *,
        using: str,
        params: models.SearchParams | None,
    ) -> Callable[[int], tuple[list[StoredHit], bool]]:
        def fetch(limit: int) -> tuple[list[StoredHit], bool]:
            response = self._client.query_points(
                name,
                query=dense,
                using=using,
                limit=limit,
                query_filter=condition,
                search_params=params,
                score_threshold=base.engine_threshold(threshold),
                with_payload=True,
                with_vectors=[LEXICAL_VECTOR],
            )
            return base.dense_hits(response.points, threshold), len(response.points) < limit

        return fetch

    def _hybrid_fetch(
        self,
        name: str,
        dense: list[float],
        sparse: SparseVector,
        condition: models.Filter | None,
        legs: int,
        *,
        grouping: bool,
        weights: list[float] | None,
        params: models.SearchParams | None,
    ) -> Callable[[int], tuple[list[StoredHit], bool]]:
        lexical_query = _sparse(sparse)
        fusion: models.FusionQuery | models.RrfQuery = (
            models.FusionQuery(fusion=models.Fusion.RRF)
            if weights is None
            else models.RrfQuery(rrf=models.Rrf(k=RRF_K, weights=weights))
        )

        def fetch(limit: int) -> tuple[list[StoredHit], bool]:
            # Grouping needs legs at least as long as the fused list to tell exhaustion.
            leg_limit = max(legs, limit) if grouping else legs
            fused_request = models.QueryRequest(
                prefetch=[
                    models.Prefetch(
                        query=dense,
                        using=DENSE_VECTOR,
                        limit=leg_limit,
                        filter=condition,
                        params=params,
                    ),
                    models.Prefetch(
                        query=lexical_query, using=LEXICAL_VECTOR, limit=leg_limit, filter=condition
                    ),
                ],
                query=fusion,
                limit=limit,
                with_payload=True,
                with_vector=[DENSE_VECTOR, LEXICAL_VECTOR],
            )
            lexical_request = models.QueryRequest(
                query=lexical_query,
                using=LEXICAL_VECTOR,
                limit=leg_limit,
                filter=condition,
                with_payload=False,
            )
            fused, lexical = self._client.query_batch_points(
                name, requests=[fused_request, lexical_request]
            )
            hits = base.hybrid_hits(dense, fused.points, lexical.points, engine="Qdrant")
            return hits, len(fused.points) < limit

        return fetch

    def _dense_params(self, name: str) -> models.SearchParams | None:
        """The beam for a dense search in `name`, from its size read at most every
        BEAM_REFRESH_S (an estimate: the server's count without exact=True)."""
        if self._beams is None or self._is_local:  # local mode warns that it ignores a beam
            return None
        ef = self._beams.beam(name, lambda: self._client.count(name, exact=False).count)
        return models.SearchParams(hnsw_ef=ef)

    def _require_collection(self, name: str) -> None:
        if not self._client.collection_exists(name):
            raise NotFound(f"Collection {name!r} does not exist; create it first.")

    def _check_dimension(self, name: str, dimension: int) -> None:
        vectors = self._client.get_collection(name).config.params.vectors
        dense = vectors.get(DENSE_VECTOR) if isinstance(vectors, dict) else None
        if dense is None:
            raise Conflict(
                f"Collection {name!r} predates named dense and lexical vectors; drop it and "
                "ingest its documents again."
            )
        existing = dense.size
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


def _graph(plan: HnswPlan) -> models.HnswConfigDiff:
    return models.HnswConfigDiff(m=plan.m, ef_construct=plan.ef_construct)


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


_PAYLOAD_SCHEMA: dict[PayloadIndexKind, models.PayloadSchemaType] = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
    "float": models.PayloadSchemaType.FLOAT,
    "bool": models.PayloadSchemaType.BOOL,
    "datetime": models.PayloadSchemaType.DATETIME,
}


def _vectors(point: ChunkPoint) -> dict[str, models.Vector]:
    # Typed with the engine's vector union so the dict comes back as the engine expects it.
    to_sparse: Callable[[SparseVector], models.Vector] = _sparse
    return base.named_vectors(point, to_sparse)


def _sparse(sparse: SparseVector) -> models.SparseVector:
    indices, values = base.sparse_lists(sparse)
    return models.SparseVector(indices=indices, values=values)


def _filter(query_filter: Filter | None) -> models.Filter | None:
    if query_filter is None or query_filter == And(()):
        return None
    condition = _condition(query_filter)
    return condition if isinstance(condition, models.Filter) else models.Filter(must=[condition])


def _condition(node: Filter) -> models.Condition:
    match node:
        case Match(key=key, value=float() as value):
            # MatchValue takes str, int and bool only; a closed range is float equality.
            exact = models.Range(gte=value, lte=value)
            return models.FieldCondition(key=base.metadata_key(key), range=exact)
        case Match(key=key, value=value):
            equal = models.MatchValue(value=value)
            return models.FieldCondition(key=base.metadata_key(key), match=equal)
        case MatchAny(key=key, values=values):
            one_of = models.MatchAny(any=list(values))
            return models.FieldCondition(key=base.metadata_key(key), match=one_of)
        case Range(key=key, gt=gt, gte=gte, lt=lt, lte=lte):
            bounds = models.Range(gt=gt, gte=gte, lt=lt, lte=lte)
            return models.FieldCondition(key=base.metadata_key(key), range=bounds)
        case DateRange(key=key, gt=gt, gte=gte, lt=lt, lte=lte):
            dates = models.DatetimeRange(gt=gt, gte=gte, lt=lt, lte=lte)
            return models.FieldCondition(key=base.metadata_key(key), range=dates)
        case Not(filter=inner):
            return models.Filter(must_not=[_condition(inner)])
        case And(filters=filters):
            return models.Filter(must=[_condition(inner) for inner in filters])
        case Or(filters=filters):
            return models.Filter(should=[_condition(inner) for inner in filters])
    raise TypeError(f"not a filter: {node!r}")
