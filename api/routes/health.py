"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import ServicesDep
from api.strict_json import StrictJsonRoute

router = APIRouter(tags=["health"], route_class=StrictJsonRoute)


class Health(BaseModel):
    status: str
    vectors: str
    ingestion: str
    default_model: str


@router.get("/healthz", operation_id="health")
def health(services: ServicesDep) -> Health:
    """Answers once the service is up: the catalog is reachable (models load on first use)."""
    services.catalog.list_collections()
    settings = services.settings
    return Health(
        status="ok",
        vectors=settings.vector_backend.value,
        ingestion=settings.queue_backend.value,
        default_model=services.models.default.name,
    )
