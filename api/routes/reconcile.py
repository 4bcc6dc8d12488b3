"""Reconcile: make a collection's vectors agree with its catalog again."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import WriteAccess
from api.deps import JobQueueDep, ServicesDep
from api.schemas import ReconcileReportPublic, ReconcileRequest
from api.strict_json import StrictJsonRoute
from ingest.reconcile import reconcile_collection

router = APIRouter(prefix="/collections", tags=["collections"], route_class=StrictJsonRoute)


@router.post("/{name}/reconcile", operation_id="reconcile_collection")
def reconcile(
    name: str,
    services: ServicesDep,
    job_queue: JobQueueDep,
    _: WriteAccess,
    body: ReconcileRequest | None = None,
) -> ReconcileReportPublic:
    """Compare the collection's vectors with its catalog, the source of truth, and repair them.

    Indexed documents with missing points are re-queued in one ingest job (`job_id`: poll
    `GET /jobs/{id}`); points of documents the catalog does not know, and chunks beyond a
    document's chunk count (an older version), are deleted. Pending and failed documents are
    left to their jobs. `{"dry_run": true}` reports without repairing. 200 with the report,
    whether or not a job was queued; 409 while the collection is being re-indexed.
    """
    report = reconcile_collection(
        name,
        catalog=services.catalog,
        store=services.store,
        job_queue=job_queue,
        dry_run=body.dry_run if body is not None else False,
    )
    return ReconcileReportPublic.from_report(report)
