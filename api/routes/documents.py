"""Documents of a collection: submit for ingestion, read, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import CatalogDep, CollectionsDep, JobQueueDep
from api.schemas import (
    MAX_DOCUMENTS_OFFSET,
    MAX_DOCUMENTS_PAGE,
    DocumentList,
    DocumentPublic,
    IngestRequest,
    JobPublic,
)
from api.strict_json import StrictJsonRoute
from ingest.pipeline import submit_documents
from retrieval.catalog import DocumentInput

router = APIRouter(
    prefix="/collections/{name}/documents", tags=["documents"], route_class=StrictJsonRoute
)


@router.post("", status_code=status.HTTP_202_ACCEPTED, operation_id="ingest_documents")
def ingest_documents(
    name: str, body: IngestRequest, response: Response, catalog: CatalogDep, job_queue: JobQueueDep
) -> JobPublic:
    """Store the documents and queue their indexing; poll `GET /jobs/{id}` for progress."""
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
    offset: Annotated[int, Query(ge=0, le=MAX_DOCUMENTS_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_DOCUMENTS_PAGE)] = 50,
) -> DocumentList:
    """One page of the collection's documents, ordered by id."""
    documents, count = catalog.list_documents(name, offset=offset, limit=limit)
    return DocumentList(
        documents=[DocumentPublic.from_record(document) for document in documents], count=count
    )


@router.get("/{document_id:path}", operation_id="get_document")
def get_document(name: str, document_id: str, catalog: CatalogDep) -> DocumentPublic:
    return DocumentPublic.from_record(catalog.get_document(name, document_id))


@router.delete(
    "/{document_id:path}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_document"
)
def delete_document(name: str, document_id: str, collections: CollectionsDep) -> Response:
    collections.delete_document(name, document_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
