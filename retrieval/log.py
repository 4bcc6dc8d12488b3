"""Logs as JSON lines, each record with the id of the request that caused it.

The request id lives in a context variable: the API's middleware sets it for each request,
the job queues carry it with each job they accept and set it again while the job runs (in the
ingestion thread or a Celery worker), and `RequestIdFilter` copies it onto every record a
handler emits. Nothing here knows of HTTP: a request id is whatever the caller names its work.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

_REQUEST_ID: ContextVar[str | None] = ContextVar("semsearch_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this code works for, or None outside any request or job."""
    return _REQUEST_ID.get()


@contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Run the block as part of request `request_id` (None: as part of no request)."""
    token = _REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the current one, or None) to every record; lets every record pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _REQUEST_ID.get()
        return True


class JsonLinesHandler(logging.StreamHandler[TextIO]):
    """One JSON object per line: timestamp (UTC, ISO 8601), level, logger, message,
    request_id, and any `extra` fields or exception text of the record."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.addFilter(RequestIdFilter())
        self.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}{request_id}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp=True,
                # uvicorn's copy of the message with terminal colours
                reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            )
        )


def configure_logging(level: str | int) -> None:
    """Send every logger's records at `level` and above to stderr as JSON lines.

    Idempotent: a JSON handler installed before is replaced, other handlers are kept.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, JsonLinesHandler)]:
        root.removeHandler(handler)
    root.addHandler(JsonLinesHandler())
    root.setLevel(level.upper() if isinstance(level, str) else level)
