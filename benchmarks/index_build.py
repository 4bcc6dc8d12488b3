"""Searches while the embedded store builds an HNSW index, at each priority of the build.

The store builds a collection's graph in a child process (retrieval/store/edge.py) that runs
``SEMSEARCH_OPTIMIZE_NICENESS`` below the service's priority. This measures what that buys:

1. Points: 10^5 by default, from benchmarks/hnsw.py (SciFact abstracts embedded by
   all-MiniLM-L6-v2 and perturbed copies of them; the embeddings are cached there).
2. For each niceness (``--niceness``, 0 and 10 by default, in the order a b b a so that
   drift cancels), a fresh store gets every point but the last batch; then searches run for
   20 s (idle: the baseline), the last batch starts the build, and searches run again until
   it ends (during the build). Searches come at ``--rate`` per second (10 by default, about
   half of what one process answers here), each timed from when it was due, so that waiting
   behind the one before counts; ``--rate 0`` runs them one after another, which keeps both
   cores busy and leaves a build at a lower priority almost nothing.
3. A search is what the service does in process: the model encodes a SciFact query (torch,
   ``SEMSEARCH_ENGINE_THREADS`` threads), and the store searches its shard, which has no
   graph yet either way (an exact scan), for the top 10.

    python benchmarks/index_build.py
    python benchmarks/index_build.py --points 50000 --niceness 0,10,19 --rate 5

The data is read from ../shared/data/scifact (next to the repository); without it the
benchmark says so and stops.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hnsw import (
    COLLECTION,
    EMBEDDINGS_CACHE,
    SCIFACT,
    UPSERT_POINTS,
    embeddings,
    points_from,
    write_points,
)
from ingestion import load_queries, percentile
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from retrieval.config import Settings
from retrieval.models.base import EmbeddingModel
from retrieval.models.registry import BUNDLED_MODELS, MINILM, ModelRegistry
from retrieval.store.edge import EdgeVectorStore

IDLE_S = 20.0
"""How long searches run before the build, for the baseline."""
BUILD_LIMIT_S = 1800.0
"""A build that has not ended by then failed (its error is logged) or starves."""


@dataclass(frozen=True, slots=True)
class Round:
    niceness: int
    idle_ms: list[float]
    building_ms: list[float]
    build_s: float


def search(store: EdgeVectorStore, model: EmbeddingModel, query: str) -> None:
    vector = model.encode_queries([query])[0]
    store.search(COLLECTION, vector, top_k=10)


class Searches:
    """Searches at `rate` per second (0: one after another), each timed from when it was due,
    so that a search kept waiting by the one before counts its wait."""

    def __init__(self, model: EmbeddingModel, queries: list[str], rate: float) -> None:
        self._model, self._queries = model, queries
        self._interval = 1 / rate if rate else 0.0

    def run(self, store: EdgeVectorStore, go_on: Callable[[], bool]) -> list[float]:
        taken: list[float] = []
        due = time.perf_counter()
        while go_on():
            time.sleep(max(0.0, due - time.perf_counter()))
            if not self._interval:
                due = time.perf_counter()
            query = self._queries[len(taken) % len(self._queries)]
            search(store, self._model, query)
            taken.append((time.perf_counter() - due) * 1000)
            due += self._interval
        return taken


def measure(vectors: NDArray[np.float32], niceness: int, searches: Searches) -> Round:
    with tempfile.TemporaryDirectory(prefix="semsearch-build-") as folder:
        store = EdgeVectorStore(
            root=Path(folder),
            optimize_after_points=len(vectors),
            hnsw=Settings().hnsw_plan,
            optimize_niceness=niceness,
        )
        try:
            store.create_collection(COLLECTION, dimension=vectors.shape[1])
            last = len(vectors) - UPSERT_POINTS
            write_points(store, vectors[:last])
            until = time.perf_counter() + IDLE_S
            idle = searches.run(store, lambda: time.perf_counter() < until)
            write_points(store, vectors[last:], first_row=last)
            started = time.perf_counter()
            building = searches.run(
                store,
                lambda: (
                    store.optimizations_completed == 0
                    and time.perf_counter() - started < BUILD_LIMIT_S
                ),
            )
            build_s = time.perf_counter() - started
            if store.optimizations_completed == 0:
                sys.exit(f"the build did not end within {BUILD_LIMIT_S:.0f} s; see the log")
        finally:
            store.close()
    return Round(niceness, idle, building, build_s)


def main(args: argparse.Namespace) -> None:
    console = Console()
    if not SCIFACT.is_dir():
        sys.exit(f"SciFact is not at {SCIFACT} (../shared/data/scifact next to the repository)")
    if args.points <= 2 * UPSERT_POINTS:
        sys.exit(f"--points must exceed {2 * UPSERT_POINTS}: the last {UPSERT_POINTS} start it")
    passages, _ = embeddings(args.cache, console)
    vectors = points_from(passages, args.points, noise=0.5, seed=0)
    model = ModelRegistry(BUNDLED_MODELS, default=MINILM.name).get(MINILM.name)  # no query cache
    queries = load_queries()
    searches = Searches(model, queries, args.rate)
    rounds = []
    for niceness in [*args.niceness, *reversed(args.niceness)]:
        console.print(f"niceness {niceness}: writing {len(vectors):,} points, then searching")
        rounds.append(measure(vectors, niceness, searches))
    plan = Settings().hnsw_plan
    table = Table(
        title=f"{len(vectors):,} points, HNSW m {plan.m} / ef_construct {plan.ef_construct}; "
        f"searches (encode + exact scan) "
        f"{f'{args.rate:g}/s' if args.rate else 'one after another'}; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    for column in (
        "build niceness",
        "idle p50 / p95 ms",
        "during the build p50 / p95 ms",
        "p50 / p95 vs idle",
        "searches during the build",
        "build s",
    ):
        table.add_column(column, justify="right")
    for result in rounds:
        idle = (percentile(result.idle_ms, 0.5), percentile(result.idle_ms, 0.95))
        busy = (percentile(result.building_ms, 0.5), percentile(result.building_ms, 0.95))
        table.add_row(
            str(result.niceness),
            f"{idle[0]:.1f} / {idle[1]:.1f}",
            f"{busy[0]:.1f} / {busy[1]:.1f}",
            f"{busy[0] / idle[0]:.2f}x / {busy[1] / idle[1]:.2f}x",
            str(len(result.building_ms)),
            f"{result.build_s:.0f}",
        )
    console.print(table)


def parse_niceness(text: str) -> list[int]:
    """A comma-separated list of priorities from 0 to 19, as an argparse `type`."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from exc
    if not values or any(not 0 <= value <= 19 for value in values):
        raise argparse.ArgumentTypeError("a list of priorities from 0 to 19, e.g. 0,10")
    return values


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument(
        "--niceness",
        type=parse_niceness,
        default=[0, 10],
        help="comma-separated priorities of the build below the service's",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=10.0,
        help="searches per second, each timed from when it was due (0: one after another)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=EMBEDDINGS_CACHE,
        help="where benchmarks/hnsw.py keeps the SciFact embeddings",
    )
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
