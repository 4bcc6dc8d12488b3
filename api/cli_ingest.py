"""`semsearch ingest`: files and folders into a collection, with live progress and a summary.

Files are read here (the same readers as `POST /collections/{name}/files`), so a bad file is
reported without leaving this machine; the documents then go to a running service (`--url`)
or, without one, straight into the embedded store of the data folder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Protocol

import typer
from pydantic import ValidationError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from api.cli_output import console, fail, load_settings, validation_message
from api.cli_remote import ApiKeyOption, CollectionArgument, connect
from api.client import FINISHED_JOB_STATUSES, ApiError, SemsearchClient
from api.files import FileFailure, FilesRead, read_files
from api.schemas import CollectionCreate, DocumentIn, JobPublic
from ingest.files.base import RowFields
from ingest.files.walk import collect_files
from retrieval.catalog import DocumentInput
from retrieval.config import Settings
from retrieval.errors import ConfigurationError, NotFound, SemsearchError

POLL_S = 0.25
REQUEST_TEXT_BUDGET = 8 * 1024 * 1024
"""Characters of text sent per request to a service, well under its body limit."""


class JobSink(Protocol):
    """Where documents go and where their jobs are followed."""

    def create_if_missing(self, collection: CollectionCreate) -> bool:
        """Create the collection unless it exists; whether it was created."""
        ...

    def submit(self, collection: str, documents: list[DocumentInput]) -> JobPublic: ...

    def job(self, job_id: str) -> JobPublic: ...


class RemoteSink:
    """A running service, through the HTTP client."""

    def __init__(self, client: SemsearchClient) -> None:
        self._client = client

    def create_if_missing(self, collection: CollectionCreate) -> bool:
        try:
            self._client.get_collection(collection.name)
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            self._client.create_collection(collection)
            return True
        return False

    def submit(self, collection: str, documents: list[DocumentInput]) -> JobPublic:
        return self._client.ingest(
            collection, [DocumentIn.from_input(document) for document in documents]
        )

    def job(self, job_id: str) -> JobPublic:
        return self._client.get_job(job_id)


class EmbeddedSink:
    """The data folder's own catalog and store, indexed by an ingestion thread of this
    process (no service may hold the folder meanwhile)."""

    def __init__(self, settings: Settings) -> None:
        from ingest.pipeline import IngestContext
        from ingest.thread_queue import ThreadJobQueue
        from retrieval.services import Services

        self._services = Services.open(settings)
        self._queue = ThreadJobQueue(context=IngestContext.of(self._services))

    def create_if_missing(self, collection: CollectionCreate) -> bool:
        try:
            self._services.catalog.get_collection(collection.name)
        except NotFound:
            self._services.collections.create(collection.as_new_collection())
            return True
        return False

    def submit(self, collection: str, documents: list[DocumentInput]) -> JobPublic:
        from ingest.pipeline import submit_documents

        return JobPublic.from_record(
            submit_documents(self._services.catalog, self._queue, collection, documents)
        )

    def job(self, job_id: str) -> JobPublic:
        return JobPublic.from_record(self._services.catalog.get_job(job_id))

    def close(self) -> None:
        """Stop the thread; a job it had not finished stays queued for the next process."""
        self._queue.close()
        self._services.close()


def ingest(
    collection: CollectionArgument,
    paths: Annotated[
        list[Path], typer.Argument(exists=True, help="Files and folders (walked recursively).")
    ],
    *,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="SEMSEARCH_URL",
            help="A running service to send the documents to; without it, the embedded store "
            "of SEMSEARCH_DATA_DIR is written directly (no service may be running on it).",
        ),
    ] = None,
    api_key: ApiKeyOption = None,
    include: Annotated[
        list[str] | None, typer.Option(help="Only files matching this glob (repeatable).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Skip files matching this glob (repeatable).")
    ] = None,
    id_field: Annotated[str, typer.Option(help="CSV/JSONL: the id column.")] = "id",
    text_field: Annotated[str, typer.Option(help="CSV/JSONL: the text column.")] = "text",
    title_field: Annotated[str, typer.Option(help="CSV/JSONL: the title column.")] = "title",
    metadata_field: Annotated[
        list[str] | None,
        typer.Option(help="CSV/JSONL: a metadata column (repeatable; default: all others)."),
    ] = None,
    create: Annotated[
        bool, typer.Option(help="Create the collection first if it does not exist.")
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="With --create: the model (default: the service's).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the jobs until they end.")] = True,
) -> None:
    """Index files and folders: .txt .md .html .pdf .docx, and .csv .tsv .jsonl rows.

    A document's id is its path relative to the folder given (a/README.md and b/README.md
    stay apart); in CSV and JSON Lines files each row is a document. Text in UTF-8, UTF-16
    or GBK is recognised. A file that cannot be read is listed with its reason and the rest
    goes in; the exit status is 1 when anything failed.

    Examples:

    \b
        semsearch ingest faq docs/ --create             # embedded store, no service
        semsearch ingest kb-zh 知识库/ --create --model multilingual-e5-small
        semsearch ingest faq kb/ --include '*.md' --exclude 'drafts/*'
        semsearch ingest faq faq.csv --id-field qid --text-field answer --title-field question
        semsearch ingest faq docs/ --url http://127.0.0.1:8000
    """
    settings = load_settings()
    found = collect_files(paths, include=include or (), exclude=exclude or ())
    if not found:
        raise fail("no file to ingest under the paths given (see --include / --exclude)")
    fields = RowFields(
        id=id_field,
        text=text_field,
        title=title_field,
        metadata=tuple(metadata_field) if metadata_field else None,
    )
    read = read_files(
        ((file.name, file.path.read_bytes()) for file in found),
        limits=settings.limits,
        fields=fields,
    )
    console.print(f"read {read.files} files: {len(read.documents)} documents")
    new_collection = _collection_to_create(collection, model) if create else None
    jobs: list[JobPublic] = []
    try:
        with _sink(url, api_key, settings) as sink:
            if new_collection is not None and sink.create_if_missing(new_collection):
                console.print(f"created the collection {collection}")
            for batch in _batches(read.documents, settings.limits.max_documents_per_request):
                jobs.append(sink.submit(collection, batch))
            if wait and jobs:
                jobs = follow_jobs(sink, jobs)
    except (ApiError, SemsearchError) as exc:
        raise fail(str(exc.detail if isinstance(exc, ApiError) else exc)) from exc
    if not wait:
        for job in jobs:
            console.print(f"job {job.id}: {job.status}, {job.documents_total} documents")
        return
    console.print(summary_table(jobs, read))
    if read.failures or any(job.status == "failed" for job in jobs):
        console.print(failure_table(read.failures, jobs))
        raise typer.Exit(code=1)


def _collection_to_create(name: str, model: str | None) -> CollectionCreate:
    try:
        return CollectionCreate(name=name, model=model)
    except ValidationError as exc:
        raise fail(validation_message(exc)) from exc


@contextmanager
def _sink(url: str | None, api_key: str | None, settings: Settings) -> Iterator[JobSink]:
    if url:
        with connect(url, api_key) as client:
            yield RemoteSink(client)
        return
    try:
        sink = EmbeddedSink(settings)
    except ConfigurationError as exc:
        raise fail(f"{exc}; to send the files through the running service, pass --url") from exc
    try:
        yield sink
    finally:
        sink.close()


def _batches(documents: Sequence[DocumentInput], size: int) -> Iterator[list[DocumentInput]]:
    """Batches of at most `size` documents and about REQUEST_TEXT_BUDGET characters."""
    batch: list[DocumentInput] = []
    characters = 0
    for document in documents:
        if batch and (len(batch) >= size or characters + len(document.text) > REQUEST_TEXT_BUDGET):
            yield batch
            batch, characters = [], 0
        batch.append(document)
        characters += len(document.text)
    if batch:
        yield batch


class RateColumn(ProgressColumn):
    """Chunks per second, as measured by the progress bar."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.1f} chunks/s" if task.speed else "", style="cyan")


def follow_jobs(sink: JobSink, jobs: Sequence[JobPublic]) -> list[JobPublic]:
    """Show chunks embedded of all the jobs' chunks until every job ends; their last state.

    A job's chunk count is known once it starts, so the total grows as jobs start."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("chunks", total=None)
        current = list(jobs)
        while True:
            current = [sink.job(job.id) for job in current]
            total = sum(job.chunks_total for job in current)
            progress.update(
                task, total=total or None, completed=sum(job.chunks_done for job in current)
            )
            if all(job.status in FINISHED_JOB_STATUSES for job in current):
                return current
            time.sleep(POLL_S)


def summary_table(jobs: Sequence[JobPublic], read: FilesRead) -> Table:
    succeeded = [job for job in jobs if job.status == "succeeded"]
    unchanged = sum(job.documents_unchanged for job in jobs)
    indexed = sum(job.documents_total - job.documents_unchanged for job in succeeded)
    failed_documents = sum(job.documents_total for job in jobs if job.status == "failed")
    table = Table(title=f"{read.files} files, {len(read.documents)} documents")
    for column in ("indexed", "unchanged", "failed", "chunks"):
        table.add_column(column, justify="right")
    table.add_row(
        str(indexed),
        str(unchanged),
        str(len(read.failures) + failed_documents),
        str(sum(job.chunks_done for job in jobs)),
    )
    return table


def failure_table(failures: Sequence[FileFailure], jobs: Sequence[JobPublic]) -> Table:
    table = Table(title="failed")
    table.add_column("file or job")
    table.add_column("reason")
    for failure in failures:
        table.add_row(failure.name, failure.reason)
    for job in jobs:
        if job.status == "failed":
            table.add_row(f"job {job.id} ({job.documents_total} documents)", job.error or "")
    return table
