"""Job queues: how a submitted job reaches `pipeline.run_job`.

`JobQueue` has two implementations: `ThreadJobQueue` here (the embedded mode: one background
thread of the API process) and `workers.celery_app.CeleryJobQueue` (Celery workers over a broker).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from retrieval.errors import Unavailable

logger = logging.getLogger(__name__)

JobRunner = Callable[[str, bool], None]
"""Runs one job: (job_id, final_attempt); raises Unavailable when it should be retried."""


class JobQueue(Protocol):
    def submit(self, job_id: str) -> None:
        """Hand a queued job to whoever runs jobs; raises Unavailable if that is impossible."""

    def close(self) -> None:
        """Stop taking jobs and release resources."""


class ThreadJobQueue:
    """Runs jobs one at a time, in submission order, in a daemon thread.

    A backing-service outage is retried with exponential backoff (`retry_delays_s`), then the
    job is failed. Jobs that were queued or running when the process stopped are passed in as
    `recovered_job_ids` and run first.
    """

    _STOP = ""

    def __init__(
        self,
        *,
        run_job: JobRunner,
        retry_delays_s: tuple[float, ...] = (1.0, 4.0, 15.0),
        recovered_job_ids: Iterable[str] = (),
    ) -> None:
        self._run_job = run_job
        self._retry_delays_s = retry_delays_s
        self._jobs: queue.Queue[str] = queue.Queue()
        self._stopping = threading.Event()
        for job_id in recovered_job_ids:
            self._jobs.put(job_id)
        self._thread = threading.Thread(target=self._work, name="semsearch-ingest", daemon=True)
        self._thread.start()

    def submit(self, job_id: str) -> None:
        if self._stopping.is_set():
            raise Unavailable("the ingestion queue is shutting down; submit the documents again")
        self._jobs.put(job_id)

    def join(self) -> None:
        """Block until every submitted job has run (tests and the CLI's one-shot ingest)."""
        self._jobs.join()

    def close(self) -> None:
        """Finish the job in progress, drop the rest (they stay queued in the catalog)."""
        self._stopping.set()
        self._jobs.put(self._STOP)
        self._thread.join()

    def _work(self) -> None:
        while True:
            job_id = self._jobs.get()
            try:
                if job_id == self._STOP or self._stopping.is_set():
                    return
                self._run_with_retries(job_id)
            finally:
                self._jobs.task_done()

    def _run_with_retries(self, job_id: str) -> None:
        for attempt in range(len(self._retry_delays_s) + 1):
            final_attempt = attempt == len(self._retry_delays_s)
            try:
                self._run_job(job_id, final_attempt)
                return
            except Unavailable:
                delay = self._retry_delays_s[attempt]
                logger.warning("job %s: backing service unavailable, retry in %.0fs", job_id, delay)
                if self._stopping.wait(delay):
                    return
            except Exception:
                logger.exception("job %s crashed", job_id)
                return
