"""Collections and documents across the catalog and the vector store, kept consistent.

Order of operations is chosen so that a failure half-way never leaves vectors that the catalog
does not know of behind a live collection: vectors are dropped before catalog rows, and a new
collection's catalog row is written before (and removed again if) its vector collection fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from retrieval.catalog import Catalog, CollectionMode, CollectionRecord, CollectionSpec
from retrieval.embedder import Embedder
from retrieval.errors import InvalidInput
from retrieval.language import LanguageCheck, check_language
from retrieval.store.base import PayloadIndexKind, VectorStore
from retrieval.terms import TermMap


@dataclass(frozen=True, slots=True)
class NewCollection:
    """What a client chooses when it creates a collection."""

    name: str
    threshold: float
    top_k: int
    term_map: Mapping[str, str] = field(default_factory=dict)
    chunk_max_tokens: int = 200
    chunk_overlap_sentences: int = 0
    mode: CollectionMode = CollectionMode.AUTO
    filterable: Mapping[str, PayloadIndexKind] = field(default_factory=dict)
    """Metadata fields to index for filtering, with their type."""


@dataclass(frozen=True, slots=True)
class CollectionSummary:
    """A collection with what its documents add: their number and the language check."""

    record: CollectionRecord
    document_count: int
    language: LanguageCheck


class CollectionManager:
    """Creates, changes and deletes collections and documents in catalog and store together."""

    def __init__(self, *, catalog: Catalog, store: VectorStore, embedder: Embedder) -> None:
        self._catalog = catalog
        self._store = store
        self._embedder = embedder

    def create(self, new: NewCollection) -> CollectionRecord:
        TermMap(new.term_map)  # refuse an invalid map before anything is written
        if new.chunk_max_tokens > self._embedder.max_tokens:
            raise InvalidInput(
                f"chunking.max_tokens: {new.chunk_max_tokens} is more than the model "
                f"{self._embedder.name} reads ({self._embedder.max_tokens} word pieces)"
            )
        record = self._catalog.create_collection(
            CollectionSpec(
                name=new.name,
                threshold=new.threshold,
                top_k=new.top_k,
                term_map=dict(new.term_map),
                chunk_max_tokens=new.chunk_max_tokens,
                chunk_overlap_sentences=new.chunk_overlap_sentences,
                model=self._embedder.name,
                dimension=self._embedder.dimension,
                mode=new.mode,
                filterable=dict(new.filterable),
            )
        )
        try:
            # The catalog did not know this name, so any vectors under it are an orphan of an
            # earlier failure: start from an empty collection.
            self._store.drop_collection(new.name)
            self._store.create_collection(new.name, dimension=self._embedder.dimension)
            for field_name, kind in new.filterable.items():
                self._store.create_payload_index(new.name, field_name, kind)
        except BaseException:
            self._catalog.delete_collection(new.name)
            raise
        return record

    def update(
        self,
        name: str,
        *,
        threshold: float | None = None,
        top_k: int | None = None,
        term_map: Mapping[str, str] | None = None,
        mode: CollectionMode | None = None,
        filterable: Mapping[str, PayloadIndexKind] | None = None,
    ) -> CollectionRecord:
        """Change settings; `filterable` fields are indexed in addition to those already."""
        if term_map is not None:
            TermMap(term_map)
        merged_filterable = None
        if filterable:
            current = self._catalog.get_collection(name).filterable
            for field_name, kind in filterable.items():
                if current.get(field_name, kind) != kind:
                    raise InvalidInput(
                        f"filterable.{field_name}: already indexed as {current[field_name]}; "
                        "an index cannot change its type"
                    )
                self._store.create_payload_index(name, field_name, kind)
            merged_filterable = {**current, **filterable}
        return self._catalog.update_collection(
            name,
            threshold=threshold,
            top_k=top_k,
            term_map=dict(term_map) if term_map is not None else None,
            mode=mode,
            filterable=merged_filterable,
        )

    def describe(self, name: str) -> CollectionSummary:
        return CollectionSummary(
            record=self._catalog.get_collection(name),
            document_count=self._catalog.document_count(name),
            language=check_language(self._catalog, name),
        )

    def describe_all(self) -> list[CollectionSummary]:
        return [self.describe(record.name) for record in self._catalog.list_collections()]

    def delete(self, name: str) -> None:
        self._catalog.get_collection(name)
        self._store.drop_collection(name)
        self._catalog.delete_collection(name)

    def delete_document(self, collection: str, document_id: str) -> None:
        self._catalog.get_document(collection, document_id)
        self._store.delete_document(collection, document_id)
        self._catalog.delete_document(collection, document_id)
