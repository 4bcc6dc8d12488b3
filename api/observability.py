"""Per HTTP request: a request id for the logs, and a count and a latency for the metrics."""

from __future__ import annotations

import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retrieval.log import request_context

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTED_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
"""An incoming id is kept when it is 1-128 visible ASCII characters; otherwise one is made."""

UNMATCHED_ROUTE = "<unmatched>"
"""The route label of a request that matched no route: its path would be unbounded."""
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Other methods are labelled OTHER: a client may send any word as a method."""

HTTP_REQUESTS = Counter(
    "semsearch_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "semsearch_http_request_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class RequestObservability:
    """ASGI middleware: gives each request an id (the caller's `X-Request-ID` when it is short
    and printable, else a new one), answers it in `X-Request-ID`, runs the request in its
    logging context (retrieval/log.py), and counts and times the request under the template
    of the route it matched (`/collections/{name}/search`, never a concrete name)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        status = 500  # what the server answers if the app raises before it starts an answer

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        started = time.perf_counter()
        try:
            with request_context(request_id):
                await self.app(scope, receive, send_with_id)
        finally:
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            route = _route_template(scope)
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(method=method, route=route).observe(
                time.perf_counter() - started
            )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _ACCEPTED_REQUEST_ID.fullmatch(text) else None
    return None


def _route_template(scope: Scope) -> str:
    """The path template of the route that the router matched (it notes it in the scope)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
