"""`semsearch reindex`: re-embed a collection from its stored text, its vectors serving."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import httpx
import typer

from api.cli_jobs import follow_job_by_id, job_summary
from api.cli_output import fail, print_json, say
from api.cli_remote import DEFAULT_URL, ApiKeyOption, JsonFlag, UrlOption, connect
from api.client import Call
from api.schemas import JobPublic


def reindex_call(collection: str) -> Call[JobPublic]:
    """POST /collections/{name}/reindex, read into the job it started."""

    def read(response: httpx.Response) -> JobPublic:
        return JobPublic.model_validate_json(response.content)

    return Call("POST", f"/collections/{quote(collection, safe='')}/reindex", read)


def reindex(
    collection: Annotated[str, typer.Argument(metavar="COLLECTION")],
    *,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job to its end; non-zero if it fails.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-embed a collection from its stored source text with its current model, term map and
    chunking (after a model folder changed in place, say). Searches keep using the current
    vectors until the new ones hold every document. A new model, term map or chunking is
    `semsearch collection update` instead: it re-indexes the same way.

    Examples:

    \b
        semsearch reindex faq --wait
        semsearch reindex faq --json | jq -r .id
    """
    with connect(url, api_key) as client:
        job = client.send(reindex_call(collection))
        if not wait:
            if as_json:
                print_json(job)
            else:
                say(f"re-index of {collection} queued: job {job.id} (semsearch jobs wait {job.id})")
            return
        job = follow_job_by_id(client, job.id, quiet=as_json)
        if as_json:
            print_json(job)
        else:
            say(job_summary(job))
        if job.status == "failed":
            raise fail(f"job {job.id} failed: {job.error or 'no reason given'}")
