"""`semsearch eval`: measure retrieval (BEIR) and embedding (sentence pairs) quality in-process.

Examples:

\b
    semsearch eval beir data/scifact --json scifact.json
    semsearch eval beir data/scifact --limit-queries 50 --limit-docs 1000
    semsearch eval pairs data/stsb/sts-test.tsv
    semsearch eval pairs data/zh-pairs/bq.tsv --threshold 0.8
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from api.cli_output import console, fail
from retrieval.config import Settings

if TYPE_CHECKING:
    from evaluation.beir import BeirReport
    from evaluation.pairs import PairsReport

eval_cli = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode=None)


class CollectionMode(StrEnum):
    DENSE = "dense"
    HYBRID = "hybrid"
    LEXICAL = "lexical"


JsonOption = Annotated[
    Path | None,
    typer.Option("--json", dir_okay=False, help="Also write the report to this JSON file."),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="A registered model (all-MiniLM-L6-v2, multilingual-e5-small, or one of "
        "SEMSEARCH_MODELS). Default: the service's default model.",
    ),
]


@contextmanager
def progress_bars() -> Iterator[Progress]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        yield progress


def resolve_model(name: str | None) -> str:
    """The registered model a --model option names (default: the settings' default model).

    Raises SemsearchError (an unknown name, invalid model settings) or ValueError (settings).
    """
    from retrieval.models.registry import ModelRegistry

    registry = ModelRegistry.from_settings(Settings())
    return registry.resolve(name).name if name else registry.default.name


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"report written to {path}")


@eval_cli.command()
def beir(
    dataset_dir: Annotated[
        Path,
        typer.Argument(
            metavar="DATA_DIR",
            exists=True,
            file_okay=False,
            help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.",
        ),
    ],
    *,
    split: Annotated[str, typer.Option(help="The qrels file to evaluate: qrels/<split>.tsv.")] = (
        "test"
    ),
    mode: Annotated[
        CollectionMode, typer.Option(help="Retrieval mode of the evaluated collection.")
    ] = CollectionMode.DENSE,
    model: ModelOption = None,
    limit_docs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Sample the corpus down to about N documents (seeded); every document judged "
            "for a kept query is kept.",
        ),
    ] = None,
    limit_queries: Annotated[
        int | None, typer.Option(min=1, help="Evaluate the first N judged queries only.")
    ] = None,
    json_path: JsonOption = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Keep the evaluation's catalog and shards here. Default: a temporary directory "
            "removed afterwards.",
        ),
    ] = None,
) -> None:
    """Ingest a BEIR corpus into a new embedded collection and score its judged queries.

    Runs in this process on its own embedded data directory (SQLite, Qdrant Edge); the
    SEMSEARCH_* model settings apply, the catalog, vector and broker settings do not. Documents
    go through the ingestion pipeline, queries through the search; a document ranks by its best
    passage. Prints nDCG@10, Recall@10, Recall@100, MRR@10, ingest rate and query latency.

    Examples:

    \b
        semsearch eval beir data/scifact --json scifact.json
        semsearch eval beir data/scifact --limit-queries 20 --limit-docs 200
        semsearch eval beir data/scifact --model multilingual-e5-small --mode hybrid
    """
    from evaluation.beir import (
        evaluate_beir,
        load_beir,
        new_evaluation_collection,
        sample_beir,
    )
    from retrieval.errors import SemsearchError
    from retrieval.services import Services

    collection = f"eval-{mode.value}"
    try:
        new_evaluation_collection(collection, mode=mode.value)  # refuse a mode before any work
        model_name = resolve_model(model)
        data = sample_beir(
            load_beir(dataset_dir, split=split),
            max_documents=limit_docs,
            max_queries=limit_queries,
        )
    except (OSError, ValueError, SemsearchError) as exc:
        raise fail(str(exc)) from exc
    console.print(
        f"{data.name} ({split}): {len(data.documents)} documents, {len(data.queries)} queries, "
        f"model {model_name}"
    )

    with ExitStack() as stack:
        directory = data_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="semsearch-eval-"))
        )
        # Embedded whatever the environment says: an evaluation never writes to a real service.
        settings = Settings(data_dir=directory, database_url=None, qdrant_url=None, broker_url=None)
        try:
            services = Services.open(settings)
            stack.callback(services.close)
            with progress_bars() as progress:
                tasks: dict[str, TaskID] = {}

                def report_progress(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        label = "ingesting documents" if stage == "ingest" else "querying"
                        tasks[stage] = progress.add_task(label, total=total)
                    progress.update(tasks[stage], completed=done)

                report = evaluate_beir(
                    services,
                    data,
                    collection=collection,
                    mode=mode.value,
                    model=model_name,
                    progress=report_progress,
                )
        except (SemsearchError, RuntimeError) as exc:
            raise fail(str(exc)) from exc

    console.print(beir_table(report))
    if json_path is not None:
        write_json(json_path, report.to_dict())


@eval_cli.command()
def pairs(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="A TSV with header 'sentence1 sentence2 label' (0/1) or one holding "
            "'score sentence1 sentence2' (graded, e.g. STS-B).",
        ),
    ],
    *,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=-1.0,
            max=1.0,
            help="0/1 pairs: also report error rate, precision and recall at this similarity.",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate the first N pairs.")] = None,
    model: ModelOption = None,
    json_path: JsonOption = None,
) -> None:
    """Score the model's cosine similarity on sentence pairs, embedded as the search embeds queries.

    Graded pairs (STS-B): Spearman correlation with the score. 0/1 pairs (BQ, ATEC): ROC AUC,
    the best F1 and the threshold that gives it, and with --threshold the error rate,
    precision and recall there. Both sentences are embedded as queries (with E5's `query: `
    prefix), as POST /similarity does.

    Examples:

    \b
        semsearch eval pairs data/stsb/sts-test.tsv
        semsearch eval pairs data/zh-pairs/bq.tsv --threshold 0.8 --json bq.json
        semsearch eval pairs data/zh-pairs/bq.tsv --model multilingual-e5-small
    """
    from evaluation.pairs import evaluate_pairs, load_pairs
    from retrieval.errors import SemsearchError
    from retrieval.models.registry import ModelRegistry

    try:
        pair_set = load_pairs(file, limit=limit)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from exc
    try:
        settings = Settings()
    except ValueError as exc:
        raise fail(f"invalid settings: {exc}") from exc
    try:
        registry = ModelRegistry.from_settings(settings)
        embedding_model = registry.get(model or registry.default.name)
        with progress_bars() as progress:
            task = progress.add_task("embedding", total=None)
            report = evaluate_pairs(
                embedding_model,
                pair_set,
                threshold=threshold,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except SemsearchError as exc:
        raise fail(str(exc)) from exc

    console.print(pairs_table(report))
    if json_path is not None:
        write_json(json_path, report.to_dict())


def beir_table(report: BeirReport) -> Table:
    table = Table(title=f"{report.dataset} ({report.split}), {report.mode}, {report.model}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in report.metrics.items():
        table.add_row(name, f"{value:.4f}")
    table.add_section()
    table.add_row("documents / queries", f"{report.documents} / {report.queries}")
    table.add_row("chunks", str(report.ingest.chunks))
    table.add_row("ingest", f"{report.ingest.seconds:.1f} s")
    table.add_row("ingest docs/s", f"{report.ingest.documents_per_s:.1f}")
    table.add_row("ingest chunks/s", f"{report.ingest.chunks_per_s:.1f}")
    table.add_row("query mean", f"{report.latency.mean_ms:.1f} ms")
    table.add_row("query p50", f"{report.latency.p50_ms:.1f} ms")
    table.add_row("query p95", f"{report.latency.p95_ms:.1f} ms")
    if report.queries_short_of_top_k:
        table.add_row("queries short of top_k", str(report.queries_short_of_top_k))
    return table


def pairs_table(report: PairsReport) -> Table:
    table = Table(title=f"{report.dataset} ({report.kind} pairs), {report.model}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("pairs", str(report.pairs))
    if report.graded is not None:
        table.add_row("Spearman", f"{report.graded.spearman:.4f}")
    if report.binary is not None:
        binary = report.binary
        table.add_row("positives / negatives", f"{binary.positives} / {binary.negatives}")
        table.add_row("ROC AUC", f"{binary.roc_auc:.4f}")
        table.add_row("best F1", f"{binary.best_f1:.4f}")
        table.add_row("best F1 threshold", f"{binary.best_f1_threshold:.4f}")
        if binary.at_threshold is not None:
            at = binary.at_threshold
            table.add_row(f"error rate at {at.threshold:g}", f"{at.error_rate:.4f}")
            table.add_row(f"precision at {at.threshold:g}", f"{at.precision:.4f}")
            table.add_row(f"recall at {at.threshold:g}", f"{at.recall:.4f}")
    table.add_section()
    table.add_row("texts embedded", str(report.texts))
    table.add_row("texts/s", f"{report.texts_per_s:.1f}")
    return table
