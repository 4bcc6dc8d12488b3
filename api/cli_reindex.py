"""`semsearch reindex`: re-embed a collection from its stored text, its vectors serving."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli_jobs import end_job, follow_job_by_id
from api.cli_output import print_json, say
from api.cli_remote import (
    DEFAULT_URL,
    ApiKeyOption,
    CollectionArgument,
    JsonFlag,
    UrlOption,
    connect,
)


def reindex(
    collection: CollectionArgument,
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
        job = client.reindex_collection(collection)
        if not wait:
            if as_json:
                print_json(job)
            else:
                say(f"re-index of {collection} queued: job {job.id} (semsearch jobs wait {job.id})")
            return
        job = follow_job_by_id(client, job.id, quiet=as_json)
    end_job(job, as_json=as_json)
