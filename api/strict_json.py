"""JSON request bodies as strict JSON: no NaN or Infinity, no lone surrogates.

Python's json module accepts both, and neither can be stored: NaN breaks the catalog's JSON
columns and Qdrant's payloads, a lone surrogate (``"\\ud800"``) cannot be encoded as UTF-8
by SQLite, PostgreSQL or Qdrant. Refused while parsing, they are a 422 naming where they
are, before any route sees them. Routers use `StrictJsonRoute` as their route class.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            text = (await self.body()).decode("utf-8", errors="surrogateescape")
            parsed = json.loads(text, parse_constant=_refuse_constant)
            where = _lone_surrogate(parsed, "body")
            if where is not None:
                raise json.JSONDecodeError(
                    f"{where} holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text",
                    text,
                    0,
                )
            self._json = parsed
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handle(StrictJsonRequest(request.scope, request.receive))

        return strict_handler


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not valid JSON: use a number or null", name, 0)


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The path of the first string (or key) holding a lone surrogate, or None."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return where
        elif isinstance(item, list):
            pending.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
        elif isinstance(item, dict):
            for key, child in item.items():
                if _has_surrogate(key):
                    return f"{where} (a key)"
                pending.append((child, f"{where}.{key}"))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
