"""GET /metrics: Prometheus' text format, open like the health probes."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import JobQueueDep, ServicesDep
from retrieval.errors import Unavailable
from retrieval.metrics import exposition

router = APIRouter(tags=["health"])


@router.get("/metrics", operation_id="metrics", include_in_schema=False)
def metrics(services: ServicesDep, job_queue: JobQueueDep) -> Response:
    """This process's metrics, and the ingestion gauges read from the catalog and the queue
    now; a gauge whose source is down is left out rather than failing the scrape."""
    try:
        unfinished: int | None = services.catalog.unfinished_job_count()
    except Unavailable:
        unfinished = None
    body = exposition(jobs_unfinished=unfinished, queue_depth=job_queue.depth())
    return Response(body, media_type=CONTENT_TYPE_LATEST)
