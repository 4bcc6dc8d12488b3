"""Collections and documents across the catalog and the vector store, kept consistent.

Order of operations is chosen so that a failure half-way never leaves vectors that the catalog
does not know of behind a live collection: vectors are dropped before catalog rows, and a new
collection's catalog row is written before (and removed again if) its vector collection fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from retrieval.catalog import (
    Catalog,
    CollectionMode,
    CollectionRecord,
    CollectionSpec,
    IndexSettings,
    JobRecord,
)
from retrieval.errors import Conflict, InvalidInput
from retrieval.language import LanguageCheck, check_language
from retrieval.models.base import ModelSpec
from retrieval.models.registry import ModelRegistry
from retrieval.store.base import PayloadIndexKind, VectorStore, index_kind
from retrieval.terms import TermMap


@dataclass(frozen=True, slots=True)
class NewCollection:
    """What a client chooses when it creates a collection."""

    name: str
    top_k: int
    threshold: float | None = None
    """None: the model's default threshold."""
    model: str | None = None
    """A registered model name or alias; None: the service's default model."""
    term_map: Mapping[str, str] = field(default_factory=dict)
    chunk_max_tokens: int = 200
    chunk_overlap_sentences: int = 0
    mode: CollectionMode = CollectionMode.AUTO
    filterable: Mapping[str, PayloadIndexKind] = field(default_factory=dict)
    """Metadata fields to index for filtering, with their type."""


@dataclass(frozen=True, slots=True)
class IndexChange:
    """Settings whose change means re-embedding the collection; None keeps the current one."""

    model: str | None = None
    term_map: Mapping[str, str] | None = None
    chunk_max_tokens: int | None = None
    chunk_overlap_sentences: int | None = None

    def applied_to(self, current: IndexSettings, model: ModelSpec) -> IndexSettings:
        return IndexSettings(
            model=model.name,
            dimension=model.dimension,
            term_map=dict(self.term_map if self.term_map is not None else current.term_map),
            chunk_max_tokens=self.chunk_max_tokens or current.chunk_max_tokens,
            chunk_overlap_sentences=(
                self.chunk_overlap_sentences
                if self.chunk_overlap_sentences is not None
                else current.chunk_overlap_sentences
            ),
        )


@dataclass(frozen=True, slots=True)
class CollectionSummary:
    """A collection with what its documents add: their number and the language check."""

    record: CollectionRecord
    document_count: int
    language: LanguageCheck


class CollectionManager:
    """Creates, changes and deletes collections and documents in catalog and store together."""

    def __init__(self, *, catalog: Catalog, store: VectorStore, models: ModelRegistry) -> None:
        self._catalog = catalog
        self._store = store
        self._models = models

    def create(self, new: NewCollection) -> CollectionRecord:
        TermMap(new.term_map)  # refuse an invalid map before anything is written
        model = self._models.resolve(new.model) if new.model else self._models.default
        _check_chunk_budget(new.chunk_max_tokens, model)
        record = self._catalog.create_collection(
            CollectionSpec(
                name=new.name,
                threshold=new.threshold if new.threshold is not None else model.default_threshold,
                top_k=new.top_k,
                term_map=dict(new.term_map),
                chunk_max_tokens=new.chunk_max_tokens,
                chunk_overlap_sentences=new.chunk_overlap_sentences,
                model=model.name,
                dimension=model.dimension,
                mode=new.mode,
                filterable=dict(new.filterable),
            )
        )
        try:
            # The catalog did not know this name, so any vectors under it are an orphan of an
            # earlier failure: start from an empty collection.
            self._store.drop_collection(record.store_name)
            create_vectors(self._store, record.store_name, model.dimension, new.filterable)
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
        mode: CollectionMode | None = None,
        filterable: Mapping[str, PayloadIndexKind] | None = None,
    ) -> CollectionRecord:
        """Change settings that take effect at once; `filterable` fields are indexed in
        addition to those already (in the vectors being re-indexed too)."""
        merged_filterable = None
        if filterable:
            collection = self._catalog.get_collection(name)
            current = collection.filterable
            for field_name, kind in filterable.items():
                if current.get(field_name, kind) != kind:
                    raise InvalidInput(
                        f"filterable.{field_name}: already indexed as {current[field_name]}; "
                        "an index cannot change its type"
                    )
                for store_name in _store_names(collection):
                    self._store.create_payload_index(store_name, field_name, kind)
            merged_filterable = {**current, **filterable}
        return self._catalog.update_collection(
            name,
            threshold=threshold,
            top_k=top_k,
            mode=mode,
            filterable=merged_filterable,
        )

    def plan_reindex(self, name: str, change: IndexChange) -> IndexSettings | None:
        """Check a change of model, term map or chunking without making it: the settings
        the collection would be re-embedded with, or None when nothing would change.

        InvalidInput for an unknown model, a bad term map or a chunk budget beyond the
        model; Conflict while a re-index runs. Nothing is written.
        """
        if change.term_map is not None:
            TermMap(change.term_map)
        collection = self._catalog.get_collection(name)
        model = self._models.resolve(change.model or collection.model)
        settings = change.applied_to(collection.index_settings, model)
        _check_chunk_budget(settings.chunk_max_tokens, model)
        if settings == collection.index_settings:
            return None
        if collection.reindex is not None:
            raise Conflict(
                f"collection {name!r} is being re-indexed (job {collection.reindex.job_id}); "
                "change its model, term map or chunking again once that job has finished"
            )
        return settings

    def reindex(self, name: str, change: IndexChange) -> JobRecord | None:
        """Re-embed the collection with a new model, term map or chunking, as a job.

        The current vectors keep answering searches until the new ones hold every document;
        then the collection switches to them (ingest/pipeline.py, reindex_job). Returns the
        job to submit, or None when nothing would change. Conflict while a re-index runs.
        """
        settings = self.plan_reindex(name, change)
        return self.start_reindex(name, settings) if settings is not None else None

    def rebuild(self, name: str) -> JobRecord:
        """Re-embed the collection from its stored text with its current settings, as a job
        (after a model folder was updated in place, say), exactly as a change would: the
        current vectors answer until the new ones hold every document. Conflict while a
        re-index runs."""
        return self.start_reindex(name, self._catalog.get_collection(name).index_settings)

    def start_reindex(self, name: str, settings: IndexSettings) -> JobRecord:
        """Open the next vectors with `settings` (from `plan_reindex`) and return the job that
        fills them. Conflict while another re-index runs."""
        collection = self._catalog.get_collection(name)
        model = self._models.resolve(settings.model)
        reindex, job = self._catalog.start_reindex(name, settings)
        try:
            self._store.drop_collection(reindex.store_name)
            create_vectors(self._store, reindex.store_name, model.dimension, collection.filterable)
        except BaseException:
            self._catalog.abandon_reindex(name, job.id)
            self._catalog.fail_job(job.id, error="the new vector collection could not be made")
            raise
        return job

    def describe(self, name: str) -> CollectionSummary:
        record = self._catalog.get_collection(name)
        return CollectionSummary(
            record=record,
            document_count=self._catalog.document_count(name),
            language=check_language(self._catalog, record, self._models),
        )

    def describe_all(
        self, *, visible: Callable[[str], bool] = lambda _name: True
    ) -> list[CollectionSummary]:
        """Every collection whose name is `visible`: the others are not even counted."""
        return [
            self.describe(record.name)
            for record in self._catalog.list_collections()
            if visible(record.name)
        ]

    def delete(self, name: str) -> None:
        collection = self._catalog.get_collection(name)
        for store_name in _store_names(collection):
            self._store.drop_collection(store_name)
        self._catalog.delete_collection(name)

    def delete_document(self, collection_name: str, document_id: str) -> None:
        self._catalog.get_document(collection_name, document_id)
        collection = self._catalog.get_collection(collection_name)
        for store_name in _store_names(collection):
            self._store.delete_document(store_name, document_id)
        self._catalog.delete_document(collection_name, document_id)

    def delete_documents_with_prefix(self, name: str, prefix: str) -> int:
        """Delete every document whose id starts with `prefix`, and all their points; how many.

        An empty prefix is refused (InvalidInput): it would empty the collection, which is
        what deleting the collection is for. Points go first, in every store collection of the
        collection, then the catalog rows: a failure half-way leaves rows whose points are
        gone (deleting again finishes the job), never points that nothing in the catalog owns.
        """
        if not prefix:
            raise InvalidInput(
                "prefix: an empty prefix would delete every document; give the start of the "
                "ids to delete, e.g. 'manuals/v1/', or delete the collection"
            )
        collection = self._catalog.get_collection(name)
        document_ids = self._catalog.document_ids_with_prefix(name, prefix)
        if not document_ids:
            return 0
        for store_name in _store_names(collection):
            self._store.delete_documents(store_name, document_ids)
        return self._catalog.delete_documents(name, document_ids)


def create_vectors(
    store: VectorStore,
    store_name: str,
    dimension: int,
    filterable: Mapping[str, PayloadIndexKind | str],
) -> None:
    """An empty store collection with a payload index for each filterable field."""
    store.create_collection(store_name, dimension=dimension)
    for field_name, kind in filterable.items():
        store.create_payload_index(store_name, field_name, index_kind(kind))


def _store_names(collection: CollectionRecord) -> list[str]:
    """The store collections of a collection: the serving one, and one being re-indexed."""
    names = [collection.store_name]
    if collection.reindex is not None:
        names.append(collection.reindex.store_name)
    return names


def _check_chunk_budget(max_tokens: int, model: ModelSpec) -> None:
    if max_tokens > model.max_tokens:
        raise InvalidInput(
            f"chunking.max_tokens: {max_tokens} is more than the model {model.name} reads "
            f"({model.max_tokens} tokens)"
        )
