"""The `semsearch` command: serve the API, run a worker, ingest files and search from a shell.

Examples:

    semsearch serve                                   # embedded: no Redis, no Qdrant server
    semsearch worker --concurrency 2                  # distributed: needs BROKER_URL, QDRANT_URL
    semsearch collection create faq --threshold 0.6
    semsearch ingest faq docs/*.md --wait
    semsearch search faq "how do I reset my password?"
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
from api.schemas import CollectionCreate, DocumentIn, JobPublic
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

    settings = load_settings()
    try:
        settings.ensure_separate_workers_allowed()
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


def main() -> None:
    cli()
