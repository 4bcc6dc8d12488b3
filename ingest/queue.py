"""Job queues: how a submitted job reaches `pipeline.run_job`.

Two implementations of `JobQueue`: `ingest.thread_queue.ThreadJobQueue` (the embedded mode: a
background thread of the API process) and `workers.celery_app.CeleryJobQueue` (Celery workers
fed through a broker).
"""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    def submit(self, job_id: str) -> None:
        """Hand a queued job to whoever runs jobs; raises Unavailable if that is impossible.

        The job carries the current request id (retrieval/log.py) and runs in its context.
        """

    def close(self) -> None:
        """Stop taking jobs and release resources."""

    def is_running(self) -> bool:
        """Whether jobs submitted now will run (readiness)."""
        ...

    def depth(self) -> int | None:
        """Jobs waiting to start (metrics); None when that cannot be known now."""
        ...
