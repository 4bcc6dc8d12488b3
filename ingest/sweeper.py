"""Re-send jobs that the broker or a worker lost.

Redis without persistence forgets its queue when it restarts: a job the API sent stays
"queued" in the catalog and no worker will ever run it. A worker killed mid-job (SIGKILL, the
OOM killer, a lost machine) leaves its job "running", and the broker gives the unacknowledged
task to another worker only after its visibility timeout (hours). The sweeper, a thread of
the API process in distributed mode, looks now and then:
- when the broker's queue is empty but the catalog holds jobs queued for longer than a grace
  period, those jobs were lost;
- a running job records a heartbeat with its progress (every batch of chunks, seconds apart);
  one silent for the grace period lost its worker.
It sends them again. Sending a job twice is harmless (a job already finished ends at once, a
running one resumes, and indexing a document is idempotent), so doubt is resolved by sending.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from ingest.queue import JobQueue
from retrieval.catalog import Catalog, utc_now
from retrieval.errors import SemsearchError

logger = logging.getLogger(__name__)


class LostJobSweeper:
    def __init__(
        self, *, catalog: Catalog, queue: JobQueue, interval_s: float, grace_s: float
    ) -> None:
        self._catalog = catalog
        self._queue = queue
        self._interval_s = interval_s
        self._grace = timedelta(seconds=grace_s)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="semsearch-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def sweep(self) -> list[str]:
        """Send again the jobs the broker or a worker lost; returns their ids.

        The broker's queue is measured before anything is sent: what this sweep sends must
        not hide the queued jobs it lost.
        """
        cutoff = utc_now() - self._grace
        depth = self._queue.depth()
        stalled = self._catalog.claim_stalled_job_ids(before=cutoff)
        for job_id in stalled:
            self._queue.submit(job_id)
            logger.warning("job %s: its worker went silent mid-job; sent again", job_id)
        if depth != 0:
            return stalled  # the broker holds work (or cannot be asked): no queued job is lost
        lost = self._catalog.queued_job_ids(before=cutoff)
        for job_id in lost:
            self._queue.submit(job_id)
            logger.warning("job %s was queued but not in the broker: sent again", job_id)
        return stalled + lost

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                self.sweep()
            except SemsearchError as exc:  # catalog or broker down: try at the next round
                logger.warning("lost-job sweep skipped: %s", exc)
            except Exception:  # the thread must outlive any surprise; say what it was
                logger.exception("lost-job sweep failed")
