"""Embeddings of recent queries, least recently used out (cachetools' LRUCache behind a lock).

Customer-service bots and search boxes see the same questions again and again; a query that
was embedded a moment ago is not embedded again. Keys are (model, engine, text as embedded):
the text after cleaning and the term map, so a changed term map misses rather than serves a
vector of the old wording.
"""

from __future__ import annotations

import threading

import numpy as np
from cachetools import LRUCache
from numpy.typing import NDArray

from retrieval.metrics import QUERY_CACHE_LOOKUPS

CacheKey = tuple[str, str, str]


class QueryCache:
    """A bounded map of query rows shared by every model of a process; size 0 turns it off."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: LRUCache[CacheKey, NDArray[np.float32]] = LRUCache(maxsize=max(size, 1))
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> NDArray[np.float32] | None:
        if not self.size:
            return None
        with self._lock:
            row: NDArray[np.float32] | None = self._rows.get(key)
        QUERY_CACHE_LOOKUPS.labels(model=key[0], outcome="miss" if row is None else "hit").inc()
        return row

    def put(self, key: CacheKey, row: NDArray[np.float32]) -> None:
        if self.size:
            kept = row.copy()  # not a view that would keep its whole batch alive
            kept.setflags(write=False)
            with self._lock:
                self._rows[key] = kept
