"""`semsearch reconcile`: make a collection's vectors agree with its catalog again."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli_jobs import ensure_succeeded, follow_job_by_id, job_summary
from api.cli_output import console, plain, print_json, say
from api.cli_remote import (
    DEFAULT_URL,
    ApiKeyOption,
    CollectionArgument,
    JsonFlag,
    UrlOption,
    connect,
)
from api.schemas import ReconcileReportPublic

RECONCILE_TIMEOUT_S = 600.0
"""A reconcile reads every point of the collection within the request: give it time."""


def reconcile(
    collection: CollectionArgument,
    *,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what disagrees; repair nothing.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Follow the re-indexing job, if one was queued, to its end."),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare a collection's vectors with its catalog (the source of truth) and repair them:
    documents with missing points are re-indexed, points of unknown documents and chunks of
    older versions are deleted. Exits non-zero if --wait follows a job that fails.

    Examples:

    \b
        semsearch reconcile faq --dry-run
        semsearch reconcile faq --wait
        semsearch reconcile faq --json | jq .documents_requeued
    """
    with connect(url, api_key, timeout_s=RECONCILE_TIMEOUT_S) as client:
        report = client.reconcile_collection(collection, dry_run=dry_run)
        if as_json:
            print_json(report)
        else:
            console.print(report_table(report))
            say(report_summary(report))
        if wait and report.job_id is not None:
            job = follow_job_by_id(client, report.job_id, quiet=as_json)
            if not as_json:
                say(job_summary(job))
            ensure_succeeded(job)


def report_table(report: ReconcileReportPublic) -> Table:
    dry = " (dry run)" if report.dry_run else ""
    table = Table(title=f"reconcile {report.collection}{dry}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    table.add_column("documents")
    to = "to re-index" if report.dry_run else "re-indexed"
    deleted = "to delete" if report.dry_run else "deleted"
    rows = [
        ("documents checked", report.documents_checked, []),
        ("pending or failed (skipped)", report.documents_skipped, []),
        ("points checked", report.points_checked, []),
        (f"documents {to}", report.documents_requeued, report.requeued_ids),
        ("  their missing points", report.missing_points, []),
        (f"orphan documents {deleted}", report.orphan_documents, report.orphan_ids),
        ("  their points", report.orphan_points, []),
        (f"stale chunks {deleted}", report.stale_chunks, []),
    ]
    for what, count, ids in rows:
        shown = ", ".join(ids)
        if count > len(ids) and ids:
            shown += f" and {count - len(ids)} more"
        table.add_row(what, str(count), plain(shown))
    return table


def report_summary(report: ReconcileReportPublic) -> str:
    lines = []
    if report.vectors_recreated:
        created = "would be created" if report.dry_run else "were created"
        lines.append(f"the collection's vectors were missing and {created} again")
    repairs = report.documents_requeued + report.orphan_documents + report.stale_chunks
    if not repairs:
        lines.append("the vectors agree with the catalog")
    elif report.dry_run:
        lines.append("dry run: nothing was changed; run without --dry-run to repair")
    elif report.job_id is None:
        lines.append("repaired")
    else:
        lines.append(
            f"repaired; re-indexing job {report.job_id}: follow it with "
            f"`semsearch jobs wait {report.job_id}`"
        )
    return "; ".join(lines)
