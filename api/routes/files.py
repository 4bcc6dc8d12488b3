"""File uploads: text, Markdown, HTML, PDF and Word files, and CSV / JSON Lines rows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from api.auth import IngestAccess
from api.deps import CatalogDep, JobQueueDep, LimitsDep
from api.files import read_files, summarize_failures, upload_name
from api.schemas import FileFailurePublic, FilesAccepted, JobPublic
from ingest.files.base import RowFields
from ingest.files.reader import SUPPORTED_TYPES
from ingest.pipeline import submit_documents
from retrieval.errors import InvalidInput

router = APIRouter(prefix="/collections/{name}/files", tags=["documents"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, operation_id="upload_files")
def upload_files(
    name: str,
    files: Annotated[
        list[UploadFile],
        File(
            description="One or many files: "
            f"{', '.join(SUPPORTED_TYPES)}. A file's id is its file name as sent, which may "
            "hold a relative path (`-F 'files=@a/README.md;filename=a/README.md'`)."
        ),
    ],
    *,
    id_field: Annotated[str, Form(max_length=200, description="CSV/JSONL: id column.")] = "id",
    text_field: Annotated[str, Form(max_length=200, description="CSV/JSONL: text column.")] = (
        "text"
    ),
    title_field: Annotated[
        str, Form(max_length=200, description="CSV/JSONL: title column.")
    ] = "title",
    metadata_fields: Annotated[
        str | None,
        Form(
            max_length=2_000,
            description="CSV/JSONL: comma-separated metadata columns (default: all others).",
        ),
    ] = None,
    response: Response,
    catalog: CatalogDep,
    job_queue: JobQueueDep,
    limits: LimitsDep,
    _: IngestAccess,
) -> FilesAccepted:
    """Read each file into documents and queue their indexing; a file that cannot be read
    is listed under `failed` with its reason and the others go on. 422 when none can."""
    catalog.get_collection(name)  # a missing collection is a 404 before any reading
    fields = RowFields(
        id=id_field,
        text=text_field,
        title=title_field,
        metadata=_column_list(metadata_fields),
    )
    read = read_files(
        ((upload_name(upload.filename), upload.file.read()) for upload in files),
        limits=limits,
        fields=fields,
    )
    if not read.documents:
        raise InvalidInput(f"files: no document could be read: {summarize_failures(read.failures)}")
    jobs = [
        submit_documents(catalog, job_queue, name, batch)
        for batch in read.batches(limits.max_documents_per_request)
    ]
    response.headers["Location"] = f"/jobs/{jobs[0].id}"
    return FilesAccepted(
        files=read.files,
        documents=len(read.documents),
        jobs=[JobPublic.from_record(job) for job in jobs],
        failed=[FileFailurePublic(name=f.name, reason=f.reason) for f in read.failures],
    )


def _column_list(value: str | None) -> tuple[str, ...] | None:
    if value is None or not value.strip():
        return None
    return tuple(column.strip() for column in value.split(",") if column.strip())
