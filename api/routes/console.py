"""The web console: a static page at `/`, its scripts and styles under /console/.

The files ship inside the package (api/console/); nothing is built at run time and nothing is
fetched from the network. The page calls the same HTTP API as any client, with the API key
the user enters, so serving it needs no key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""Only the service's own files run, and the page talks to the service alone: no inline
script, no CDN, and no other origin to send an API key to."""

router = APIRouter(tags=["console"], include_in_schema=False)
_assets = StaticFiles(directory=CONSOLE_DIR)


@router.get("/", operation_id="console")
def console() -> FileResponse:
    """The console's page."""
    return FileResponse(
        CONSOLE_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


@router.get("/console/{asset:path}", operation_id="console_asset")
async def console_asset(asset: str, request: Request) -> Response:
    """A script, style sheet or picture of the console (404 outside its folder)."""
    response = await _assets.get_response(asset, request.scope)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response
