"""Whole documents or their best passage: which ranks SciFact better?

Two ways to rank documents for a query, measured on the same collection in one run:

- best passage (the baseline): a passage search grouped by document, each document ranked
  by the cosine of its best chunk (`group_by: document`);
- document vector: each document ranked by the cosine of the query and the mean of its
  chunks' vectors ("split, encode, average"; `unit: document`).

For each chunk budget (``--chunk-tokens``, 200 the default budget and smaller ones, which
split abstracts into more chunks), SciFact's corpus is ingested through the real write path
into a dense collection (embedded store, temporary data folder), every judged query runs both
ways, and nDCG@10, Recall@10, Recall@100 and MRR@10 (pytrec_eval) are printed with the ratio
of the document vector's figure to the best passage's, and the chunks per document.

    python benchmarks/document_unit.py                          # all 5,183 abstracts, 300 queries
    python benchmarks/document_unit.py --documents 1000 --queries 100 --chunk-tokens 200

The data is read from ../shared/data/scifact (next to the repository); without it the
benchmark says so and stops.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from load import parse_positive_ints
from rich.console import Console
from rich.table import Table

from evaluation.beir import BeirData, ingest_corpus, load_beir, run_queries, sample_beir, score_run
from retrieval.catalog import CollectionMode
from retrieval.collections import NewCollection
from retrieval.config import Settings
from retrieval.services import Services
from retrieval.units import SearchUnit

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
METRICS = ("nDCG@10", "Recall@10", "Recall@100", "MRR@10")


def measure(
    services: Services, data: BeirData, chunk_tokens: int, console: Console
) -> tuple[float, dict[SearchUnit, dict[str, float]], dict[SearchUnit, float]]:
    """Chunks per document, then each unit's metrics and p50 latency (ms) at one budget."""
    name = f"scifact-{chunk_tokens}"
    services.collections.create(
        NewCollection(
            name=name,
            threshold=-1.0,
            top_k=100,
            mode=CollectionMode.DENSE,
            chunk_max_tokens=chunk_tokens,
        )
    )
    started = time.perf_counter()
    ingest = ingest_corpus(services, name, data.documents)
    console.print(
        f"{chunk_tokens} tokens: {ingest.documents} documents, {ingest.chunks} chunks "
        f"in {time.perf_counter() - started:.0f} s"
    )
    metrics: dict[SearchUnit, dict[str, float]] = {}
    latency: dict[SearchUnit, float] = {}
    for unit in (SearchUnit.PASSAGE, SearchUnit.DOCUMENT):
        run = run_queries(services, data, collection=name, unit=unit)
        metrics[unit] = score_run(data.qrels, run.run)
        latency[unit] = run.latency.p50_ms
    return ingest.chunks / ingest.documents, metrics, latency


def main(args: argparse.Namespace) -> None:
    console = Console()
    if not SCIFACT.is_dir():
        sys.exit(f"SciFact is not at {SCIFACT} (../shared/data/scifact next to the repository)")
    data = sample_beir(
        load_beir(SCIFACT),
        max_documents=args.documents or None,
        max_queries=args.queries or None,
    )
    table = Table(
        title=f"SciFact: {len(data.documents)} documents, {len(data.queries)} queries, "
        f"all-MiniLM-L6-v2, dense; load average {os.getloadavg()[0]:.2f}"
    )
    for column in ("chunk tokens", "chunks/doc", "ranked by", *METRICS, "p50 ms"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="semsearch-document-unit-") as folder:
        services = Services.open(Settings(data_dir=Path(folder), query_cache_size=0))
        try:
            for chunk_tokens in args.chunk_tokens:
                per_document, metrics, latency = measure(services, data, chunk_tokens, console)
                baseline = metrics[SearchUnit.PASSAGE]
                for unit, label in (
                    (SearchUnit.PASSAGE, "best passage (baseline)"),
                    (SearchUnit.DOCUMENT, "document vector"),
                ):
                    cells = [
                        f"{metrics[unit][metric]:.4f}"
                        + (
                            f" ({metrics[unit][metric] / baseline[metric]:.3f}x)"
                            if unit is SearchUnit.DOCUMENT and baseline[metric]
                            else ""
                        )
                        for metric in METRICS
                    ]
                    table.add_row(
                        str(chunk_tokens),
                        f"{per_document:.2f}",
                        label,
                        *cells,
                        f"{latency[unit]:.1f}",
                    )
        finally:
            services.close()
    console.print(table)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=0, help="0: all of SciFact")
    parser.add_argument("--queries", type=int, default=0, help="0: every judged query")
    parser.add_argument(
        "--chunk-tokens",
        type=parse_positive_ints,
        default=[200, 64],
        help="comma-separated chunk budgets (default 200,64)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
