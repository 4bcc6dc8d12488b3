"""HNSW at 10^5 points: recall@10 against exact search, and what each `hnsw_ef` costs.

1. Vectors: SciFact abstracts (title and text, as the pipeline heads chunks with their title)
   embedded as passages by all-MiniLM-L6-v2, and SciFact queries embedded as queries. The
   embeddings are cached in ``--cache`` (a .npz) so that later runs skip the encode.
2. Points: the real passages, then perturbed copies of them up to ``--points`` (10^5 by
   default): each copy is a real passage vector plus Gaussian noise (``--noise``, relative to
   a unit vector's per-dimension scale), normalised again; the copies' cosine to their source
   is printed; or, with ``--synthesis blends``, blends of two real passages (see
   `blends_from`). SciFact has about 12,500 chunks; 10^5 real passages of one domain are not in
   ../shared/data, so the copies stand in for them, and say so.
3. Index: the points go through the service's own `EdgeVectorStore` (its collection layout:
   dense, document and lexical vectors) and its background optimisation, which builds the
   HNSW graph (the service's SEMSEARCH_HNSW_M and SEMSEARCH_HNSW_EF_CONSTRUCT unless
   ``--m`` / ``--ef-construct`` say otherwise); the benchmark waits for it.
4. Search: every query against the shard, exact (the baseline: a full scan) and through HNSW
   at each ``--ef``; recall@10 is the share of the exact top 10 that HNSW returns, "score of
   the 10 vs exact" the sum of the cosines of HNSW's 10 over that of the exact 10 (how much
   worse the hits it returns instead are: at 10^6 a real passage has about 190 copies whose
   cosines to a query differ in the third decimal, so ids alone overstate the loss), and
   p50 / p95 latency is measured in the same run. "engine default" gives no `hnsw_ef`; the row
   marked "the service's" is the beam the store gives a collection of this size
   (SEMSEARCH_HNSW_EF, growing by SEMSEARCH_HNSW_EF_PER_MILLION_POINTS).

    python benchmarks/hnsw.py                          # 10^5 points
    python benchmarks/hnsw.py --points 1000000         # 10^6 (about 1.6 GB of vectors)
    python benchmarks/hnsw.py --m 16 --ef-construct 100   # the engine's default graph
    python benchmarks/hnsw.py --points 1000000 --synthesis blends   # blends, not copies

The data is read from ../shared/data/scifact (next to the repository); without it the
benchmark says so and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import qdrant_edge as qe
from load import parse_positive_ints
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from retrieval.config import Settings
from retrieval.hnsw import HnswPlan
from retrieval.models.registry import BUNDLED_MODELS, MINILM, ModelRegistry
from retrieval.store.base import (
    DENSE_VECTOR,
    ChunkPayload,
    ChunkPoint,
    point_id,
)
from retrieval.store.edge import EdgeVectorStore

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
COLLECTION = "hnsw"
UPSERT_POINTS = 2_000
EMBEDDINGS_CACHE = Path(".bench-hnsw") / "scifact-minilm.npz"
TOP_K = 10


def embeddings(cache: Path, console: Console) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """SciFact's passage and query embeddings, from the cache or encoded now (and cached)."""
    if cache.is_file():
        stored = np.load(cache)
        return stored["passages"], stored["queries"]
    with (SCIFACT / "corpus.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        queries = [json.loads(line)["text"] for line in lines if line.strip()]
    model = ModelRegistry(BUNDLED_MODELS, default=MINILM.name).get(MINILM.name)
    console.print(f"encoding {len(rows)} abstracts and {len(queries)} queries (cached after)")
    passages = model.encode_passages([f"{row['title']}\n{row['text']}" for row in rows])
    query_vectors = model.encode_queries(queries)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, passages=passages, queries=query_vectors)
    return passages, query_vectors


def points_from(
    passages: NDArray[np.float32], count: int, noise: float, seed: int
) -> NDArray[np.float32]:
    """The real passages, then perturbed copies of them (cycled) up to `count` rows."""
    rng = np.random.default_rng(seed)
    copies = max(0, count - len(passages))
    sources = passages[np.arange(copies) % len(passages)]
    scale = noise / np.sqrt(passages.shape[1])
    perturbed = sources + rng.normal(0.0, scale, sources.shape).astype(np.float32)
    perturbed /= np.linalg.norm(perturbed, axis=1, keepdims=True)
    return np.concatenate([passages, perturbed])[:count].astype(np.float32)


def blends_from(
    passages: NDArray[np.float32], count: int, seed: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The real passages, then blends of two of them up to `count` rows, and each blend's
    heavier source: w * a + (1 - w) * b with w uniform in [0.5, 1), normalised again.

    Blends lie between real passages, in the span the model's passages occupy, at every
    distance from their sources; perturbed copies form a shell of near-equals around each
    passage (at 10^6, about 190 whose cosines to a query differ in the third decimal), which
    makes recall by ids an unusually hard test. Neither is real text: both say so."""
    rng = np.random.default_rng(seed)
    extra = max(0, count - len(passages))
    heavier = rng.integers(0, len(passages), extra)
    lighter = rng.integers(0, len(passages), extra)
    weights = rng.uniform(0.5, 1.0, (extra, 1)).astype(np.float32)
    blends = weights * passages[heavier] + (1.0 - weights) * passages[lighter]
    blends /= np.linalg.norm(blends, axis=1, keepdims=True)
    return np.concatenate([passages, blends])[:count].astype(np.float32), heavier


def write_points(store: EdgeVectorStore, vectors: NDArray[np.float32], first_row: int = 0) -> None:
    """Upsert `vectors` as one-chunk documents numbered from `first_row`."""
    for start in range(0, len(vectors), UPSERT_POINTS):
        rows = vectors[start : start + UPSERT_POINTS]
        store.upsert(
            COLLECTION,
            [
                ChunkPoint(
                    id=point_id(COLLECTION, f"doc-{first_row + start + offset}", 0),
                    vector=row,
                    payload=ChunkPayload(
                        document_id=f"doc-{first_row + start + offset}",
                        chunk_index=0,
                        text="",
                        start=0,
                        end=0,
                    ),
                )
                for offset, row in enumerate(rows)
            ],
        )


def build_shard(
    root: Path, vectors: NDArray[np.float32], plan: HnswPlan, console: Console
) -> tuple[float, int | None]:
    """Write the points through the service's store and wait for its HNSW build: seconds,
    and the beam the store then gives a search of this collection."""
    store = EdgeVectorStore(root=root, optimize_after_points=len(vectors), hnsw=plan)
    try:
        store.create_collection(COLLECTION, dimension=vectors.shape[1])
        started = time.perf_counter()
        write_points(store, vectors)
        console.print(f"{len(vectors)} points written in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        store.wait_for_optimizations()
        built_s = time.perf_counter() - started
        if store.optimizations_completed != 1:
            sys.exit("the HNSW build did not complete; see the log above")
        return built_s, store.search_ef(COLLECTION)
    finally:
        store.close()


@dataclass(frozen=True, slots=True)
class Answer:
    ids: list[str]
    scores: list[float]
    seconds: float


def search(
    shard: qe.EdgeShard, query: NDArray[np.float32], params: qe.SearchParams | None
) -> Answer:
    started = time.perf_counter()
    hits = shard.query(
        qe.QueryRequest(
            limit=TOP_K,
            query=qe.Query.Nearest(query.tolist(), using=DENSE_VECTOR),
            params=params,
            with_payload=False,
        )
    )
    seconds = time.perf_counter() - started
    return Answer([str(hit.id) for hit in hits], [hit.score for hit in hits], seconds)


def main(args: argparse.Namespace) -> None:
    console = Console()
    if not SCIFACT.is_dir():
        sys.exit(f"SciFact is not at {SCIFACT} (../shared/data/scifact next to the repository)")
    passages, queries = embeddings(args.cache, console)
    if args.synthesis == "blends":
        vectors, heavier = blends_from(passages, args.points, args.seed)
        synthetic = "blends of two passages"
    else:
        vectors = points_from(passages, args.points, args.noise, args.seed)
        heavier = np.arange(len(vectors) - len(passages)) % len(passages)
        synthetic = "perturbed copies"
    made = vectors[len(passages) :]
    if len(made):
        similarity = np.einsum("ij,ij->i", made, passages[heavier])
        console.print(
            f"{len(made)} {synthetic}: cosine to their (heavier) source p50 "
            f"{np.median(similarity):.3f}, p5 {np.percentile(similarity, 5):.3f}"
        )
    with tempfile.TemporaryDirectory(prefix="semsearch-hnsw-") as folder:
        service = Settings().hnsw_plan
        plan = replace(
            service,
            m=args.m or service.m,
            ef_construct=args.ef_construct or service.ef_construct,
        )
        built_s, service_ef = build_shard(Path(folder), vectors, plan, console)
        shard = qe.EdgeShard.load(str(Path(folder) / COLLECTION))
        try:
            info = shard.info()
            exact = [search(shard, query, qe.SearchParams(exact=True)) for query in queries]
            graph_label = f"m {plan.m}, ef_construct {plan.ef_construct}"
            if plan == service:
                graph_label += " (the service's)"
            exact_s = [answer.seconds for answer in exact]
            table = Table(
                title=f"{len(vectors):,} points ({len(passages):,} real SciFact passages, "
                f"the rest {synthetic}), "
                f"{len(queries)} queries, top {TOP_K}; "
                f"indexed vectors {info.indexed_vectors_count:,}; "
                f"HNSW {graph_label}, build {built_s:.0f} s; "
                f"load average {os.getloadavg()[0]:.2f}"
            )
            for column in (
                "search",
                "recall@10",
                "score of the 10 vs exact",
                "p50 ms",
                "p95 ms",
                "p50 vs exact",
            ):
                table.add_column(column, justify="right")
            exact_p50 = float(np.median(exact_s))
            table.add_row(
                "exact (baseline)",
                "1.0000",
                "1.0000",
                f"{exact_p50 * 1000:.2f}",
                f"{np.percentile(exact_s, 95) * 1000:.2f}",
                "1.00",
            )
            beams = {*args.ef, *([service_ef] if service_ef is not None else [])}
            for ef in [None, *sorted(beams)]:
                params = qe.SearchParams(hnsw_ef=ef) if ef is not None else None
                answers = [search(shard, query, params) for query in queries]
                seconds = [answer.seconds for answer in answers]
                found = sum(
                    len(set(answer.ids) & set(truth.ids))
                    for answer, truth in zip(answers, exact, strict=True)
                )
                score_ratio = np.mean(
                    [
                        sum(answer.scores) / sum(truth.scores)
                        for answer, truth in zip(answers, exact, strict=True)
                    ]
                )
                p50 = float(np.median(seconds))
                label = "engine default" if ef is None else str(ef)
                table.add_row(
                    f"HNSW ef {label}"
                    + (" (the service's at this size)" if ef == service_ef else ""),
                    f"{found / (TOP_K * len(queries)):.4f}",
                    f"{score_ratio:.4f}",
                    f"{p50 * 1000:.2f}",
                    f"{np.percentile(seconds, 95) * 1000:.2f}",
                    f"{p50 / exact_p50:.2f}",
                )
        finally:
            shard.close()
    console.print(table)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument(
        "--ef",
        type=parse_positive_ints,
        default=[16, 32, 64, 128, 256, 512],
        help="comma-separated hnsw_ef values besides the engine's default",
    )
    parser.add_argument(
        "--synthesis",
        choices=("copies", "blends"),
        default="copies",
        help="what fills the points beyond the real passages: perturbed copies of them, or "
        "blends of two of them",
    )
    parser.add_argument("--noise", type=float, default=0.5, help="perturbation of the copies")
    parser.add_argument(
        "--m", type=int, default=0, help="HNSW edges per node (0: the service's SEMSEARCH_HNSW_M)"
    )
    parser.add_argument(
        "--ef-construct",
        type=int,
        default=0,
        help="HNSW build candidates (0: the service's SEMSEARCH_HNSW_EF_CONSTRUCT)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache",
        type=Path,
        default=EMBEDDINGS_CACHE,
        help="where the SciFact embeddings are kept between runs",
    )
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
