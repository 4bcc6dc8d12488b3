"""Collections: create, list, read, change, re-index, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.auth import AdminAccess, ReadAccess
from api.deps import CollectionsDep, JobQueueDep, LimitsDep, ServicesDep
from api.schemas import (
    CollectionCreate,
    CollectionList,
    CollectionPublic,
    CollectionUpdate,
    JobPublic,
)
from api.strict_json import StrictJsonRoute
from ingest.pipeline import IngestContext, submit_reindex
from retrieval.catalog import CollectionMode
from retrieval.collections import CollectionSummary, IndexChange
from retrieval.errors import Forbidden

router = APIRouter(prefix="/collections", tags=["collections"], route_class=StrictJsonRoute)


def public(summary: CollectionSummary) -> CollectionPublic:
    return CollectionPublic.from_record(
        summary.record, document_count=summary.document_count, language=summary.language
    )


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_collection")
def create_collection(
    body: CollectionCreate, collections: CollectionsDep, limits: LimitsDep, grant: AdminAccess
) -> CollectionPublic:
    limits.check_top_k(body.top_k)
    limits.check_term_map(body.term_map)
    if not grant.sees(body.name):
        raise Forbidden("this API key may create only the collections it is limited to")
    record = collections.create(body.as_new_collection())
    return public(collections.describe(record.name))


@router.get("", operation_id="list_collections")
def list_collections(collections: CollectionsDep, grant: ReadAccess) -> CollectionList:
    """The collections the caller's key may see."""
    listed = [public(summary) for summary in collections.describe_all(visible=grant.sees)]
    return CollectionList(collections=listed, count=len(listed))


@router.get("/{name}", operation_id="get_collection")
def get_collection(name: str, collections: CollectionsDep, _: ReadAccess) -> CollectionPublic:
    return public(collections.describe(name))


@router.patch("/{name}", operation_id="update_collection")
def update_collection(
    name: str,
    body: CollectionUpdate,
    *,
    collections: CollectionsDep,
    services: ServicesDep,
    job_queue: JobQueueDep,
    limits: LimitsDep,
    _: AdminAccess,
) -> CollectionPublic:
    """Change settings. threshold, top_k, mode and filterable apply at once; a new model,
    term map or chunking starts a re-index job (see `reindex` in the answer), and searches
    keep using the current vectors until it completes."""
    limits.check_top_k(body.top_k)
    limits.check_term_map(body.term_map)
    change = IndexChange(
        model=body.model,
        term_map=body.term_map,
        chunk_max_tokens=body.chunking.max_tokens if body.chunking else None,
        chunk_overlap_sentences=body.chunking.overlap_sentences if body.chunking else None,
    )
    settings = collections.plan_reindex(name, change)  # refused before anything changes
    collections.update(
        name,
        threshold=body.threshold,
        top_k=body.top_k,
        mode=CollectionMode(body.mode) if body.mode else None,
        filterable=body.filterable,
    )
    if settings is not None:
        job = collections.start_reindex(name, settings)
        submit_reindex(IngestContext.of(services), job_queue, job)
    return public(collections.describe(name))


@router.post(
    "/{name}/reindex", status_code=status.HTTP_202_ACCEPTED, operation_id="reindex_collection"
)
def reindex_collection(
    name: str,
    response: Response,
    *,
    collections: CollectionsDep,
    services: ServicesDep,
    job_queue: JobQueueDep,
    _: AdminAccess,
) -> JobPublic:
    """Re-embed the collection from its stored source text with its current model, term map
    and chunking, as a job (`GET /jobs/{id}`): the current vectors keep answering searches
    until the new ones hold every document, then the collection switches to them. 409 while
    a re-index runs."""
    job = collections.rebuild(name)
    submit_reindex(IngestContext.of(services), job_queue, job)
    response.headers["Location"] = f"/jobs/{job.id}"
    return JobPublic.from_record(job)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_collection")
def delete_collection(name: str, collections: CollectionsDep, _: AdminAccess) -> Response:
    collections.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
