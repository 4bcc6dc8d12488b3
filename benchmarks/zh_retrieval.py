"""Chinese retrieval per model: dense, lexical and hybrid through the real service.

From a Chinese question-pair set (BQ by default): the label-1 pairs; every distinct sentence2
is a document; every distinct sentence1 is a query whose relevant documents are the sentence2s
it is paired with. For each model the documents are ingested once through the real pipeline
into an embedded collection on that model, and every query runs through the real search path
in dense, lexical and hybrid mode; the metrics come from the evaluation harness (pytrec_eval).
The last row of each model is hybrid against the better of its two legs (by MRR@10): hybrid
must not do worse than its best leg.

    python benchmarks/zh_retrieval.py                          # BQ, all positive pairs
    python benchmarks/zh_retrieval.py --pairs ../shared/data/zh-pairs/atec.tsv --limit 1000
    python benchmarks/zh_retrieval.py --models multilingual-e5-small --limit 1000
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from evaluation.beir import (
    BeirData,
    BeirDocument,
    ingest_corpus,
    new_evaluation_collection,
    run_queries,
    score_run,
)
from retrieval.catalog import CollectionMode
from retrieval.config import Settings
from retrieval.models.registry import BUNDLED_MODELS, MINILM, ModelRegistry
from retrieval.services import Services

DEFAULT_PAIRS = Path(__file__).resolve().parents[2] / "shared" / "data" / "zh-pairs" / "bq.tsv"
METRICS = ("Recall@10", "MRR@10", "nDCG@10", "Recall@100")
MODES = (CollectionMode.DENSE, CollectionMode.LEXICAL, CollectionMode.HYBRID)


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
    parser.add_argument(
        "--models", nargs="+", default=[spec.name for spec in BUNDLED_MODELS], metavar="MODEL"
    )
    args = parser.parse_args()
    console = Console()
    data = load_retrieval_set(args.pairs, limit=args.limit)
    console.print(f"{data.name}: {len(data.documents)} documents, {len(data.queries)} queries")
    registry = ModelRegistry(BUNDLED_MODELS, default=MINILM.name)

    table = Table(title=f"{data.name}: each model's dense, lexical and hybrid search")
    table.add_column("model")
    table.add_column("mode")
    for metric in METRICS:
        table.add_column(metric, justify="right")
    table.add_column("ms/query", justify="right")
    for model in args.models:
        with tempfile.TemporaryDirectory() as data_dir:
            services = Services.open(Settings(data_dir=Path(data_dir)), models=registry)
            try:
                services.collections.create(
                    new_evaluation_collection("zh", mode="dense", model=model)
                )
                ingest = ingest_corpus(services, "zh", data.documents)
                console.print(f"{model}: ingested in {ingest.seconds:.1f} s")
                results = {}
                for mode in MODES:
                    queries = run_queries(services, data, collection="zh", mode=mode)
                    results[mode] = (score_run(data.qrels, queries.run), queries.latency.mean_ms)
            finally:
                services.close()
        for mode, (metrics, ms) in results.items():
            table.add_row(model, mode.value, *(f"{metrics[m]:.3f}" for m in METRICS), f"{ms:.1f}")
        best_leg = max(
            (CollectionMode.DENSE, CollectionMode.LEXICAL),
            key=lambda leg: results[leg][0]["MRR@10"],
        )
        hybrid, best = results[CollectionMode.HYBRID][0], results[best_leg][0]
        table.add_row(
            model,
            f"hybrid / {best_leg.value}",
            *(f"{hybrid[m] / best[m]:.2f}x" if best[m] else "-" for m in METRICS),
            "",
        )
        table.add_section()
    console.print(table)


if __name__ == "__main__":
    main()
