"""The one place that builds the service's parts from Settings and hands them down."""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.calibrator import Calibrator
from retrieval.catalog import Catalog
from retrieval.collections import CollectionManager
from retrieval.config import Settings, VectorBackend
from retrieval.data_lock import DataDirLock
from retrieval.lexical import LexicalEncoder
from retrieval.models.registry import ModelRegistry
from retrieval.search import Searcher
from retrieval.store import open_vector_store
from retrieval.store.base import VectorStore


@dataclass(frozen=True, slots=True)
class Services:
    """Catalog, vector store and models of one process, and the objects built on them."""

    settings: Settings
    catalog: Catalog
    store: VectorStore
    models: ModelRegistry
    searcher: Searcher
    calibrator: Calibrator
    collections: CollectionManager
    lexical: LexicalEncoder
    data_lock: DataDirLock | None
    """Held while the embedded store is open: its folder belongs to this process."""

    @classmethod
    def open(cls, settings: Settings, *, models: ModelRegistry | None = None) -> Services:
        """Connect to the catalog (migrating it), open the vector store, register the models.

        Models load lazily, on first use. `models` lends a registry whose models may already
        be loaded (several services in one process, tests).
        """
        models = models or ModelRegistry.from_settings(settings)
        data_lock = None
        if settings.vector_backend is VectorBackend.EDGE:
            data_lock = DataDirLock(settings.data_dir)
            data_lock.acquire()
        try:
            catalog = Catalog.from_url(
                settings.catalog_url, job_part_documents=settings.job_part_documents
            )
        except BaseException:
            if data_lock is not None:
                data_lock.release()
            raise
        try:
            catalog.upgrade_schema()
            store = open_vector_store(settings)
        except BaseException:
            catalog.close()
            if data_lock is not None:
                data_lock.release()
            raise
        lexical = LexicalEncoder()
        searcher = Searcher(models=models, store=store, catalog=catalog, lexical=lexical)
        return cls(
            settings=settings,
            catalog=catalog,
            store=store,
            models=models,
            searcher=searcher,
            calibrator=Calibrator(searcher=searcher, catalog=catalog),
            collections=CollectionManager(catalog=catalog, store=store, models=models),
            lexical=lexical,
            data_lock=data_lock,
        )

    def close(self) -> None:
        self.store.close()
        self.catalog.close()
        if self.data_lock is not None:
            self.data_lock.release()
