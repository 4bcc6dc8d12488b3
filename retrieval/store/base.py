"""The vector store's contract: one protocol, the point and hit types, the point-id rule.

Both engines (store/edge.py, store/server.py) implement `VectorStore`; nothing outside
retrieval/store/ imports qdrant_edge or qdrant_client. Engine errors are translated here-below
into retrieval.errors: a missing collection is NotFound, an unreachable engine Unavailable.

A collection holds up to three named vectors per point: DENSE_VECTOR (the embedding,
cosine); when the chunk has lexical tokens, LEXICAL_VECTOR (sparse term weights; the engine
multiplies the query's weights by the inverse document frequency of each term, Qdrant's IDF
modifier); and on each document's first chunk only, DOCUMENT_VECTOR (the mean of the
document's chunk embeddings, cosine: "split, encode, average", which a document-level search
queries, so that its hits are whole documents). Collections made before DOCUMENT_VECTOR
existed lack it (`has_document_vectors`); a re-index builds them anew with it.
The search logic that is the same for both engines (argument checks, the hybrid candidate
count, best chunk per document, the dense score of a hybrid hit) lives here too.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import numpy

from retrieval.errors import InvalidInput
from retrieval.filters import Filter

PayloadIndexKind = Literal["keyword", "integer", "float", "bool", "datetime"]
PAYLOAD_INDEX_KINDS: tuple[PayloadIndexKind, ...] = (
    "keyword",
    "integer",
    "float",
    "bool",
    "datetime",
)

DENSE_VECTOR = "dense"
LEXICAL_VECTOR = "lexical"
DOCUMENT_VECTOR = "document"
RRF_K = 2
"""Reciprocal rank fusion: a hit's fused score is the sum over legs of 1 / (RRF_K + rank),
rank counted from 0. 2 is Qdrant's default, the only value a server before parametrised RRF
accepts, so both engines fuse alike."""
MIN_HYBRID_CANDIDATES = 50
"""Each hybrid leg's length unless the caller says: max(4 * top_k, 50)."""
GROUP_FETCH_FACTOR = 4
"""Grouping by document fetches top_k * 4 chunks, then 4 times more while documents lack."""
THRESHOLD_SLACK = 1e-6
"""The engine gets a slightly lower threshold; the exact rule is applied on its scores."""
SCROLL_PAGE_POINTS = 1_000
"""Points read per page when the store lists what it holds (`chunk_indexes`)."""
DELETE_BATCH_DOCUMENTS = 500
"""Document ids per delete request of `delete_documents`."""

POINT_ID_NAMESPACE = uuid.UUID("6f1c3e2a-5b8d-4c71-9a0e-2d4f7b9c8e15")


def point_id(collection: str, document_id: str, chunk_index: int) -> str:
    """The deterministic id of a chunk's point: a retried ingest overwrites, never duplicates."""
    return str(uuid.uuid5(POINT_ID_NAMESPACE, f"{collection}\x1f{document_id}\x1f{chunk_index}"))


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A lexical (BM25) vector: token ids and their weights, ids unique and ascending."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ChunkPayload:
    """What is stored beside each vector and returned with each hit."""

    document_id: str
    chunk_index: int
    text: str
    start: int
    """Offset of the chunk's first character in the cleaned document text."""
    end: int
    """Offset one past the chunk's last character."""
    title: str | None = None
    source: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "chunk_index": self.chunk_index,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "title": self.title,
            "source": self.source,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> ChunkPayload:
        return cls(
            document_id=str(payload["document_id"]),
            chunk_index=int(payload["chunk_index"]),
            text=str(payload["text"]),
            start=int(payload["start"]),
            end=int(payload["end"]),
            title=payload.get("title"),
            source=payload.get("source"),
            metadata=dict(payload.get("metadata") or {}),
        )


@dataclass(frozen=True, slots=True)
class ChunkPoint:
    """One chunk to write: its vector (L2-normalised, float), lexical vector and payload."""

    id: str
    vector: Sequence[float]
    payload: ChunkPayload
    sparse: SparseVector | None = None
    """None (or an empty vector): the chunk has no lexical vector, hybrid search finds it
    through its dense vector only."""
    document_vector: Sequence[float] | None = None
    """The document's vector (mean of its chunks' vectors), carried by its first chunk only."""


@dataclass(frozen=True, slots=True)
class StoredHit:
    """One search result as the store sees it."""

    id: str
    score: float
    """Dense search: the cosine similarity. Hybrid search: the fused RRF score."""
    payload: ChunkPayload
    dense_score: float
    """The cosine similarity of the chunk and the query, in both modes."""
    lexical_score: float | None
    """Hybrid search: the chunk's score in the lexical leg (0.0 when that leg did not return
    it). Dense search: None."""
    lexical_token_ids: frozenset[int] | None = None
    """The indices of the chunk's lexical vector: the token ids of its indexed text (title
    and chunk, in the words of the term map), returned with the hit so that the search layer
    reads the query's coverage from them instead of tokenising the text again. None for a
    point without a lexical vector (a chunk of no tokens)."""


class VectorStore(Protocol):
    """Collections of chunk points, searched by cosine similarity.

    Every method raises retrieval.errors.NotFound for a missing collection (except
    `create_collection`, `drop_collection` and `collection_exists`) and
    retrieval.errors.Unavailable when the engine cannot be reached.
    """

    def create_collection(self, name: str, *, dimension: int) -> None:
        """Create an empty collection of dense and document (cosine) and lexical (IDF) vectors.

        Payload indexes on document_id and chunk_index. Idempotent: an existing collection
        of the same dimension is left as it is.
        """

    def drop_collection(self, name: str) -> None:
        """Remove a collection and all its points; a missing one is not an error."""

    def collection_exists(self, name: str) -> bool: ...

    def has_document_vectors(self, name: str) -> bool:
        """Whether the collection was made with DOCUMENT_VECTOR (every one made now is)."""
        ...

    def upsert(self, name: str, points: Sequence[ChunkPoint]) -> None:
        """Write points, replacing any with the same id; returns once they are searchable."""

    def delete_document(self, name: str, document_id: str, *, from_chunk: int = 0) -> None:
        """Delete the document's points whose chunk_index >= from_chunk (0: all of them)."""

    def delete_documents(self, name: str, document_ids: Sequence[str]) -> None:
        """Delete every point of these documents (ids without points are no error)."""

    def chunk_indexes(self, name: str) -> dict[str, set[int]]:
        """What the collection holds: document id -> the chunk indexes of its points.

        Read by scrolling the payloads' document_id and chunk_index, SCROLL_PAGE_POINTS at a
        time, without vectors; a point lacking either field is not listed. Not a snapshot:
        a write made while it runs may or may not be seen.
        """
        ...

    def create_payload_index(self, name: str, field: str, kind: PayloadIndexKind) -> None:
        """Index the metadata field `field` (payload key ``metadata.<field>``) for filters.

        Idempotent. An index makes filtered search faster, never changes its answers. Raises
        InvalidInput for an unknown kind.
        """

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
        """The top_k best points for the query, best first.

        Dense (`sparse` None): by cosine score, keeping only score >= threshold.
        Hybrid: one engine query whose two prefetch legs, dense and lexical, each take the
        `candidates` best points (default max(4 * top_k, 50)) and are fused by reciprocal
        rank (RRF_K), the dense leg's terms multiplied by `dense_weight` (the lexical leg's
        by 1); equal fused scores are ordered by cosine, then by point id, so that identical
        calls return identical lists. `threshold` must be None (ValueError).
        `query_filter` applies to both legs. `group_by_document`: the best chunk of each
        document, top_k documents; the store fetches more chunks while documents lack
        (GROUP_FETCH_FACTOR), a hybrid search lengthening its legs to the fetch when that
        exceeds `candidates`.
        `document_level`: a dense search of DOCUMENT_VECTOR, whose hits are the documents'
        first chunks, scored by the cosine of the query and the document's mean vector
        (`sparse` must be None: ValueError); NotFound when the collection lacks the vector.
        """
        ...

    def count(self, name: str, *, document_id: str | None = None) -> int:
        """Exact number of points in the collection (or of one document)."""
        ...

    def close(self) -> None:
        """Flush and release files or connections."""


# -- search logic shared by both engines --------------------------------------------------

HitT = TypeVar("HitT")


def check_search_arguments(
    *,
    sparse: SparseVector | None,
    threshold: float | None,
    candidates: int | None,
    document_level: bool = False,
) -> None:
    """Refuse argument combinations that have no meaning (programming errors: ValueError)."""
    if sparse is not None and document_level:
        raise ValueError("a document-level search is dense: documents have no lexical vector")
    if sparse is not None and threshold is not None:
        raise ValueError(
            "threshold applies to dense search only: a fused RRF score is a rank, not a "
            "similarity, so threshold hybrid results on a score of your own"
        )
    if candidates is not None and candidates < 1:
        raise ValueError(f"candidates must be at least 1, got {candidates}")


def hybrid_candidates(top_k: int, candidates: int | None) -> int:
    """How many points each hybrid leg contributes to the fusion."""
    return candidates if candidates is not None else max(4 * top_k, MIN_HYBRID_CANDIDATES)


MAX_SPARSE_INDEX = 2**32 - 1


def sparse_lists(sparse: SparseVector) -> tuple[list[int], list[float]]:
    """The lexical vector's indices and values in ascending index order.

    Raises InvalidInput for what the engines would mishandle: Qdrant Edge panics on lengths
    that differ and sums duplicate indices where local mode refuses them, and the two read
    unsorted indices differently.
    """
    if len(sparse.indices) != len(sparse.values):
        raise InvalidInput(
            f"lexical vector: {len(sparse.indices)} indices but {len(sparse.values)} values"
        )
    pairs = sorted(zip(sparse.indices, sparse.values, strict=True))
    indices = [int(index) for index, _ in pairs]
    values = [float(value) for _, value in pairs]
    for position, index in enumerate(indices):
        if not 0 <= index <= MAX_SPARSE_INDEX:
            raise InvalidInput(f"lexical vector: index {index} is outside 0..{MAX_SPARSE_INDEX}")
        if position and indices[position - 1] == index:
            raise InvalidInput(f"lexical vector: index {index} appears twice")
    for value in values:
        if not math.isfinite(value):
            raise InvalidInput(f"lexical vector: weight {value} is not a finite number")
    return indices, values


def has_terms(sparse: SparseVector | None) -> bool:
    """Whether a lexical vector holds any term (an empty one is stored as none)."""
    return sparse is not None and len(sparse.indices) > 0


def collect_hits(
    fetch: Callable[[int], tuple[list[HitT], bool]],
    *,
    top_k: int,
    group_by_document: bool,
    document_of: Callable[[HitT], str],
) -> list[HitT]:
    """The top_k hits, or the best hit of each of the top_k best documents.

    `fetch(limit)` returns at most `limit` hits, best first, and whether the engine has no
    more to give (it returned fewer than it was asked for). Grouping over-fetches and keeps
    each document's first hit, fetching more until top_k documents are found or the engine
    is exhausted. Qdrant Edge has no group query; the same path serves both engines.
    """
    if not group_by_document:
        hits, _ = fetch(top_k)
        return hits[:top_k]
    limit = top_k * GROUP_FETCH_FACTOR
    while True:
        hits, exhausted = fetch(limit)
        best: list[HitT] = []
        seen: set[str] = set()
        for hit in hits:
            document_id = document_of(hit)
            if document_id not in seen:
                seen.add(document_id)
                best.append(hit)
        if len(best) >= top_k or exhausted:
            return best[:top_k]
        limit *= GROUP_FETCH_FACTOR


def cosine_scores(query: Sequence[float], vectors: Sequence[Sequence[float]]) -> list[float]:
    """Cosine similarity of the query with each vector (both normalised here, in float32 as
    the engines compute)."""
    if not vectors:
        return []
    matrix = numpy.asarray(vectors, dtype=numpy.float32)
    target = numpy.asarray(query, dtype=numpy.float32)
    norms = numpy.linalg.norm(matrix, axis=1) * numpy.linalg.norm(target)
    scores = (matrix @ target) / numpy.where(norms == 0, 1.0, norms)
    return [float(score) for score in scores]


# -- engine-independent helpers of both engines -------------------------------------------

SchemaT = TypeVar("SchemaT")
SparseT = TypeVar("SparseT")


class ScoredPointLike(Protocol):
    """What both engines' scored points offer: id, score, payload and returned vectors."""

    @property
    def id(self) -> object: ...

    @property
    def score(self) -> float: ...

    @property
    def payload(self) -> Mapping[str, Any] | None: ...

    @property
    def vector(self) -> object: ...


def as_floats(vector: Sequence[float]) -> list[float]:
    """The vector as a list of Python floats (a numpy row converted in one call)."""
    tolist = getattr(vector, "tolist", None)
    if callable(tolist):  # a numpy row: one C-level conversion instead of one per element
        return list(tolist())
    return [float(value) for value in vector]


def index_kind(kind: str) -> PayloadIndexKind:
    """The payload index kind named `kind`; InvalidInput for an unknown one."""
    for known in PAYLOAD_INDEX_KINDS:
        if kind == known:
            return known
    raise InvalidInput(
        f"Unknown payload index kind {kind!r}; use one of {', '.join(PAYLOAD_INDEX_KINDS)}."
    )


def payload_schema(schemas: Mapping[PayloadIndexKind, SchemaT], kind: str) -> SchemaT:
    """The engine's schema type for `kind` from its table; InvalidInput for an unknown kind."""
    return schemas[index_kind(kind)]


def metadata_key(field: str) -> str:
    """The payload key of the metadata field `field`."""
    return f"metadata.{field}"


def add_chunk_indexes(
    held: dict[str, set[int]], payloads: Iterable[Mapping[str, Any] | None]
) -> None:
    """Add the (document_id, chunk_index) of each payload to `held`; skip incomplete ones."""
    for payload in payloads:
        document_id = (payload or {}).get("document_id")
        chunk_index = (payload or {}).get("chunk_index")
        if isinstance(document_id, str) and type(chunk_index) is int:
            held.setdefault(document_id, set()).add(chunk_index)


def id_batches(document_ids: Sequence[str]) -> Iterator[list[str]]:
    """The ids in batches of DELETE_BATCH_DOCUMENTS (a filter's size stays bounded)."""
    for start in range(0, len(document_ids), DELETE_BATCH_DOCUMENTS):
        yield list(document_ids[start : start + DELETE_BATCH_DOCUMENTS])


def document_of(hit: StoredHit) -> str:
    """The id of the document a hit belongs to."""
    return hit.payload.document_id


def named_vectors(
    point: ChunkPoint, to_sparse: Callable[[SparseVector], SparseT]
) -> dict[str, list[float] | SparseT]:
    """A point's named vectors: dense always, lexical (engine-typed) when it has terms, the
    document's vector on a first chunk."""
    vectors: dict[str, list[float] | SparseT] = {DENSE_VECTOR: as_floats(point.vector)}
    if point.sparse is not None and has_terms(point.sparse):
        vectors[LEXICAL_VECTOR] = to_sparse(point.sparse)
    if point.document_vector is not None:
        vectors[DOCUMENT_VECTOR] = as_floats(point.document_vector)
    return vectors


def engine_threshold(threshold: float | None) -> float | None:
    """The score threshold given to the engine: THRESHOLD_SLACK below the caller's."""
    return None if threshold is None else threshold - THRESHOLD_SLACK


def dense_hits(points: Sequence[ScoredPointLike], threshold: float | None) -> list[StoredHit]:
    """A dense query's points as hits, keeping only score >= threshold."""
    return [
        StoredHit(
            id=str(point.id),
            score=float(point.score),
            payload=ChunkPayload.from_dict(point.payload or {}),
            dense_score=float(point.score),
            lexical_score=None,
            lexical_token_ids=lexical_token_ids_of(point.vector),
        )
        for point in points
        if threshold is None or point.score >= threshold
    ]


def lexical_token_ids_of(vector: object) -> frozenset[int] | None:
    """The indices of the lexical vector an engine returned with a hit (both engines' sparse
    vectors have `indices`); None when the point has none."""
    if isinstance(vector, dict):
        indices = getattr(vector.get(LEXICAL_VECTOR), "indices", None)
        if indices is not None:
            return frozenset(indices)
    return None


def dense_vector_of(vector: object, engine: str) -> list[float]:
    """The dense vector an engine returned with a hit; RuntimeError when it is missing."""
    if isinstance(vector, dict):
        dense = vector.get(DENSE_VECTOR)
        if isinstance(dense, list):
            return [float(value) for value in dense]
    raise RuntimeError(f"{engine} returned no {DENSE_VECTOR!r} vector with a hit: {vector!r}")


def hybrid_hits(
    dense: Sequence[float],
    fused: Sequence[ScoredPointLike],
    lexical: Sequence[ScoredPointLike],
    *,
    engine: str,
) -> list[StoredHit]:
    """A fused query's points as hits, with their dense and lexical-leg scores."""
    lexical_scores = {str(point.id): float(point.score) for point in lexical}
    dense_scores = cosine_scores(dense, [dense_vector_of(point.vector, engine) for point in fused])
    hits = [
        StoredHit(
            id=str(point.id),
            score=float(point.score),
            payload=ChunkPayload.from_dict(point.payload or {}),
            dense_score=dense_score,
            lexical_score=lexical_scores.get(str(point.id), 0.0),
            lexical_token_ids=lexical_token_ids_of(point.vector),
        )
        for point, dense_score in zip(fused, dense_scores, strict=True)
    ]
    # The engines return equal fused scores (frequent with RRF) in no fixed order.
    hits.sort(key=lambda hit: (-hit.score, -hit.dense_score, hit.id))
    return hits


def rrf_weights(dense_weight: float) -> list[float] | None:
    """The fusion's weights for the (dense, lexical) legs; None when they are equal."""
    if not math.isfinite(dense_weight) or dense_weight < 0:
        raise ValueError(f"dense_weight must be a finite number >= 0, got {dense_weight}")
    return None if dense_weight == 1.0 else [dense_weight, 1.0]
