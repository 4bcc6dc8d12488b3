"""Chinese retrieval, dense against hybrid, through the real service: Recall@10 and MRR@10.

From a Chinese question-pair set (BQ by default): the label-1 pairs; every distinct sentence2
is a document; every distinct sentence1 is a query whose relevant documents are the sentence2s
it is paired with. The documents are ingested once through the real pipeline into an embedded
collection, and every query runs through the real search path in dense mode (the baseline)
and in hybrid mode; the metrics come from the evaluation harness (pytrec_eval).

    python benchmarks/zh_retrieval.py                          # BQ, all positive pairs
    python benchmarks/zh_retrieval.py --pairs ../shared/data/zh-pairs/atec.tsv --limit 1000
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from retrieval.catalog import CollectionMode
from retrieval.config import Settings
from retrieval.evaluation.beir import (
    BeirData,
    BeirDocument,
    ingest_corpus,
    new_evaluation_collection,
    run_queries,
    score_run,
)
from retrieval.services import Services

DEFAULT_PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "zh-pairs" / "bq.tsv"
METRICS = ("Recall@10", "MRR@10", "nDCG@10", "Recall@100")


def load_retrieval_set(path: Path, *, limit: int | None) -> BeirData:
    """Queries (distinct sentence1) and documents (distinct sentence2) of the label-1 pairs."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        pairs = [(row["sentence1"], row["sentence2"]) for row in rows if row["label"] == "1"]
    pairs = pairs[:limit] if limit else pairs
    document_ids: dict[str, str] = {}
    query_ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for question, match in pairs:
        document_id = document_ids.setdefault(match, f"d{len(document_ids)}")
        query_id = query_ids.setdefault(question, f"q{len(query_ids)}")
        qrels[query_id][document_id] = 1
    return BeirData(
        name=path.stem,
        split="label-1 pairs",
        documents=[BeirDocument(id=i, title="", text=text) for text, i in document_ids.items()],
        queries={i: text for text, i in query_ids.items()},
        qrels=dict(qrels),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=DEFAULT_PAIRS)
    parser.add_argument("--limit", type=int, default=None, help="use the first N positive pairs")
    args = parser.parse_args()
    console = Console()
    data = load_retrieval_set(args.pairs, limit=args.limit)
    console.print(f"{data.name}: {len(data.documents)} documents, {len(data.queries)} queries")

    with tempfile.TemporaryDirectory() as data_dir:
        services = Services.open(Settings(data_dir=Path(data_dir)))
        try:
            services.collections.create(new_evaluation_collection("zh", mode="dense"))
            ingest = ingest_corpus(services, "zh", data.documents)
            console.print(f"ingested in {ingest.seconds:.1f} s")
            results = {}
            for mode in (CollectionMode.DENSE, CollectionMode.HYBRID):
                queries = run_queries(services, data, collection="zh", mode=mode)
                results[mode] = (score_run(data.qrels, queries.run), queries.latency.mean_ms)
        finally:
            services.close()

    table = Table(title=f"{data.name}: dense (baseline) against hybrid")
    table.add_column("mode")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    table.add_column("ms/query", justify="right")
    baseline = results[CollectionMode.DENSE][0]
    for mode, (metrics, ms) in results.items():
        table.add_row(mode.value, *(f"{metrics[m]:.3f}" for m in METRICS), f"{ms:.1f}")
    hybrid = results[CollectionMode.HYBRID][0]
    table.add_row(
        "hybrid / dense",
        *(f"{hybrid[m] / baseline[m]:.2f}x" if baseline[m] else "-" for m in METRICS),
        "",
    )
    console.print(table)


if __name__ == "__main__":
    main()
