"""The read path as one object: clean ▶ term mapping ▶ embed ▶ query the store ▶ hits."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retrieval.catalog import Catalog, CollectionRecord
from retrieval.embedder import Embedder
from retrieval.errors import InvalidInput
from retrieval.store.base import MetadataFilter, VectorStore
from retrieval.terms import TermMap
from retrieval.text import clean_query


@dataclass(frozen=True, slots=True)
class Hit:
    """One chunk that matched, with where it sits in its document."""

    score: float
    text: str
    document_id: str
    chunk_index: int
    start: int
    end: int
    title: str | None = None
    source: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchResult:
    collection: str
    query: str
    """The query as it was embedded: cleaned, then rewritten by the collection's term map."""
    threshold: float
    top_k: int
    hits: list[Hit]


class _TermMapCache:
    """Compiled term maps by collection, rebuilt when the collection's row changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._maps: dict[str, tuple[datetime, TermMap]] = {}

    def get(self, collection: CollectionRecord) -> TermMap:
        with self._lock:
            cached = self._maps.get(collection.name)
            if cached is not None and cached[0] == collection.updated_at:
                return cached[1]
        term_map = TermMap(collection.term_map)
        with self._lock:
            self._maps[collection.name] = (collection.updated_at, term_map)
        return term_map


class Searcher:
    """Answers queries against a collection with its own threshold and term map."""

    def __init__(self, *, embedder: Embedder, store: VectorStore, catalog: Catalog) -> None:
        self._embedder = embedder
        self._store = store
        self._catalog = catalog
        self._term_maps = _TermMapCache()

    def prepare_query(self, collection: CollectionRecord, query: str) -> str:
        """Clean the query and apply the collection's term map; this text is what gets embedded."""
        cleaned = clean_query(query)
        if not cleaned:
            raise InvalidInput("query: nothing is left after cleaning (only punctuation or spaces)")
        return self._term_maps.get(collection).apply(cleaned)

    def search(
        self,
        collection_name: str,
        query: str,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        metadata_filter: MetadataFilter | None = None,
    ) -> SearchResult:
        """Search one collection.

        1. load the collection: its threshold, top_k and term map (overridable per call)
        2. clean the query ▶ apply the term map
        3. embed ▶ query the store with top_k, score >= threshold and the metadata filter
        """
        collection = self._catalog.get_collection(collection_name)
        effective_top_k = top_k if top_k is not None else collection.top_k
        effective_threshold = threshold if threshold is not None else collection.threshold
        embedded_query = self.prepare_query(collection, query)
        vector = self._embedder.encode([embedded_query])[0]
        stored_hits = self._store.search(
            collection.name,
            vector.tolist(),
            top_k=effective_top_k,
            threshold=effective_threshold,
            metadata_filter=metadata_filter,
        )
        hits = [
            Hit(
                score=hit.score,
                text=hit.payload.text,
                document_id=hit.payload.document_id,
                chunk_index=hit.payload.chunk_index,
                start=hit.payload.start,
                end=hit.payload.end,
                title=hit.payload.title,
                source=hit.payload.source,
                metadata=hit.payload.metadata,
            )
            for hit in stored_hits
        ]
        return SearchResult(
            collection=collection.name,
            query=embedded_query,
            threshold=effective_threshold,
            top_k=effective_top_k,
            hits=hits,
        )
