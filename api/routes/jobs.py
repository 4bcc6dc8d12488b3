"""Ingestion jobs: progress and outcome."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CatalogDep
from api.schemas import JobPublic
from api.strict_json import StrictJsonRoute

router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=StrictJsonRoute)


@router.get("/{job_id}", operation_id="get_job")
def get_job(job_id: str, catalog: CatalogDep) -> JobPublic:
    return JobPublic.from_record(catalog.get_job(job_id))
