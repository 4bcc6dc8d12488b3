"""The `semsearch` command: serve the API, run a worker, ingest files and search from a shell.

Examples:

    semsearch serve                                   # embedded: no Redis, no Qdrant server
    semsearch worker --concurrency 2                  # distributed: needs BROKER_URL, QDRANT_URL
    semsearch collection create faq --threshold 0.6
    semsearch ingest faq docs/*.md --wait
    semsearch search faq "how do I reset my password?"
    semsearch calibrate faq labelled.jsonl --precision 0.9 --apply --plot curve.png
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from api.cli_eval import eval_cli
from api.client import ApiError, SemsearchClient
from api.samples import read_samples
from api.schemas import (
    CalibrateRequest,
    CalibrationPublic,
    CalibrationTarget,
    CollectionCreate,
    DocumentIn,
    EstimatePublic,
    JobPublic,
    PairSampleIn,
)
from retrieval.config import Settings
from retrieval.errors import ConfigurationError

cli = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode=None)
collection_cli = typer.Typer(help="Manage collections of a running service.", no_args_is_help=True)
cli.add_typer(collection_cli, name="collection")
cli.add_typer(eval_cli, name="eval")
console = Console()
errors = Console(stderr=True)

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="SEMSEARCH_URL", help="Base URL of a running semsearch API."),
]


def fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=2)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise fail(f"invalid settings: {exc}") from exc


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind [SEMSEARCH_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind [SEMSEARCH_PORT].")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP API (embedded by default: SQLite, Qdrant Edge and ingestion in-process)."""
    import uvicorn

    from api.app import create_app
    from retrieval.config import VectorBackend
    from retrieval.data_lock import DataDirLock

    settings = load_settings()
    try:
        settings.ensure_separate_workers_allowed()
        if settings.vector_backend is VectorBackend.EDGE:
            DataDirLock.check(settings.data_dir)
    except ConfigurationError as exc:
        raise fail(str(exc)) from exc
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level=log_level,
    )


@cli.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs run at once by this process (threads).")
    ] = 1,
    log_level: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery ingestion worker (needs SEMSEARCH_BROKER_URL and SEMSEARCH_QDRANT_URL)."""
    from retrieval.services import Services
    from workers.celery_app import create_celery_app
    from workers.tasks import register_tasks

    settings = load_settings()
    if not settings.broker_url:
        raise fail("semsearch worker needs SEMSEARCH_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    try:
        settings.ensure_separate_workers_allowed()
    except ConfigurationError as exc:
        raise fail(str(exc)) from exc
    services = Services.open(settings)
    app = create_celery_app(settings)
    register_tasks(app, context=lambda: services.ingest_context)
    try:
        app.worker_main(
            ["worker", f"--loglevel={log_level}", "--pool=threads", f"--concurrency={concurrency}"]
        )
    finally:
        services.close()


@collection_cli.command("create")
def create_collection(
    name: str,
    url: UrlOption = "http://127.0.0.1:8000",
    threshold: Annotated[float, typer.Option(help="Similarity a hit must reach.")] = 0.5,
    top_k: Annotated[int, typer.Option(help="Hits per query by default.")] = 10,
) -> None:
    """Create a collection."""
    with SemsearchClient(base_url=url) as client:
        try:
            created = client.create_collection(
                CollectionCreate(name=name, threshold=threshold, top_k=top_k)
            )
        except ApiError as exc:
            raise fail(exc.detail) from exc
    console.print(f"created {created.name} (threshold {created.threshold}, top_k {created.top_k})")


@cli.command()
def ingest(
    collection: str,
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    url: UrlOption = "http://127.0.0.1:8000",
    wait: Annotated[bool, typer.Option(help="Follow the job until it ends.")] = True,
) -> None:
    """Send UTF-8 text files as documents (id = file name) and follow the job."""
    documents = [
        DocumentIn(
            id=path.name, text=path.read_text(encoding="utf-8"), title=path.stem, source=str(path)
        )
        for path in files
    ]
    with SemsearchClient(base_url=url) as client:
        try:
            job = client.ingest(collection, documents)
            if wait:
                job = follow_job(client, job)
        except ApiError as exc:
            raise fail(exc.detail) from exc
    console.print(f"job {job.id}: {job.status}, {job.chunks_done} chunks")
    if job.status == "failed":
        raise fail(job.error or "the job failed")


def follow_job(client: SemsearchClient, job: JobPublic) -> JobPublic:
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("documents", total=job.documents_total)
        while job.status in ("queued", "running"):
            time.sleep(0.5)
            job = client.get_job(job.id)
            progress.update(task, completed=job.documents_done)
    return job


@cli.command()
def search(
    collection: str,
    query: str,
    url: UrlOption = "http://127.0.0.1:8000",
    top_k: Annotated[int | None, typer.Option(help="Hits at most.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Override the threshold.")] = None,
) -> None:
    """Search a collection and print the hits."""
    with SemsearchClient(base_url=url) as client:
        try:
            result = client.search(collection, query, top_k=top_k, threshold=threshold)
        except ApiError as exc:
            raise fail(exc.detail) from exc
    table = Table(title=f"{collection}: {result.query!r} (threshold {result.threshold})")
    for column in ("score", "document", "chunk", "text"):
        table.add_column(column)
    for hit in result.hits:
        table.add_row(f"{hit.score:.3f}", hit.document_id, str(hit.chunk_index), hit.text[:120])
    console.print(table)


CURVE_ROWS = 12
"""Thresholds printed by `calibrate` besides the chosen one, evenly spread over the curve."""


@cli.command()
def calibrate(
    collection: str,
    samples_file: Annotated[
        Path,
        typer.Argument(
            metavar="SAMPLES",
            exists=True,
            dir_okay=False,
            help="JSON Lines or CSV: query + relevant (ids separated by '|', empty for an "
            "out-of-scope query), or a + b + match.",
        ),
    ],
    *,
    url: UrlOption = "http://127.0.0.1:8000",
    precision: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Reach this precision.")
    ] = None,
    recall: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Reach this recall.")] = (
        None
    ),
    top_k: Annotated[int, typer.Option(min=1, help="Queries: hits judged per query.")] = 1,
    apply: Annotated[bool, typer.Option(help="Store the threshold on the collection.")] = False,
    plot: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write the curve to this PNG file.")
    ] = None,
) -> None:
    """Choose a collection's threshold from labelled samples (default goal: the best F1).

    Prints thresholds with their precision, recall and F1, the chosen one, what it promises
    and what it reached on samples it was not chosen on (cross-validation), with 95%
    intervals.

    Examples:

    \b
        semsearch calibrate faq labelled.jsonl --precision 0.9
        semsearch calibrate faq labelled.csv --recall 0.95 --apply --plot curve.png
    """
    if precision is not None and recall is not None:
        raise fail("give --precision or --recall, not both")
    try:
        samples = read_samples(samples_file)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from exc
    pairs = [sample for sample in samples if isinstance(sample, PairSampleIn)]
    queries = [sample for sample in samples if not isinstance(sample, PairSampleIn)]
    request = CalibrateRequest(
        queries=queries or None,
        pairs=pairs or None,
        target=CalibrationTarget(precision=precision, recall=recall),
        top_k=top_k,
        apply=apply,
    )
    with SemsearchClient(base_url=url, timeout_s=600.0) as client:
        try:
            result = client.calibrate(collection, request)
            if plot is not None:
                plot.write_bytes(client.calibration_png(collection))
        except ApiError as exc:
            raise fail(exc.detail) from exc
    console.print(calibration_table(result))
    console.print(calibration_summary(result))
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if plot is not None:
        console.print(f"curve written to {plot}")


def calibration_table(result: CalibrationPublic) -> Table:
    curve = result.curve
    step = max(1, len(curve) // CURVE_ROWS)
    rows = {id(point): point for point in curve[::step]}
    chosen = min(curve, key=lambda point: abs(point.threshold - result.threshold))
    rows[id(chosen)] = chosen
    table = Table(title=f"{result.collection}: {result.samples} {result.shape}, {result.mode}")
    for column in ("threshold", "precision", "recall", "F1"):
        table.add_column(column, justify="right")
    for point in sorted(rows.values(), key=lambda point: -point.threshold):
        style = "bold green" if point is chosen else None
        table.add_row(
            f"{point.threshold:.4f}",
            f"{point.precision:.3f}",
            f"{point.recall:.3f}",
            f"{point.f1:.3f}",
            style=style,
        )
    return table


def calibration_summary(result: CalibrationPublic) -> str:
    goal = (
        "best F1" if result.target.kind == "f1" else f"{result.target.kind} {result.target.value}"
    )
    met = "" if result.target_met else " (not reached: the closest one)"
    applied = "applied to the collection" if result.applied else "not applied (--apply stores it)"
    return (
        f"chosen threshold {result.threshold:.4f} for {goal}{met}, {applied}\n"
        f"  promised: precision {_estimate(result.promised.precision)}, "
        f"recall {_estimate(result.promised.recall)}\n"
        f"  reached on held-out samples: precision {_estimate(result.reached.precision)}, "
        f"recall {_estimate(result.reached.recall)}"
    )


def _estimate(estimate: EstimatePublic) -> str:
    if estimate.value is None or estimate.low is None or estimate.high is None:
        return "n/a"
    return f"{estimate.value:.3f} [{estimate.low:.2f}-{estimate.high:.2f}]"


def main() -> None:
    cli()
