"""Ingestion jobs: progress and outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import KeyAccess
from api.deps import CatalogDep
from api.schemas import MAX_RECENT_JOBS, JobList, JobPublic
from api.strict_json import StrictJsonRoute
from retrieval.access import Scope
from retrieval.errors import Forbidden, NotFound

router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=StrictJsonRoute)
collection_router = APIRouter(
    prefix="/collections/{name}/jobs", tags=["jobs"], route_class=StrictJsonRoute
)


@router.get("/{job_id}", operation_id="get_job")
def get_job(job_id: str, catalog: CatalogDep, grant: KeyAccess) -> JobPublic:
    """A job of a collection the key may see, to a key that may read or write there."""
    job = catalog.get_job(job_id)
    if not grant.sees(job.collection):
        raise NotFound(f"job {job_id!r} does not exist")
    if not (grant.has(Scope.READ) or grant.has(Scope.WRITE)):
        raise Forbidden("reading a job needs the 'read' or 'write' scope")
    return JobPublic.from_record(job)


@collection_router.get("", operation_id="list_collection_jobs")
def list_collection_jobs(
    name: str,
    catalog: CatalogDep,
    grant: KeyAccess,
    limit: Annotated[int, Query(ge=1, le=MAX_RECENT_JOBS)] = 20,
) -> JobList:
    """The collection's most recent jobs, ingest and re-index, newest first."""
    if not grant.sees(name):
        raise NotFound(f"collection {name!r} does not exist")
    if not (grant.has(Scope.READ) or grant.has(Scope.WRITE)):
        raise Forbidden("reading jobs needs the 'read' or 'write' scope")
    jobs = [JobPublic.from_record(job) for job in catalog.list_jobs(name, limit=limit)]
    return JobList(jobs=jobs, count=len(jobs))
