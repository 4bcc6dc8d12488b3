"""The one place that builds the service's parts from Settings and hands them down."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.pipeline import IngestContext
from ingest.splitter import HuggingFaceTokenizer
from retrieval.catalog import Catalog
from retrieval.collections import CollectionManager
from retrieval.config import Settings
from retrieval.embedder import Embedder
from retrieval.lexical import LexicalEncoder
from retrieval.search import Searcher
from retrieval.store import open_vector_store
from retrieval.store.base import VectorStore


@dataclass(frozen=True, slots=True)
class Services:
    """Catalog, vector store and model of one process, and the objects built on them."""

    settings: Settings
    catalog: Catalog
    store: VectorStore
    embedder: Embedder
    searcher: Searcher
    collections: CollectionManager
    ingest_context: IngestContext

    @classmethod
    def open(cls, settings: Settings, *, embedder: Embedder | None = None) -> Services:
        """Connect to the catalog (migrating it), open the vector store, load the model.

        `embedder` lends an already loaded model (several services in one process, tests).
        """
        catalog = Catalog.from_url(settings.catalog_url)
        try:
            catalog.upgrade_schema()
            store = open_vector_store(settings)
        except BaseException:
            catalog.close()
            raise
        try:
            embedder = embedder or Embedder.load(
                model_path=settings.model_path,
                device=settings.device,
                batch_size=settings.embed_batch_size,
            )
        except BaseException:
            store.close()
            catalog.close()
            raise
        lexical = LexicalEncoder()
        # One tokenizer of its own (not the one `encode` drives), serialised by its lock.
        tokenizer = HuggingFaceTokenizer(tokenizer=embedder.copy_tokenizer())
        return cls(
            settings=settings,
            catalog=catalog,
            store=store,
            embedder=embedder,
            searcher=Searcher(
                embedder=embedder,
                store=store,
                catalog=catalog,
                lexical=lexical,
                tokenizer=tokenizer,
            ),
            collections=CollectionManager(catalog=catalog, store=store, embedder=embedder),
            ingest_context=IngestContext(
                catalog=catalog,
                embedder=embedder,
                store=store,
                tokenizer=tokenizer,
                lexical=lexical,
            ),
        )

    def close(self) -> None:
        self.store.close()
        self.catalog.close()
