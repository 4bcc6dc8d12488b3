"""Ingestion and re-index jobs of a running service: show one, wait for one.

Examples:

\b
    semsearch jobs show 0b6d2f0e-...
    semsearch jobs wait 0b6d2f0e-... --timeout 600
    semsearch jobs wait 0b6d2f0e-... --json | jq -r .status
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli_output import console, errors, fail, plain, print_json, say
from api.cli_remote import DEFAULT_URL, ApiKeyOption, JsonFlag, UrlOption, connect
from api.client import SemsearchClient
from api.schemas import JobPublic

jobs_cli = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode=None)

JobArgument = Annotated[
    str, typer.Argument(metavar="JOB_ID", help="The job id that ingest or update printed.")
]


@jobs_cli.command("show")
def show_job(
    job_id: JobArgument,
    *,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """A job's status, progress and error, if any.

    Examples:

    \b
        semsearch jobs show 0b6d2f0e-...
        semsearch jobs show 0b6d2f0e-... --json
    """
    with connect(url, api_key) as client:
        job = client.get_job(job_id)
    if as_json:
        print_json(job)
        return
    console.print(job_table(job))


@jobs_cli.command("wait")
def wait_job(
    job_id: JobArgument,
    *,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.1, help="Give up after this many seconds (the job keeps running)."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Follow a job to its end with a progress bar; exits non-zero if it failed or if
    --timeout passed first.

    Examples:

    \b
        semsearch jobs wait 0b6d2f0e-...
        semsearch jobs wait 0b6d2f0e-... --timeout 600 && semsearch search faq "refund"
    """
    with connect(url, api_key) as client:
        job = follow_job_by_id(client, job_id, timeout_s=timeout, quiet=as_json)
    end_job(job, as_json=as_json)


def ensure_succeeded(job: JobPublic) -> None:
    """End the command with one line on stderr if the (finished) job failed."""
    if job.status == "failed":
        raise fail(f"job {job.id} failed: {job.error or 'no reason given'}")


def end_job(job: JobPublic, *, as_json: bool) -> None:
    """Print a finished job (its JSON, or its one-line summary), then fail if it failed."""
    if as_json:
        print_json(job)
    else:
        say(job_summary(job))
    ensure_succeeded(job)


def follow_job_by_id(
    client: SemsearchClient, job_id: str, *, timeout_s: float | None = None, quiet: bool = False
) -> JobPublic:
    """Wait for the job, with a progress bar on stderr unless `quiet`; it disappears at the end."""
    if quiet:
        return client.wait_for_job(job_id, timeout_s=timeout_s)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as progress:
        task = progress.add_task(f"job {job_id[:8]}", total=None)

        def show(job: JobPublic) -> None:
            progress.update(
                task,
                description=f"{job.kind} {job.status}",
                total=job.documents_total or None,
                completed=job.documents_done,
            )

        return client.wait_for_job(job_id, timeout_s=timeout_s, on_progress=show)


def job_summary(job: JobPublic) -> str:
    took = (
        f" in {(job.finished_at - job.started_at).total_seconds():.1f} s"
        if job.finished_at and job.started_at
        else ""
    )
    return (
        f"job {job.id} ({job.kind}, {job.collection}): {job.status}{took}, "
        f"{job.documents_done}/{job.documents_total} documents, {job.chunks_done} chunks"
    )


def job_table(job: JobPublic) -> Table:
    table = Table(title=f"job {job.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("collection", job.collection)
    table.add_row("kind", job.kind)
    table.add_row("status", job.status)
    table.add_row("documents", f"{job.documents_done}/{job.documents_total}")
    table.add_row("chunks", f"{job.chunks_done}/{job.chunks_total}")
    if job.error:
        table.add_row("error", plain(job.error))
    table.add_row("created", f"{job.created_at:%Y-%m-%d %H:%M:%S}")
    if job.started_at:
        table.add_row("started", f"{job.started_at:%Y-%m-%d %H:%M:%S}")
    if job.finished_at:
        table.add_row("finished", f"{job.finished_at:%Y-%m-%d %H:%M:%S}")
    return table
