"""Search latency stage by stage, and throughput under concurrent clients, against the model.

1. Data: SciFact abstracts indexed by the real pipeline (embedded: SQLite, Qdrant Edge, the
   ingestion thread) into a dense collection, each document tagged ``part`` = p0..p9 (a
   filterable keyword). The data folder is kept between runs (``--data-dir``); the first run
   builds it (all 5,183 abstracts, about 12,500 chunks: several minutes on two cores). With
   ``--points`` (10^5, say) the collection is then filled up with perturbed copies of its
   chunks: each a stored chunk's vector plus Gaussian noise (as benchmarks/hnsw.py makes
   them: cosine about 0.89 to the source), with the source's payload under a document id of
   its own, written through the store and indexed by its background HNSW build. SciFact
   has no 10^5 real passages, nor has ../shared/data in one domain: the copies stand in for
   them: the run that writes them names them in the tables' titles.
2. Stages, in this process, one query after another, query cache off: clean + term map, the
   model's encode of the one query, the vector search in the store, and the rest of a search
   (collection lookup, language check, hits), for ``--queries`` SciFact queries, without and
   with a filter (part = p3, a tenth of the chunks). The baseline is the encode alone.
3. HTTP: ``semsearch serve`` on the folder as a child process on 127.0.0.1, closed-loop clients
   (each an ``httpx.AsyncClient`` sending one search after another, or with ``--client wrk``
   a connection of wrk, which costs the two cores far less) at ``--clients`` (1, 8, 32, 64)
   for ``--duration`` s each, the query cache off (every query encoded): first with each
   query encoded alone (``SEMSEARCH_QUERY_BATCH_TEXTS=1``, the baseline), then with queries
   sharing encodes, for each of ``--models`` (a collection each); last, the cache on with 50
   questions asked again and again. Throughput with its ratio to the baseline's one client,
   p50/p95/p99, errors, the server's peak RSS (``--also-load`` adds models each server loads
   and holds while it is measured).

    python benchmarks/search.py                       # builds ./.bench-search on first use
    python benchmarks/search.py --clients 1,8 --duration 5 --queries 100
    python benchmarks/search.py --models all-MiniLM-L6-v2,all-MiniLM-L6-v2-int8
    python benchmarks/search.py --client wrk --models all-MiniLM-L6-v2-int8
    python benchmarks/search.py --data-dir .bench-search-1e5 --points 100000 \
        --models all-MiniLM-L6-v2,all-MiniLM-L6-v2-int8 --also-load multilingual-e5-small

The data is read from ../shared/data/scifact (next to the repository); without it the
benchmark says so and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import qdrant_edge as qe
from hnsw import points_from
from ingestion import SCIFACT, index_documents, load_queries, percentile
from load import RssSampler, child_server, wait_ready
from rich.console import Console
from rich.table import Table

from ingest.pipeline import IngestContext
from ingest.thread_queue import ThreadJobQueue
from retrieval.catalog import CollectionMode, DocumentInput
from retrieval.collections import NewCollection
from retrieval.config import Settings
from retrieval.filters import Filter, parse_filter
from retrieval.models.base import TextRole
from retrieval.services import Services
from retrieval.store.base import (
    DENSE_VECTOR,
    SCROLL_PAGE_POINTS,
    ChunkPayload,
    ChunkPoint,
    dense_vector_of,
    point_id,
)
from retrieval.store.edge import EdgeVectorStore

DEFAULT_MODEL = "all-MiniLM-L6-v2"
PARTS = 10
FILTER = {"part": "p3"}
READY_TIMEOUT_S = 120.0
COPY_NOISE = 0.5
"""The copies' perturbation, as benchmarks/hnsw.py's default."""
UPSERT_POINTS = 2_000
WRK_SCRIPT = Path(__file__).with_name("search_wrk.lua")


def load_documents() -> list[DocumentInput]:
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [
        DocumentInput(
            id=row["_id"],
            text=row["text"],
            title=row["title"],
            metadata={"part": f"p{position % PARTS}"},
        )
        for position, row in enumerate(rows)
    ]


def collection_of(model: str) -> str:
    return "scifact" if model == DEFAULT_MODEL else f"scifact-{model}"


def build(services: Services, console: Console, model: str) -> None:
    """Index SciFact into the model's collection unless the folder holds it."""
    name = collection_of(model)
    if name not in {record.name for record in services.catalog.list_collections()}:
        documents = load_documents()
        console.print(f"indexing {len(documents)} SciFact abstracts (once per data folder)")
        services.collections.create(
            NewCollection(
                name=name,
                top_k=10,
                model=model,
                mode=CollectionMode.DENSE,
                filterable={"part": "keyword"},
            )
        )
        queue = ThreadJobQueue(context=IngestContext.of(services))
        try:
            index_documents(services, queue, name, documents)
        finally:
            queue.close()


def stored_chunks(shard: qe.EdgeShard) -> tuple[list[ChunkPayload], list[list[float]]]:
    """Every point of a shard: its payloads and dense vectors."""
    payloads: list[ChunkPayload] = []
    vectors: list[list[float]] = []
    offset: qe.PointId | None = None
    while True:
        records, offset = shard.scroll(
            qe.ScrollRequest(
                offset=offset,
                limit=SCROLL_PAGE_POINTS,
                with_payload=True,
                with_vector=[DENSE_VECTOR],
            )
        )
        for record in records:
            payloads.append(ChunkPayload.from_dict(record.payload))
            vectors.append(dense_vector_of(record.vector, "Qdrant Edge"))
        if offset is None:
            return payloads, vectors


def pad_with_copies(
    settings: Settings, store_name: str, points: int, seed: int, console: Console
) -> str:
    """Fill a collection up to `points` with perturbed copies of its chunks (the module
    docstring), while no service holds the folder; what the collection then holds, in words."""
    shard = qe.EdgeShard.load(str(settings.shards_dir / store_name))
    try:
        stored = shard.count(qe.CountRequest(exact=True))
        if points <= stored:  # nothing to add (or added by an earlier run): not read
            return f"{stored} points"
        payloads, vectors = stored_chunks(shard)
    finally:
        shard.close()
    rows = points_from(np.asarray(vectors, dtype=np.float32), points, COPY_NOISE, seed)
    console.print(f"writing {points - len(vectors)} perturbed copies of {len(vectors)} chunks")
    # One HNSW build once every copy is written (as the service's writes would trigger it).
    store = EdgeVectorStore(
        root=settings.shards_dir,
        optimize_after_points=points - len(vectors),
        hnsw=settings.hnsw_plan,
    )
    try:
        for start in range(len(vectors), points, UPSERT_POINTS):
            batch = []
            for row in range(start, min(start + UPSERT_POINTS, points)):
                source = payloads[row % len(payloads)]
                document_id = f"copy-{row // len(payloads)}/{source.document_id}"
                batch.append(
                    ChunkPoint(
                        id=point_id(store_name, document_id, source.chunk_index),
                        vector=rows[row],
                        payload=dataclasses.replace(source, document_id=document_id),
                    )
                )
            store.upsert(store_name, batch)
        started = time.perf_counter()
        store.wait_for_optimizations()
        console.print(f"HNSW index built in {time.perf_counter() - started:.0f} s")
        total = store.count(store_name)
        return f"{total} points ({stored} SciFact chunks, {total - stored} perturbed copies)"
    finally:
        store.close()


@dataclass(slots=True)
class Stages:
    """Seconds per query of each stage of a search."""

    clean: list[float] = field(default_factory=list)
    encode: list[float] = field(default_factory=list)
    vector: list[float] = field(default_factory=list)
    search: list[float] = field(default_factory=list)

    def rest(self) -> list[float]:
        """The search's time beyond its three measured stages, per query (the stages and the
        whole are timed in separate calls, so a single difference can be below zero)."""
        return [
            whole - clean - encode - vector
            for whole, clean, encode, vector in zip(
                self.search, self.clean, self.encode, self.vector, strict=True
            )
        ]


def measure_stages(
    services: Services, name: str, queries: Sequence[str], query_filter: Filter | None
) -> Stages:
    """Each stage timed on its own, then the whole search, for every query in turn."""
    collection = services.catalog.get_collection(name)
    model = services.models.get(collection.model)
    stages = Stages()
    for query in queries:
        started = time.perf_counter()
        prepared = services.searcher.prepare_query(collection, query)
        cleaned = time.perf_counter()
        vector = model.encode([prepared], role=TextRole.QUERY)[0].tolist()
        encoded = time.perf_counter()
        services.store.search(
            collection.store_name,
            vector,
            top_k=collection.top_k,
            threshold=collection.threshold,
            query_filter=query_filter,
        )
        searched = time.perf_counter()
        services.searcher.search(name, query, query_filter=query_filter)
        stages.clean.append(cleaned - started)
        stages.encode.append(encoded - cleaned)
        stages.vector.append(searched - encoded)
        stages.search.append(time.perf_counter() - searched)
    return stages


def stages_table(results: dict[str, Stages], held: str) -> Table:
    table = Table(title=f"one client, in process: ms per search of {held} (query cache off)")
    for column in ("model, filter", "stage", "p50", "p95", "p99", "p50 vs encode"):
        table.add_column(column, justify="right")
    for label, stages in results.items():
        encode_p50 = statistics.median(stages.encode)
        for stage, values in (
            ("encode (baseline)", stages.encode),
            ("clean + term map", stages.clean),
            ("vector search", stages.vector),
            ("the rest", stages.rest()),
            ("whole search", stages.search),
        ):
            table.add_row(
                label,
                stage,
                *(f"{percentile(values, share) * 1000:.2f}" for share in (0.5, 0.95, 0.99)),
                f"{statistics.median(values) / encode_p50:.2f}",
            )
    return table


@dataclass(slots=True)
class Measured:
    """What one level of clients got: answers (HTTP 200) over the wall time, the others, and
    the answers' latency percentiles in seconds."""

    wall_s: float
    answered: int
    errors: int
    p50_s: float
    p95_s: float
    p99_s: float

    @classmethod
    def of(cls, wall_s: float, latencies: list[float], errors: int) -> Measured:
        p50, p95, p99 = (percentile(latencies, share) for share in (0.5, 0.95, 0.99))
        return cls(wall_s, len(latencies), errors, p50, p95, p99)

    @property
    def throughput(self) -> float:
        return self.answered / self.wall_s


@dataclass(slots=True)
class Level:
    label: str
    clients: int
    measured: Measured
    peak_rss: int | None


async def closed_loop(
    base_url: str,
    name: str,
    *,
    queries: Sequence[str],
    clients: int,
    duration_s: float,
    seed: int,
) -> Measured:
    """`clients` Python clients (httpx) each searching without pause for `duration_s`."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s

    async def client(index: int) -> None:
        nonlocal errors
        rng = random.Random(f"{seed}-{clients}-{index}")
        async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as http:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    answer = await http.post(
                        f"/collections/{name}/search", json={"query": rng.choice(queries)}
                    )
                except httpx.HTTPError:
                    errors += 1
                    continue
                if answer.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(clients)))
    return Measured.of(time.perf_counter() - started, latencies, errors)


def wrk_loop(
    base_url: str, name: str, *, queries: Sequence[str], clients: int, duration_s: float
) -> Measured:
    """`clients` connections of wrk (one C thread, a fraction of a core, where Python clients
    take about as much CPU as the server's request handling) each searching without pause,
    the queries in turn (search_wrk.lua)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as bodies:
        bodies.writelines(json.dumps({"query": query}) + "\n" for query in queries)
        bodies.flush()
        completed = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{clients}",
                f"-d{max(1, round(duration_s))}s",
                "--timeout",
                "60s",
                "-s",
                str(WRK_SCRIPT),
                f"{base_url}/collections/{name}/search",
            ],
            env={**os.environ, "SEMSEARCH_WRK_BODIES": bodies.name},
            capture_output=True,
            text=True,
            check=True,
        )
    # wrk stops with requests unanswered, which the server still works through: wait for
    # them behind one more search, or the next level's first answers would wait for them too.
    httpx.post(
        f"{base_url}/collections/{name}/search", json={"query": queries[0]}, timeout=READY_TIMEOUT_S
    )
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    errors = figures["status_errors"] + figures["socket_errors"]
    return Measured(
        wall_s=figures["duration_us"] / 1e6,
        answered=figures["requests"] - figures["status_errors"],
        errors=errors,
        p50_s=figures["p50_us"] / 1e6,
        p95_s=figures["p95_us"] / 1e6,
        p99_s=figures["p99_us"] / 1e6,
    )


def drive(
    args: argparse.Namespace,
    base_url: str,
    name: str,
    queries: Sequence[str],
    *,
    clients: int,
    duration_s: float,
) -> Measured:
    """One level of `clients` closed-loop clients of the kind `--client` names."""
    if args.client == "wrk":
        return wrk_loop(base_url, name, queries=queries, clients=clients, duration_s=duration_s)
    return asyncio.run(
        closed_loop(
            base_url,
            name,
            queries=queries,
            clients=clients,
            duration_s=duration_s,
            seed=args.seed,
        )
    )


def run_levels(
    args: argparse.Namespace,
    console: Console,
    model: str,
    queries: Sequence[str],
    *,
    label: str,
    environment: dict[str, str],
    levels: Sequence[int],
) -> list[Level]:
    """`semsearch serve` with `environment` added, driven at each number of clients."""
    name = collection_of(model)
    measured = []
    with child_server(console, unlimited=True, data_dir=args.data_dir, environment=environment) as (
        base_url,
        server,
    ):
        wait_ready(base_url, {}, server, READY_TIMEOUT_S)
        sampler = RssSampler(server.process.pid)
        sampler.start()
        try:
            for other in args.also_load:  # held beside the searched model (peak RSS)
                httpx.post(
                    f"{base_url}/v1/embeddings",
                    json={"model": other, "input": "a warm-up"},
                    timeout=READY_TIMEOUT_S,
                ).raise_for_status()
            drive(args, base_url, name, queries, clients=max(levels), duration_s=3.0)
            for clients in levels:
                mark = sampler.mark()
                measured_level = drive(
                    args, base_url, name, queries, clients=clients, duration_s=args.duration
                )
                measured.append(
                    Level(f"{model}, {label}", clients, measured_level, sampler.peak(mark))
                )
                console.print(
                    f"{model}, {label}, {clients} clients: {measured_level.throughput:.1f}/s"
                )
        finally:
            sampler.stop()
    return measured


def levels_table(levels: Sequence[Level], held: str, client: str) -> Table:
    """Throughput of every level against the first (one client, the first model)."""
    table = Table(title=f"HTTP on 127.0.0.1, closed-loop clients ({client}), {held}")
    for column in (
        "",
        "clients",
        "searches/s",
        "vs 1 client",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "peak RSS MiB",
    ):
        table.add_column(column, justify="right")
    baseline = levels[0].measured.throughput
    for level in levels:
        measured = level.measured
        table.add_row(
            level.label,
            str(level.clients),
            f"{measured.throughput:.1f}",
            f"{measured.throughput / baseline:.2f}",
            *(f"{value * 1000:.0f}" for value in (measured.p50_s, measured.p95_s, measured.p99_s)),
            str(measured.errors),
            f"{level.peak_rss / 2**20:.0f}" if level.peak_rss else "-",
        )
    return table


def main() -> None:
    args = parse_args()
    console = Console(width=max(Console().width, 120))
    if not (SCIFACT / "corpus.jsonl").is_file():
        console.print(f"[yellow]skipped: SciFact is missing ({SCIFACT})[/]")
        return
    queries = load_queries()
    random.Random(args.seed).shuffle(queries)
    console.print(f"load average: {', '.join(f'{value:.1f}' for value in os.getloadavg())}")
    settings = Settings(data_dir=args.data_dir, query_cache_size=0)
    services = Services.open(settings)
    try:
        store_names = []
        for model in args.models:
            build(services, console, model)
            store_names.append(services.catalog.get_collection(collection_of(model)).store_name)
    finally:
        services.close()
    for store_name in store_names:  # every model's collection holds the same SciFact chunks
        held = pad_with_copies(settings, store_name, args.points, args.seed, console)
    services = Services.open(settings)
    stages: dict[str, Stages] = {}
    try:
        for model in args.models:
            name = collection_of(model)
            services.searcher.search(name, queries[0])  # loads the model
            sample = queries[: args.queries]
            stages[f"{model}, no filter"] = measure_stages(services, name, sample, None)
            stages[f"{model}, part = p3"] = measure_stages(
                services, name, sample, parse_filter(FILTER)
            )
    finally:
        services.close()
    console.print(stages_table(stages, held))
    no_cache = {"SEMSEARCH_QUERY_CACHE_SIZE": "0"}
    first = args.models[0]
    levels = run_levels(
        args,
        console,
        first,
        queries,
        label="each query alone (baseline)",
        environment={**no_cache, "SEMSEARCH_QUERY_BATCH_TEXTS": "1"},
        levels=args.clients,
    )
    for model in args.models:
        levels += run_levels(
            args,
            console,
            model,
            queries,
            label="queries share encodes",
            environment=no_cache,
            levels=args.clients,
        )
    levels += run_levels(
        args,
        console,
        first,
        queries[:50],
        label="shared, query cache on",
        environment={},
        levels=[1, max(args.clients)],
    )
    console.print(levels_table(levels, held, args.client))
    console.print(
        "[dim]query cache on: 50 distinct queries asked again and again, as a support bot hears "
        f"them. load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}[/]"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(".bench-search"))
    parser.add_argument("--queries", type=int, default=300, help="queries timed per stage")
    parser.add_argument(
        "--clients",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 8, 32, 64],
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per level")
    parser.add_argument(
        "--models",
        type=lambda text: text.split(","),
        default=[DEFAULT_MODEL],
        help="registered models, each with a collection of its own (the first is the baseline)",
    )
    parser.add_argument(
        "--points",
        type=int,
        default=0,
        help="fill each collection up to this many points with perturbed copies of its chunks",
    )
    parser.add_argument(
        "--also-load",
        type=lambda text: text.split(","),
        default=[],
        help="models each server loads (and keeps) before it is measured, e.g. "
        "multilingual-e5-small: peak RSS with every bundled model in memory",
    )
    parser.add_argument(
        "--client",
        choices=("python", "wrk"),
        default="python",
        help="the HTTP clients: httpx coroutines in this process, or wrk (apt install wrk), "
        "which leaves the server most of the cores",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("--client wrk: wrk is not installed (apt-get install wrk)")
    return args


if __name__ == "__main__":
    main()
