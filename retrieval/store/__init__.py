"""The vector store: `open_vector_store` picks the engine from Settings, once."""

from __future__ import annotations

import math

from qdrant_client import QdrantClient

from retrieval.config import Settings
from retrieval.store.base import VectorStore
from retrieval.store.edge import EdgeVectorStore
from retrieval.store.server import ServerVectorStore


def open_vector_store(settings: Settings) -> VectorStore:
    """A Qdrant server store when SEMSEARCH_QDRANT_URL is set, else embedded Edge shards."""
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        client = QdrantClient(
            url=settings.qdrant_url,
            api_key=api_key,
            # qdrant-client takes whole seconds (and rounds up itself).
            timeout=math.ceil(settings.qdrant_timeout_s),
            # Its version probe runs on a background thread and can only warn, after the
            # fact; an unreachable server already answers 503 on the first real call.
            check_compatibility=False,
        )
        return ServerVectorStore(client=client, hnsw=settings.hnsw_plan)
    return EdgeVectorStore(
        root=settings.shards_dir,
        optimize_after_points=settings.optimize_after_points,
        optimize_niceness=settings.optimize_niceness,
        hnsw=settings.hnsw_plan,
    )
