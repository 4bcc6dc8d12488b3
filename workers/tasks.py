"""Thin Celery tasks: arguments in, pipeline call, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery, Task

from ingest.pipeline import IngestContext, run_job
from retrieval.errors import Unavailable
from retrieval.log import request_context
from workers.celery_app import INGEST_TASK

MAX_RETRIES = 5
RETRY_BACKOFF_MAX_S = 300


def retry_delay_s(retries: int) -> int:
    """Exponential backoff: 2, 4, 8, ... seconds, capped."""
    return int(min(2 ** (retries + 1), RETRY_BACKOFF_MAX_S))


def register_tasks(app: Celery, *, context: Callable[[], IngestContext]) -> None:
    """Register the ingestion task on `app`; `context` gives the process's catalog/model/store."""

    @app.task(  # type: ignore[untyped-decorator]
        name=INGEST_TASK,
        # Not shared: a shared task is also added to every Celery app created later in the
        # process, each with this app's context.
        shared=False,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=MAX_RETRIES,
    )
    def ingest_job(self: Task[Any, Any], job_id: str, request_id: str | None = None) -> None:
        """Run the job in the context of the request that submitted it (its logs say so)."""
        with request_context(request_id):
            try:
                run_job(job_id, context(), final_attempt=self.request.retries >= MAX_RETRIES)
            except Unavailable as exc:
                raise self.retry(exc=exc, countdown=retry_delay_s(self.request.retries)) from exc
