"""The read path as one object: clean ▶ term mapping ▶ embed ▶ query the store ▶ hits.

Scores. A hit's `score`, the number the collection's threshold applies to, is the cosine
similarity of the query's and the chunk's embeddings under the collection's model, in every
mode: dense, lexical, hybrid or auto. The mode decides which chunks come back and in which
order, never what the threshold means, so a threshold calibrated in one mode keeps its
meaning in another, and a chunk that merely repeats the query's words cannot score 1.0.
Dense hits come in score order; lexical and hybrid hits in the order of their legs' ranks
(BM25, and reciprocal rank fusion of the dense and BM25 ranks), which ranks better than the
cosine alone (benchmarks/), so their scores are not sorted. Every hit also reports
`dense_score` (the cosine, equal to `score`), `lexical_score` (the share of the query's
lexical tokens found in the chunk or its title) and `fused_score` (the fusion's score).
The measurements behind this choice are in benchmarks/calibration.py.

Units. A search returns passages (chunks) by default. `SearchUnit.DOCUMENT` ranks whole
documents instead, by the cosine of the query and each document's vector, the mean of its
chunks' vectors ("split, encode, average", stored by the write path): a dense search in
every mode, whose hit carries the document's first chunk as its text.
benchmarks/document_unit.py compares it with passages grouped by document on SciFact.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retrieval.catalog import Catalog, CollectionMode, CollectionRecord
from retrieval.errors import Conflict, InvalidInput
from retrieval.filters import Filter
from retrieval.language import check_language, query_warning
from retrieval.lexical import LexicalEncoder, QueryCoverage
from retrieval.models.registry import ModelRegistry
from retrieval.store.base import StoredHit, VectorStore
from retrieval.terms import TermMap
from retrieval.text import clean_query, clean_text
from retrieval.units import SearchUnit


@dataclass(frozen=True, slots=True)
class Hit:
    """One chunk that matched, with where it sits in its document."""

    score: float
    """The cosine similarity the threshold applies to, in every mode (module docstring)."""
    text: str
    document_id: str
    chunk_index: int
    start: int
    end: int
    dense_score: float
    """Cosine similarity of the query and the chunk."""
    lexical_score: float | None = None
    """Share of the query's lexical tokens found in the chunk or its title (hybrid mode)."""
    fused_score: float | None = None
    """Reciprocal rank fusion of the two legs, the order of the hits (hybrid mode)."""
    title: str | None = None
    source: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchResult:
    collection: str
    query: str
    """The query as it was embedded: cleaned, then rewritten by the collection's term map."""
    mode: CollectionMode
    threshold: float
    top_k: int
    hits: list[Hit]
    model: str = ""
    """The model that embedded the query: the collection's."""
    warning: str | None = None
    """Set when the model does not read the collection's language, or the query's."""
    unit: SearchUnit = SearchUnit.PASSAGE


@dataclass(frozen=True, slots=True)
class PairScore:
    """How similar two texts are, with each text as it was embedded."""

    score: float
    """The cosine of `query` and `passage`: what a threshold is compared with."""
    query: str
    """The first text as embedded as a query: cleaned (and term-mapped in a collection)."""
    passage: str
    """The second text as embedded as a stored chunk: cleaned (and term-mapped)."""
    model: str
    collection: str | None = None
    """The collection whose model and term map were used, if any."""


HYBRID_OVERFETCH = 3
"""Hybrid asks the engine for this many times top_k, then thresholds and cuts to top_k."""


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

    def __init__(
        self,
        *,
        models: ModelRegistry,
        store: VectorStore,
        catalog: Catalog,
        lexical: LexicalEncoder,
    ) -> None:
        self._models = models
        self._store = store
        self._catalog = catalog
        self._lexical = lexical
        self._term_maps = _TermMapCache()

    def prepare_query(self, collection: CollectionRecord, query: str) -> str:
        """Clean the query and apply the collection's term map; this text is what gets embedded."""
        cleaned = clean_query(query)
        if not cleaned:
            raise InvalidInput("query: nothing is left after cleaning (only punctuation or spaces)")
        return self._term_maps.get(collection).apply(cleaned)

    def effective_mode(self, collection: CollectionRecord) -> CollectionMode:
        """The mode the collection's searches run in (auto decided by the language check)."""
        return check_language(self._catalog, collection, self._models).effective_mode(collection)

    def score_pairs(self, collection_name: str, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The score a search would give chunk `b` for query `a`, for each pair.

        `a` is cleaned, term-mapped and embedded as a query; `b` cleaned, term-mapped and
        embedded as a stored chunk is (without a title): the cosine of the two is the score.
        """
        collection = self._catalog.get_collection(collection_name)
        model = self._models.get(collection.model)
        term_map = self._term_maps.get(collection)
        queries = [self.prepare_query(collection, a) for a, _ in pairs]
        passages = [term_map.apply(clean_text(b)) for _, b in pairs]
        if not all(passages):
            raise InvalidInput("pairs: a 'b' text is empty once cleaned")
        query_vectors = model.encode_queries(queries)
        passage_vectors = model.encode_passages(passages)
        return [float(score) for score in (query_vectors * passage_vectors).sum(axis=1)]

    def similarity(
        self, model_name: str | None, source: str, sentences: Sequence[str]
    ) -> list[float]:
        """The cosine of `source` (cleaned and embedded as a query) with each sentence (cleaned
        and embedded as a stored chunk), under a model: the number a collection on that model
        compares with its threshold in dense mode (no term map: no collection is involved)."""
        model = self._models.get(model_name or self._models.default.name)
        query = clean_query(source)
        if not query:
            raise InvalidInput("inputs.source_sentence: nothing is left after cleaning")
        passages = [clean_text(sentence) for sentence in sentences]
        empty = [str(position) for position, passage in enumerate(passages) if not passage]
        if empty:
            raise InvalidInput(
                f"inputs.sentences: nothing is left after cleaning at {', '.join(empty[:5])}"
            )
        query_vector = model.encode_queries([query])[0]
        return [float(score) for score in model.encode_passages(passages) @ query_vector]

    def explain_pair(
        self,
        a: str,
        b: str,
        *,
        model_name: str | None = None,
        collection_name: str | None = None,
    ) -> PairScore:
        """The score of one pair with the texts it was computed on: `a` cleaned and embedded
        as a query, `b` as a stored chunk is, under a model (default: the service's); or under
        a collection's model with its term map applied to both: the score a search of that
        collection would give chunk `b` for query `a`."""
        query = clean_query(a)
        if not query:
            raise InvalidInput("a: nothing is left after cleaning (only punctuation or spaces)")
        passage = clean_text(b)
        if not passage:
            raise InvalidInput(
                "b: nothing is left after cleaning (only spaces or invisible characters)"
            )
        collection = None
        if collection_name is not None:
            collection = self._catalog.get_collection(collection_name)
            model = self._models.get(collection.model)
            term_map = self._term_maps.get(collection)
            query, passage = term_map.apply(query), term_map.apply(passage)
        else:
            model = self._models.get(model_name or self._models.default.name)
        query_vector = model.encode_queries([query])[0]
        passage_vector = model.encode_passages([passage])[0]
        return PairScore(
            score=float(query_vector @ passage_vector),
            query=query,
            passage=passage,
            model=model.name,
            collection=collection.name if collection is not None else None,
        )

    def search(
        self,
        collection_name: str,
        query: str,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        query_filter: Filter | None = None,
        group_by_document: bool = False,
        mode: CollectionMode | None = None,
        unit: SearchUnit = SearchUnit.PASSAGE,
    ) -> SearchResult:
        """Search one collection.

        1. load the collection: model, threshold, top_k, term map, mode (overridable per call)
        2. clean the query ▶ apply the term map
        3. embed with the collection's model (and, in hybrid mode, encode its lexical tokens)
        4. query the store with top_k, the filter and grouping; score ▶ threshold ▶ cut to top_k

        In hybrid mode the dense leg counts in the fusion only when the model reads the query:
        a leg of [UNK] word pieces ranks noise, and fused with equal weight it pushed the
        lexical leg's right answers down (benchmarks/zh_retrieval.py).

        `unit` DOCUMENT ranks documents by their mean vectors (module docstring): dense in
        every mode; InvalidInput with an explicit lexical or hybrid `mode`, Conflict when the
        collection's vectors were built before document vectors existed.
        """
        collection = self._catalog.get_collection(collection_name)
        model = self._models.get(collection.model)
        language = check_language(self._catalog, collection, self._models)
        effective_top_k = top_k if top_k is not None else collection.top_k
        effective_threshold = threshold if threshold is not None else collection.threshold
        effective_mode = (
            language.effective_mode(collection) if mode in (None, CollectionMode.AUTO) else mode
        )
        unit_warning = None
        if unit is SearchUnit.DOCUMENT:
            self._check_document_unit(collection, mode)
            if effective_mode is not CollectionMode.DENSE:
                unit_warning = (
                    f"unit 'document' ranks documents by their mean vectors alone (dense); "
                    f"passages of {collection.name!r} are searched in {effective_mode.value} mode"
                )
            effective_mode = CollectionMode.DENSE
        embedded_query = self.prepare_query(collection, query)
        query_counts = model.tokenizer.word_piece_counts(embedded_query)
        vector = model.encode_queries([embedded_query])[0].tolist()

        if effective_mode is not CollectionMode.DENSE:
            hits = self._hybrid_hits(
                collection.store_name,
                embedded_query,
                vector,
                top_k=effective_top_k,
                threshold=effective_threshold,
                lexical_only=effective_mode is CollectionMode.LEXICAL,
                dense_is_noise=not query_counts.readable,
                query_filter=query_filter,
                group_by_document=group_by_document,
            )
        else:
            stored = self._store.search(
                collection.store_name,
                vector,
                top_k=effective_top_k,
                threshold=effective_threshold,
                query_filter=query_filter,
                group_by_document=group_by_document,
                document_level=unit is SearchUnit.DOCUMENT,
            )
            coverage = self._lexical.query_coverage(embedded_query)
            hits = [
                _hit(stored_hit, lexical_score=_coverage_of(coverage, stored_hit))
                for stored_hit in stored
            ]
        return SearchResult(
            collection=collection.name,
            query=embedded_query,
            mode=effective_mode,
            threshold=effective_threshold,
            top_k=effective_top_k,
            hits=hits,
            model=model.name,
            warning=language.warning
            or query_warning(collection.name, model.name, query_counts, language.reader)
            or unit_warning,
            unit=unit,
        )

    def _check_document_unit(
        self, collection: CollectionRecord, mode: CollectionMode | None
    ) -> None:
        """Refuse a document-level search that cannot run as asked."""
        if mode in (CollectionMode.LEXICAL, CollectionMode.HYBRID):
            raise InvalidInput(
                f"unit 'document' is a dense search of the documents' mean vectors; mode "
                f"{mode.value!r} applies to passages: leave mode unset or use 'dense'"
            )
        if not self._store.has_document_vectors(collection.store_name):
            raise Conflict(
                f"collection {collection.name!r} was built before document-level vectors: "
                f"re-index it (POST /collections/{collection.name}/reindex, or "
                f"`semsearch reindex {collection.name}`) to search it by document"
            )

    def _hybrid_hits(
        self,
        collection: str,
        query: str,
        vector: list[float],
        *,
        top_k: int,
        threshold: float,
        lexical_only: bool,
        dense_is_noise: bool,
        query_filter: Filter | None,
        group_by_document: bool,
    ) -> list[Hit]:
        """Hybrid, or lexical only: the lexical leg's ranking (the dense leg weighs nothing)."""
        stored = self._store.search(
            collection,
            vector,
            sparse=self._lexical.encode_query(query),
            top_k=top_k * HYBRID_OVERFETCH,
            query_filter=query_filter,
            group_by_document=group_by_document,
            dense_weight=0.0 if lexical_only or dense_is_noise else 1.0,
        )
        coverage = self._lexical.query_coverage(query)
        hits: list[Hit] = []
        for stored_hit in stored:
            if lexical_only and not stored_hit.lexical_score:
                continue  # a candidate of the dense leg alone
            if stored_hit.dense_score >= threshold:
                hits.append(
                    _hit(
                        stored_hit,
                        lexical_score=_coverage_of(coverage, stored_hit),
                        fused_score=stored_hit.score,
                    )
                )
                if len(hits) == top_k:
                    break
        return hits


def _coverage_of(coverage: QueryCoverage, stored: StoredHit) -> float:
    """The hit's lexical score: the share of the query's tokens in its indexed text, read
    from its lexical vector; a point without one (a chunk of no tokens, whose empty vector
    is not stored) has its title and text tokenised instead."""
    if stored.lexical_token_ids is not None:
        return coverage.of_token_ids(stored.lexical_token_ids)
    payload = stored.payload
    return coverage.of(f"{payload.title}\n{payload.text}" if payload.title else payload.text)


def _hit(stored: StoredHit, *, lexical_score: float, fused_score: float | None = None) -> Hit:
    """A hit of the answer; its score is its cosine, whatever the mode (module docstring)."""
    payload = stored.payload
    return Hit(
        score=stored.dense_score,
        text=payload.text,
        document_id=payload.document_id,
        chunk_index=payload.chunk_index,
        start=payload.start,
        end=payload.end,
        dense_score=stored.dense_score,
        lexical_score=lexical_score,
        fused_score=fused_score,
        title=payload.title,
        source=payload.source,
        metadata=payload.metadata,
    )
