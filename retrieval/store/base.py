"""The vector store's contract: one protocol, the point and hit types, the point-id rule.

Both engines (store/edge.py, store/server.py) implement `VectorStore`; nothing outside
retrieval/store/ imports qdrant_edge or qdrant_client. Engine errors are translated here-below
into retrieval.errors: a missing collection is NotFound, an unreachable engine Unavailable.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

MetadataValue = str | int | float | bool
MetadataFilter = Mapping[str, MetadataValue]
"""Equality on metadata fields: every pair must match (logical AND)."""

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
    """One chunk to write: its vector (L2-normalised, float) and payload."""

    id: str
    vector: Sequence[float]
    payload: ChunkPayload


@dataclass(frozen=True, slots=True)
class StoredHit:
    """One search result as the store sees it."""

    id: str
    score: float
    payload: ChunkPayload


class VectorStore(Protocol):
    """Collections of chunk points, searched by cosine similarity.

    Every method raises retrieval.errors.NotFound for a missing collection (except
    `create_collection`, `drop_collection` and `collection_exists`) and
    retrieval.errors.Unavailable when the engine cannot be reached.
    """

    def create_collection(self, name: str, *, dimension: int) -> None:
        """Create an empty collection (cosine distance, payload index on document_id).

        Idempotent: an existing collection of the same dimension is left as it is.
        """

    def drop_collection(self, name: str) -> None:
        """Remove a collection and all its points; a missing one is not an error."""

    def collection_exists(self, name: str) -> bool: ...

    def upsert(self, name: str, points: Sequence[ChunkPoint]) -> None:
        """Write points, replacing any with the same id; returns once they are searchable."""

    def delete_document(self, name: str, document_id: str, *, from_chunk: int = 0) -> None:
        """Delete the document's points whose chunk_index >= from_chunk (0: all of them)."""

    def search(
        self,
        name: str,
        vector: Sequence[float],
        *,
        top_k: int,
        threshold: float | None = None,
        metadata_filter: MetadataFilter | None = None,
    ) -> list[StoredHit]:
        """The top_k points by cosine score, best first, keeping only score >= threshold.

        `metadata_filter` matches fields of the payload's `metadata` object by equality.
        """
        ...

    def count(self, name: str, *, document_id: str | None = None) -> int:
        """Exact number of points in the collection (or of one document)."""
        ...

    def close(self) -> None:
        """Flush and release files or connections."""
