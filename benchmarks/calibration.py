"""Does a calibrated threshold keep its promise on questions it was not chosen on?

For each bundled model and each search mode, labelled samples are split in two halves
(seeded, stratified): the threshold is chosen on one half for a precision target (0.90 by
default) with the service's own calibration, and precision and recall are counted on the
other half at that threshold. Two data sets:

- BANKING77, intent recall: examples of most intents from the training set are indexed as
  documents (their intent in metadata); test questions are the queries, relevant = the
  examples of their intent; the test questions of the intents left out are out of scope.
- zh-pairs (BQ and ATEC), matching: each pair scored as a search scores a chunk for a query.

It also measures the score definition the threshold applies to: the cosine (what the service
uses) against max(cosine, share of query words found), the definition it replaced: the one
whose reached precision stays closer to the promised one is the one to trust.

    python benchmarks/calibration.py                              # defaults below
    python benchmarks/calibration.py --precision 0.9 --queries 1500 --pairs 2000
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from evaluation.beir import InlineJobQueue
from ingest.pipeline import IngestContext, submit_documents
from retrieval.calibration import (
    SampleOutcome,
    Target,
    TargetKind,
    calibrate,
    counts_at,
)
from retrieval.calibrator import PairSample, QuerySample, hit_score, judge_hits
from retrieval.catalog import CollectionMode, DocumentInput
from retrieval.collections import NewCollection
from retrieval.config import Settings
from retrieval.models.registry import BUNDLED_MODELS, MINILM, ModelRegistry
from retrieval.search import Hit
from retrieval.services import Services

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODES = (CollectionMode.DENSE, CollectionMode.LEXICAL, CollectionMode.HYBRID)
SEED = 7
OUT_OF_SCOPE_SHARE = 0.15
"""Share of BANKING77's intents left out of the index: their questions are out of scope."""


def max_of_cosine_and_coverage(hit: Hit) -> float:
    """The score definition the service used before: the greater of cosine and word share."""
    return max(hit.dense_score, hit.lexical_score or 0.0)


SCORES: dict[str, Callable[[Hit], float]] = {
    "cosine": hit_score,
    "max(cos, words)": max_of_cosine_and_coverage,
}


@dataclass(frozen=True, slots=True)
class Row:
    data: str
    model: str
    mode: str
    score: str
    threshold: float
    promised_precision: float | None
    reached_precision: float | None
    reached_recall: float | None
    fitted: int
    held_out: int

    @property
    def gap(self) -> float | None:
        if self.promised_precision is None or self.reached_precision is None:
            return None
        return self.reached_precision - self.promised_precision


def halves(outcomes: Sequence[SampleOutcome]) -> tuple[list[SampleOutcome], list[SampleOutcome]]:
    """Two halves, each with half of the answerable and half of the other samples."""
    rng = random.Random(SEED)
    first: list[SampleOutcome] = []
    second: list[SampleOutcome] = []
    for answerable in (True, False):
        group = [outcome for outcome in outcomes if outcome.has_answer is answerable]
        rng.shuffle(group)
        first += group[: len(group) // 2]
        second += group[len(group) // 2 :]
    return first, second


def held_out_row(outcomes: Sequence[SampleOutcome], target: Target, **labels: str) -> Row:
    fit, test = halves(outcomes)
    calibration = calibrate(fit, target)
    reached = counts_at(test, calibration.threshold)
    return Row(
        **labels,  # type: ignore[arg-type]
        threshold=calibration.threshold,
        promised_precision=calibration.promised.precision.value,
        reached_precision=reached.precision.value,
        reached_recall=reached.recall.value,
        fitted=len(fit),
        held_out=len(test),
    )


def banking_samples(limit: int) -> tuple[list[DocumentInput], list[QuerySample]]:
    """Indexed examples (20 per kept intent) and test questions, in scope or not."""
    by_intent: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for split in ("train", "test"):
        with (DATA / "banking77" / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                by_intent[row["category"]][split].append(row["text"])
    intents = sorted(by_intent)
    random.Random(SEED).shuffle(intents)
    left_out = set(intents[: round(len(intents) * OUT_OF_SCOPE_SHARE)])
    documents: list[DocumentInput] = []
    examples: dict[str, list[str]] = {}
    for intent in intents:
        if intent in left_out:
            continue
        texts = by_intent[intent]["train"][:20]
        ids = [f"{intent}-{n}" for n in range(len(texts))]
        examples[intent] = ids
        documents += [
            DocumentInput(id=i, text=t, metadata={"intent": intent})
            for i, t in zip(ids, texts, strict=True)
        ]
    queries = [
        QuerySample(query=text, relevant=tuple(examples.get(intent, ())))
        for intent in intents
        for text in by_intent[intent]["test"]
    ]
    random.Random(SEED).shuffle(queries)
    return documents, queries[:limit]


def pair_samples(name: str, limit: int) -> list[PairSample]:
    with (DATA / "zh-pairs" / f"{name}.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    random.Random(SEED).shuffle(rows)
    return [
        PairSample(a=row["sentence1"], b=row["sentence2"], match=row["label"] == "1")
        for row in rows[:limit]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument("--queries", type=int, default=1200, help="BANKING77 test questions")
    parser.add_argument("--pairs", type=int, default=2000, help="pairs of each zh set")
    parser.add_argument(
        "--models", nargs="+", default=[spec.name for spec in BUNDLED_MODELS], metavar="MODEL"
    )
    args = parser.parse_args()
    console = Console()
    if not DATA.is_dir():
        console.print(f"the evaluation data is not at {DATA}")
        raise SystemExit(2)
    target = Target(kind=TargetKind.PRECISION, value=args.precision)
    registry = ModelRegistry(BUNDLED_MODELS, default=MINILM.name)
    documents, queries = banking_samples(args.queries)
    pair_sets = {name: pair_samples(name, args.pairs) for name in ("bq", "atec")}
    console.print(
        f"BANKING77: {len(documents)} indexed examples, {len(queries)} questions "
        f"({sum(1 for q in queries if not q.relevant)} out of scope); "
        + ", ".join(f"{name}: {len(pairs)} pairs" for name, pairs in pair_sets.items())
    )
    rows: list[Row] = []
    for model in args.models:
        with tempfile.TemporaryDirectory() as data_dir:
            services = Services.open(Settings(data_dir=Path(data_dir)), models=registry)
            try:
                services.collections.create(
                    NewCollection(name="bank", top_k=1, threshold=-1.0, model=model)
                )
                queue = InlineJobQueue(IngestContext.of(services))
                submit_documents(services.catalog, queue, "bank", documents)
                for mode in MODES:
                    hits = services.calibrator.query_hits("bank", queries, top_k=1, mode=mode)
                    for score_name, score_of in SCORES.items():
                        outcomes = judge_hits(queries, hits, score_of)
                        rows.append(
                            held_out_row(
                                outcomes,
                                target,
                                data="BANKING77 intents",
                                model=model,
                                mode=mode.value,
                                score=score_name,
                            )
                        )
                        console.print(f"{rows[-1]}")
                for name, pairs in pair_sets.items():
                    outcomes = services.calibrator.pair_outcomes("bank", pairs)
                    rows.append(
                        held_out_row(
                            outcomes,
                            target,
                            data=f"{name} pairs",
                            model=model,
                            mode="-",
                            score="cosine",
                        )
                    )
                    console.print(f"{rows[-1]}")
            finally:
                services.close()
    console.print(results_table(rows, args.precision))


def results_table(rows: Sequence[Row], precision: float) -> Table:
    table = Table(
        title=f"calibrated for precision {precision} on one half, counted on the other half"
    )
    for column in ("data", "model", "mode", "score"):
        table.add_column(column)
    for column in ("threshold", "promised P", "reached P", "reached - promised", "reached R"):
        table.add_column(column, justify="right")

    def figure(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for row in rows:
        table.add_row(
            row.data,
            row.model,
            row.mode,
            row.score,
            f"{row.threshold:.4f}",
            figure(row.promised_precision),
            figure(row.reached_precision),
            "-" if row.gap is None else f"{row.gap:+.3f}",
            figure(row.reached_recall),
        )
    return table


if __name__ == "__main__":
    main()
