"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import JobQueueDep, ServicesDep
from api.strict_json import StrictJsonRoute
from retrieval.errors import Unavailable

router = APIRouter(tags=["health"], route_class=StrictJsonRoute)

READINESS_PROBE_COLLECTION = "semsearch-readiness-probe"
"""A name no collection has (names cannot hold '.'): asking the store for it is a ping."""


class Health(BaseModel):
    status: str
    vectors: str
    ingestion: str
    default_model: str


class Liveness(BaseModel):
    status: str


@router.get("/health/live", operation_id="liveness")
def liveness() -> Liveness:
    """The process answers HTTP; nothing else is checked."""
    return Liveness(status="ok")


@router.get(
    "/health/ready",
    operation_id="readiness",
    responses={503: {"description": "A dependency is down; `detail` says which."}},
)
def readiness(services: ServicesDep, job_queue: JobQueueDep) -> Health:
    """Ready to serve: the catalog and the vector store answer, and ingestion runs (the
    ingestion thread is alive, or the broker takes connections). Models load on first use."""
    services.catalog.list_collections()
    services.store.collection_exists(READINESS_PROBE_COLLECTION)
    settings = services.settings
    if not job_queue.is_running():
        where = (
            "the ingestion thread is not running"
            if settings.broker_url is None
            else f"the job broker at {settings.broker_url} cannot be reached"
        )
        raise Unavailable(f"not ready: {where}; ingested documents would not be indexed")
    return Health(
        status="ok",
        vectors=settings.vector_backend.value,
        ingestion=settings.queue_backend.value,
        default_model=services.models.default.name,
    )


@router.get("/healthz", operation_id="health", include_in_schema=False)
def health(services: ServicesDep, job_queue: JobQueueDep) -> Health:
    """An alias of /health/ready."""
    return readiness(services, job_queue)
