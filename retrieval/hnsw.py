"""How the stores build their HNSW graphs and how widely they search them.

A graph's density (`m` edges per node, `ef_construct` build candidates) is written into a
collection when it is made (the embedded store also rebuilds an existing collection's graph
with it, store/edge.py); the search beam (`hnsw_ef`) is chosen per search and grows with the
collection, because the share of the exact top 10 a beam finds falls as the graph grows.
The settings that feed a plan (retrieval/config.py) give the figures behind their defaults;
benchmarks/hnsw.py measures them (README, "HNSW: the graph and the beam").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_EF = 4096
"""The widest beam a search is given, however large the collection."""

FULL_SCAN_KB = 10_000
"""Qdrant's default: a segment whose vectors take less than this is scanned, not indexed."""


@dataclass(frozen=True, slots=True)
class HnswPlan:
    """The graph a new collection gets and the beam its searches get."""

    m: int
    ef_construct: int
    least_ef: int
    """The beam of a search in a collection of any size."""
    ef_per_million_points: int
    """The beam grows with the collection: this many candidates per 10^6 points."""

    def __post_init__(self) -> None:
        if self.m < 2 or self.ef_construct < 1 or not 1 <= self.least_ef <= MAX_EF:
            raise ValueError(f"impossible HNSW plan: {self}")
        if self.ef_per_million_points < 0:
            raise ValueError("ef_per_million_points cannot be negative")

    @property
    def graph(self) -> tuple[int, int]:
        """(m, ef_construct): what a graph built under this plan is made with."""
        return self.m, self.ef_construct

    def search_ef(self, points: int) -> int:
        """The beam for a search in a collection of `points` points."""
        grown = math.ceil(max(0, points) * self.ef_per_million_points / 1_000_000)
        return min(MAX_EF, max(self.least_ef, grown))


class BeamsBySize:
    """Each collection's beam, from its size read at most once every `refresh_s` seconds:
    for a store whose size is a round trip away (a Qdrant server)."""

    def __init__(
        self,
        plan: HnswPlan,
        *,
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plan = plan
        self._refresh_s = refresh_s
        self._clock = clock
        self._read: dict[str, tuple[float, int]] = {}
        """Collection name -> (when its size was read, the beam for that size)."""

    def beam(self, name: str, read_size: Callable[[], int]) -> int:
        now = self._clock()
        read = self._read.get(name)
        if read is None or now - read[0] >= self._refresh_s:
            read = (now, self._plan.search_ef(read_size()))
            self._read[name] = read
        return read[1]

    def forget(self, name: str) -> None:
        self._read.pop(name, None)
