"""The Celery app, configured from Settings, and the job queue that sends to it.

A worker process logs JSON lines (retrieval/log.py) instead of Celery's own format: Celery
leaves logging alone when something answers its `setup_logging` signal.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals
from kombu.exceptions import KombuError

from retrieval.config import Settings
from retrieval.errors import Unavailable
from retrieval.log import configure_logging, current_request_id

INGEST_TASK = "semsearch.ingest_job"
"""Task name shared by the sender (API) and the workers; tasks are sent by name."""


def _log_json_lines(loglevel: int | str | None = None, **_: Any) -> None:
    configure_logging(loglevel or "INFO")


signals.setup_logging.connect(_log_json_lines)


def create_celery_app(settings: Settings) -> Celery:
    """A Celery app on the configured broker: late acks, one prefetched task per process."""
    if not settings.broker_url:
        raise ValueError("create_celery_app needs SEMSEARCH_BROKER_URL")
    app = Celery("semsearch", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.celery_queue,
        task_acks_late=True,
        # A worker killed mid-task (OOM, SIGKILL) gives the task back to the broker.
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.broker_timeout_s,
        broker_transport_options={
            "socket_connect_timeout": settings.broker_timeout_s,
            "socket_timeout": settings.broker_timeout_s,
            # Longer than the longest job: Redis redelivers unacked tasks after this.
            "visibility_timeout": 6 * 3600,
        },
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
    )
    return app


class CeleryJobQueue:
    """Sends ingestion jobs to Celery workers; an unreachable broker is Unavailable (HTTP 503)."""

    def __init__(self, *, app: Celery, broker_url: str) -> None:
        self._app = app
        self._broker_url = broker_url

    def submit(self, job_id: str) -> None:
        try:
            self._app.send_task(
                INGEST_TASK,
                args=[job_id],
                kwargs={"request_id": current_request_id()},
                retry=True,
            )
        except (KombuError, OSError) as exc:
            raise Unavailable(
                f"the job broker at {self._broker_url} cannot be reached ({exc}); the documents "
                "are stored but not queued: check Redis and submit them again"
            ) from exc

    def close(self) -> None:
        self._app.close()

    def is_running(self) -> bool:
        """Whether the broker takes connections now (workers are checked by their own probes)."""
        with self._app.connection_for_write() as connection:
            try:
                connection.connect()
            except (KombuError, OSError, *connection.connection_errors):
                return False
        return True

    def depth(self) -> int | None:
        """Tasks waiting in the broker's queue; None when the broker cannot be reached."""
        with self._app.connection_for_read() as connection:
            try:
                connection.ensure_connection(max_retries=0)  # one try: a scrape must not wait
                declared = connection.default_channel.queue_declare(
                    queue=self._app.conf.task_default_queue, passive=True
                )
            except connection.channel_errors:
                return 0  # not found: Redis drops an empty queue's list, so nothing waits
            except (KombuError, OSError, *connection.connection_errors):
                return None
        return int(declared.message_count)
