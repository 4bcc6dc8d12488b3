"""Collections: create, list, read, change, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import CollectionsDep, JobQueueDep, ServicesDep
from api.schemas import (
    CollectionCreate,
    CollectionList,
    CollectionPublic,
    CollectionUpdate,
)
from api.strict_json import StrictJsonRoute
from ingest.pipeline import submit_reindex
from retrieval.catalog import CollectionMode
from retrieval.collections import CollectionSummary, IndexChange, NewCollection

router = APIRouter(prefix="/collections", tags=["collections"], route_class=StrictJsonRoute)


def public(summary: CollectionSummary) -> CollectionPublic:
    return CollectionPublic.from_record(
        summary.record, document_count=summary.document_count, language=summary.language
    )


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_collection")
def create_collection(body: CollectionCreate, collections: CollectionsDep) -> CollectionPublic:
    record = collections.create(
        NewCollection(
            name=body.name,
            model=body.model,
            threshold=body.threshold,
            top_k=body.top_k,
            term_map=body.term_map,
            chunk_max_tokens=body.chunking.max_tokens,
            chunk_overlap_sentences=body.chunking.overlap_sentences,
            mode=CollectionMode(body.mode),
            filterable=body.filterable,
        )
    )
    return public(collections.describe(record.name))


@router.get("", operation_id="list_collections")
def list_collections(collections: CollectionsDep) -> CollectionList:
    listed = [public(summary) for summary in collections.describe_all()]
    return CollectionList(collections=listed, count=len(listed))


@router.get("/{name}", operation_id="get_collection")
def get_collection(name: str, collections: CollectionsDep) -> CollectionPublic:
    return public(collections.describe(name))


@router.patch("/{name}", operation_id="update_collection")
def update_collection(
    name: str,
    body: CollectionUpdate,
    collections: CollectionsDep,
    services: ServicesDep,
    job_queue: JobQueueDep,
) -> CollectionPublic:
    """Change settings. threshold, top_k, mode and filterable apply at once; a new model,
    term map or chunking starts a re-index job (see `reindex` in the answer), and searches
    keep using the current vectors until it completes."""
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
        submit_reindex(services.ingest_context, job_queue, job)
    return public(collections.describe(name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, operation_id="delete_collection")
def delete_collection(name: str, collections: CollectionsDep) -> Response:
    collections.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
