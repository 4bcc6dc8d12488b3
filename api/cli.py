"""The `semsearch` command: serve the API, run a worker, and use a running service from a shell.

Examples:

\b
    semsearch serve                                  # embedded: no Redis, no Qdrant server
    semsearch worker --concurrency 2                 # distributed: needs BROKER_URL, QDRANT_URL
    semsearch collection create faq --threshold 0.6 --term-map terms.csv
    semsearch ingest faq docs/ --create                # folders, PDF, DOCX, HTML, CSV rows
    semsearch reconcile faq --dry-run
    semsearch reindex faq --wait
    semsearch search faq "how do I reset my password?" --filter '{"lang": "en"}'
    semsearch similarity "reset my password" "change the login password"
    semsearch documents list faq
    semsearch jobs wait JOB_ID
    semsearch calibrate faq labelled.jsonl --precision 0.9 --apply --plot curve.png
    semsearch keys create faq-bot --scope read --collection faq

Commands that use a running service take --url (SEMSEARCH_URL, default
http://127.0.0.1:8000) and --api-key (SEMSEARCH_API_KEY).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api import cli_search
from api.cli_collections import collection_cli
from api.cli_documents import documents_cli
from api.cli_eval import eval_cli
from api.cli_ingest import ingest
from api.cli_jobs import jobs_cli
from api.cli_keys import ensure_keys_before_exposing, keys_cli
from api.cli_output import (
    OneLineUsageErrors,
    console,
    fail,
    load_settings,
)
from api.cli_reconcile import reconcile
from api.cli_reindex import reindex
from api.cli_remote import DEFAULT_URL, ApiKeyOption, CollectionArgument, UrlOption, connect
from api.process_setup import prepare_long_running_process
from api.samples import read_samples
from api.schemas import (
    CalibrateRequest,
    CalibrationPublic,
    CalibrationTarget,
    EstimatePublic,
    PairSampleIn,
)
from retrieval.errors import ConfigurationError

cli = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode=None, cls=OneLineUsageErrors)
cli.add_typer(collection_cli, name="collection")
cli.add_typer(documents_cli, name="documents")
cli.add_typer(jobs_cli, name="jobs")
cli.add_typer(eval_cli, name="eval")
cli.add_typer(keys_cli, name="keys")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind [SEMSEARCH_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind [SEMSEARCH_PORT].")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    insecure: Annotated[
        bool,
        typer.Option(help="Serve a non-loopback address although no API key exists (open)."),
    ] = False,
) -> None:
    """Run the HTTP API (embedded by default: SQLite, Qdrant Edge and ingestion in-process).

    Binding to an address other than loopback needs an API key first (`semsearch keys
    create`), or --insecure.
    """
    settings = load_settings()  # before the imports below, which load torch: seconds
    prepare_long_running_process()

    import uvicorn

    from api.app import create_app
    from retrieval.config import VectorBackend
    from retrieval.data_lock import DataDirLock
    from retrieval.log import configure_logging

    try:
        settings.ensure_separate_workers_allowed()
        if settings.vector_backend is VectorBackend.EDGE:
            DataDirLock.check(settings.data_dir)
        bind = host or settings.host
        if not insecure:
            ensure_keys_before_exposing(settings, bind)
    except ConfigurationError as exc:
        raise fail(str(exc)) from exc
    configure_logging(log_level)  # JSON lines; uvicorn's loggers propagate to them
    uvicorn.run(
        create_app(settings),
        host=bind,
        port=port or settings.port,
        log_level=log_level,
        log_config=None,
    )


@cli.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs run at once by this process (threads).")
    ] = 1,
    log_level: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Port of this worker's Prometheus metrics; 0: none. Default: "
            "SEMSEARCH_WORKER_METRICS_PORT (9101).",
        ),
    ] = None,
) -> None:
    """Run a Celery ingestion worker (needs SEMSEARCH_BROKER_URL and SEMSEARCH_QDRANT_URL).

    It serves its own metrics (embedding batches, finished jobs) at
    http://SEMSEARCH_WORKER_METRICS_HOST:PORT/metrics: give each worker of a host its own port.
    """
    settings = load_settings()  # and refused, before the imports below load torch
    prepare_long_running_process()
    if not settings.broker_url:
        raise fail("semsearch worker needs SEMSEARCH_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")
    try:
        settings.ensure_separate_workers_allowed()
    except ConfigurationError as exc:
        raise fail(str(exc)) from exc

    from ingest.pipeline import IngestContext
    from retrieval.metrics import serve_process_metrics
    from retrieval.services import Services
    from workers.celery_app import create_celery_app
    from workers.tasks import register_tasks

    port = settings.worker_metrics_port if metrics_port is None else metrics_port
    if port:
        try:
            serve_process_metrics(settings.worker_metrics_host, port)
        except OSError as exc:
            raise fail(
                f"cannot serve metrics on {settings.worker_metrics_host}:{port} ({exc}); "
                "give this worker another --metrics-port, or 0 for none"
            ) from exc
    services = Services.open(settings)
    app = create_celery_app(settings)
    register_tasks(app, context=lambda: IngestContext.of(services))
    try:
        app.worker_main(
            ["worker", f"--loglevel={log_level}", "--pool=threads", f"--concurrency={concurrency}"]
        )
    finally:
        services.close()


CALIBRATION_TIMEOUT_S = 600.0
"""Calibrating thousands of samples embeds them all: longer than any other request."""
CURVE_ROWS = 12
"""Thresholds printed by `calibrate` besides the chosen one, evenly spread over the curve."""


@cli.command()
def calibrate(
    collection: CollectionArgument,
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
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
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
    with connect(url, api_key, timeout_s=CALIBRATION_TIMEOUT_S) as client:
        result = client.calibrate(collection, request)
        if plot is not None:
            plot.write_bytes(client.calibration_png(collection))
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


cli.command()(ingest)
cli.command()(reconcile)
cli.command()(reindex)
cli.command()(cli_search.search)
cli.command()(cli_search.similarity)
cli.command()(cli_search.models)


def main() -> None:
    cli()
