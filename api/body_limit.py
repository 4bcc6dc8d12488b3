"""Request bodies over the size limit are refused: 413 naming the limit.

A declared Content-Length over the limit gets a 413 before any of the body is read. A body
without one (chunked) is read up to the limit, counted as it arrives, and refused as soon as
it passes it; one within the limit is handed to the app as it came. Either way a 100 MB body
no longer ties up the service.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class DeclaredBodyLimit:
    """ASGI middleware: 413 for a request whose Content-Length exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(send, f"{int(declared)} bytes")
                return
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send, f"over {size} bytes")
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, send: Send, size: str) -> None:
        body = json.dumps(
            {
                "detail": f"the request body is {size}, more than the limit of "
                f"{self.max_bytes} bytes (SEMSEARCH_MAX_REQUEST_BYTES): send fewer documents "
                "per request"
            }
        ).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
