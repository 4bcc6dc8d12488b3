"""Documents of a collection: submit for ingestion, read, delete (one, or by id prefix)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.auth import IngestAccess, ReadAccess, WriteAccess
from api.deps import CatalogDep, CollectionsDep, JobQueueDep, LimitsDep
from api.schemas import (
    MAX_DOCUMENTS_OFFSET,
    MAX_DOCUMENTS_PAGE,
    DocumentList,
    DocumentPublic,
    DocumentsDeleted,
    IngestRequest,
    JobPublic,
)
from api.strict_json import StrictJsonRoute
from ingest.pipeline import submit_documents
from retrieval.catalog import DocumentInput
from retrieval.limits import CEILING_ID_CHARS

router = APIRouter(
    prefix="/collections/{name}/documents", tags=["documents"], route_class=StrictJsonRoute
)


@router.post("", status_code=status.HTTP_202_ACCEPTED, operation_id="ingest_documents")
def ingest_documents(
    name: str,
    body: IngestRequest,
    *,
    response: Response,
    catalog: CatalogDep,
    job_queue: JobQueueDep,
    limits: LimitsDep,
    _: IngestAccess,
) -> JobPublic:
    """Store the documents and queue their indexing; poll `GET /jobs/{id}` for progress."""
    limits.check_documents([(doc.id, doc.text, doc.metadata) for doc in body.documents])
    job = submit_documents(
        catalog,
        job_queue,
        name,
        [
            DocumentInput(
                id=document.id,
                text=document.text,
                title=document.title,
                source=document.source,
                metadata=document.metadata,
            )
            for document in body.documents
        ],
    )
    response.headers["Location"] = f"/jobs/{job.id}"
    return JobPublic.from_record(job)


@router.get("", operation_id="list_documents")
def list_documents(
    name: str,
    catalog: CatalogDep,
    _: ReadAccess,
    offset: Annotated[int, Query(ge=0, le=MAX_DOCUMENTS_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_DOCUMENTS_PAGE)] = 50,
) -> DocumentList:
    """One page of the collection's documents, ordered by id."""
    documents, count = catalog.list_documents(name, offset=offset, limit=limit)
    return DocumentList(
        documents=[DocumentPublic.from_record(document) for document in documents], count=count
    )


@router.delete("", operation_id="delete_documents")
def delete_documents(
    name: str,
    collections: CollectionsDep,
    _: WriteAccess,
    prefix: Annotated[
        str,
        Query(
            max_length=CEILING_ID_CHARS,
            description="Delete every document whose id starts with this, e.g. `manuals/v1/` "
            "(compared exactly, case included). Required and not empty, so that leaving "
            "it out never deletes every document.",
        ),
    ],
) -> DocumentsDeleted:
    """Delete the documents whose id starts with `prefix`, and every point of theirs."""
    deleted = collections.delete_documents_with_prefix(name, prefix)
    return DocumentsDeleted(prefix=prefix, deleted=deleted)


@router.get("/{document_id:path}", operation_id="get_document")
def get_document(name: str, document_id: str, catalog: CatalogDep, _: ReadAccess) -> DocumentPublic:
    return DocumentPublic.from_record(catalog.get_document(name, document_id))


@router.delete(
    "/{document_id:path}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_document"
)
def delete_document(
    name: str, document_id: str, collections: CollectionsDep, _: WriteAccess
) -> Response:
    collections.delete_document(name, document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
