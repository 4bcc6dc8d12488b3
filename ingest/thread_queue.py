"""The embedded mode's job queue: one background thread of the API process runs the jobs."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

from ingest.pipeline import IngestContext, JobInterrupted, run_job
from retrieval.errors import Unavailable
from retrieval.log import current_request_id, request_context

logger = logging.getLogger(__name__)


class _Entry(NamedTuple):
    job_id: str
    request_id: str | None
    attempt: int = 0
    """Tries that ended in an outage so far: they carry over the job's slices."""


class ThreadJobQueue:
    """Runs jobs one at a time, in submission order, in a daemon thread, in slices.

    A job that has run for `slice_s` while others wait goes to the back of the queue at its
    next document boundary (what it indexed stays; it resumes with the rest), so one big
    import or re-index cannot hold every other collection's ingestion. One document is never
    cut (see pipeline.run_job).

    A backing-service outage is retried with backoff (`retry_delays_s`), then the job is
    failed; the count of tries goes with the job across its slices, and a slice's clock starts
    after the backoff wait. When even that cannot be recorded (the catalog is down), the job
    is kept and tried again at the last delay until the catalog is back: nothing else could
    run meanwhile, and the thread never dies of it. `close()` interrupts the job in progress
    at its next document; it and the jobs not started stay queued or running in the catalog,
    and `recovered_job_ids` hands them to the next process, which runs them first.

    Each job runs in the request context (see retrieval/log.py) of the request that submitted
    it; recovered jobs run in none.
    """

    _STOP = ""

    def __init__(
        self,
        *,
        context: IngestContext,
        retry_delays_s: tuple[float, ...] = (1.0, 4.0, 15.0),
        recovered_job_ids: Iterable[str] = (),
        slice_s: float = 5.0,
    ) -> None:
        if not retry_delays_s:
            raise ValueError("retry_delays_s needs at least one delay")
        self._context = context
        self._retry_delays_s = retry_delays_s
        self._slice_s = slice_s
        self._jobs: queue.Queue[_Entry] = queue.Queue()
        self._stopping = threading.Event()
        for job_id in recovered_job_ids:
            self._jobs.put(_Entry(job_id, None))
        self._thread = threading.Thread(target=self._work, name="semsearch-ingest", daemon=True)
        self._thread.start()

    def submit(self, job_id: str) -> None:
        if self._stopping.is_set():
            raise Unavailable("the ingestion queue is shutting down; submit the documents again")
        self._jobs.put(_Entry(job_id, current_request_id()))

    def close(self) -> None:
        self._stopping.set()
        self._jobs.put(_Entry(self._STOP, None))
        self._thread.join()

    def is_running(self) -> bool:
        return self._thread.is_alive() and not self._stopping.is_set()

    def depth(self) -> int:
        return self._jobs.qsize()

    def _work(self) -> None:
        while True:
            entry = self._jobs.get()
            with request_context(entry.request_id):
                try:
                    if entry.job_id == self._STOP or self._stopping.is_set():
                        return
                    attempt = self._run_with_retries(entry.job_id, entry.attempt)
                    if attempt is not None:  # its next slice, after the others
                        self._jobs.put(entry._replace(attempt=attempt))
                except Exception:
                    logger.exception(
                        "job %s: unexpected error; the ingestion thread goes on", entry.job_id
                    )
                finally:
                    self._jobs.task_done()

    def _run_with_retries(self, job_id: str, attempt: int) -> int | None:
        """Run the job, `attempt` tries having failed already, until it ends (None) or yields
        to others with work left (its failed tries so far)."""
        slice_ends = 0.0

        def should_yield() -> bool:
            return time.monotonic() > slice_ends and not self._jobs.empty()

        while True:
            final = attempt >= len(self._retry_delays_s)
            slice_ends = time.monotonic() + self._slice_s
            try:
                run_job(
                    job_id,
                    self._context,
                    final_attempt=final,
                    should_stop=self._stopping.is_set,
                    should_yield=should_yield,
                )
                return None
            except JobInterrupted:
                if self._stopping.is_set():
                    logger.info("job %s interrupted by shutdown; it runs after a restart", job_id)
                    return None
                logger.info("job %s lets the %d waiting jobs run", job_id, self._jobs.qsize())
                return attempt
            except Unavailable:
                delay = self._retry_delays_s[min(attempt, len(self._retry_delays_s) - 1)]
                if final:
                    logger.error(
                        "job %s: could not even record its failure (the catalog is down); "
                        "trying again in %.0fs",
                        job_id,
                        delay,
                    )
                else:
                    logger.warning(
                        "job %s: backing service unavailable, retry in %.0fs", job_id, delay
                    )
                attempt += 1
                if self._stopping.wait(delay):
                    return None
