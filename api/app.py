"""create_app(settings): the FastAPI app; its lifespan builds the services once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.body_limit import DeclaredBodyLimit
from api.routes import calibration, collections, documents, health, jobs, search
from api.routes.models import router as models_router
from api.schemas import ErrorResponse
from ingest.queue import JobQueue
from ingest.thread_queue import ThreadJobQueue
from retrieval.config import QueueBackend, Settings
from retrieval.errors import Conflict, InvalidInput, NotFound, SemsearchError, Unavailable
from retrieval.models.registry import ModelRegistry
from retrieval.services import Services
from workers.celery_app import CeleryJobQueue, create_celery_app

logger = logging.getLogger(__name__)

ERROR_STATUS: dict[type[SemsearchError], int] = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    InvalidInput: status.HTTP_422_UNPROCESSABLE_CONTENT,
    Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


MAX_PROBLEMS_SHOWN = 10
MAX_PROBLEM_CHARS = 300
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": description}
    for code, description in (
        (404, "The collection, document or job does not exist."),
        (409, "Conflicts with the current state (a name taken, a re-index under way)."),
        (422, "The input is invalid: `detail` names the field and the rule."),
        (503, "The catalog database, Qdrant or the broker cannot be reached; retry."),
    )
}
"""Every error answers `{"detail": "..."}`: the schema says so (FastAPI's default 422 is a list)."""


def build_job_queue(services: Services) -> JobQueue:
    """Celery when a broker is configured, otherwise a thread of this process."""
    settings = services.settings
    if settings.queue_backend is QueueBackend.CELERY and settings.broker_url:
        return CeleryJobQueue(app=create_celery_app(settings), broker_url=settings.broker_url)
    return ThreadJobQueue(
        context=services.ingest_context,
        retry_delays_s=settings.ingest_retry_delays_s,
        recovered_job_ids=services.catalog.unfinished_job_ids(),
    )


def create_app(settings: Settings, *, models: ModelRegistry | None = None) -> FastAPI:
    """The HTTP API over the services that `settings` describe.

    `models` lends a registry whose models may be loaded already (tests, embedding hosts).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.open(settings, models=models)
        job_queue = build_job_queue(services)
        app.state.services = services
        app.state.job_queue = job_queue
        try:
            yield
        finally:
            job_queue.close()
            services.close()

    app = FastAPI(
        title="semsearch",
        summary="Semantic search and RAG retrieval: thresholded top-k hits per collection.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(DeclaredBodyLimit, max_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["content-type", "authorization"],
        )
    for router in (
        collections.router,
        documents.router,
        jobs.router,
        search.router,
        models_router,
        calibration.router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(health.router)
    app.add_exception_handler(SemsearchError, _semsearch_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


async def _semsearch_error(request: Request, exc: Exception) -> JSONResponse:
    code = next(
        (code for kind, code in ERROR_STATUS.items() if isinstance(exc, kind)),
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    if code >= 500:
        logger.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": str(exc)}, status_code=code)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors; a 405 lists every method of the path in `Allow` (Starlette
    names only those of the first route that matched the path)."""
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    if exc.status_code != status.HTTP_405_METHOD_NOT_ALLOWED:
        return await http_exception_handler(request, exc)
    allowed = sorted(
        {
            method
            for route in request.app.router.routes
            if isinstance(route, APIRoute) and route.matches(request.scope)[0] is not Match.NONE
            for method in route.methods or ()
        }
    )
    return JSONResponse(
        {"detail": f"method {request.method} is not allowed here; use {', '.join(allowed)}"},
        status_code=exc.status_code,
        headers={"Allow": ", ".join(allowed)},
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 whose `detail` is one readable sentence per problem, naming the field and the rule.

    The offending input is never copied into the answer: a refused body may be megabytes.
    """
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    problems = []
    for error in errors[:MAX_PROBLEMS_SHOWN]:
        if error["type"] == "json_invalid":
            problem = f"body: invalid JSON: {error.get('ctx', {}).get('error', error['msg'])}"
        else:
            location = ".".join(str(part) for part in error["loc"] if part != "body")
            problem = f"{location or 'body'}: {error['msg']}"
        problems.append(problem[:MAX_PROBLEM_CHARS])
    if len(errors) > MAX_PROBLEMS_SHOWN:
        problems.append(f"and {len(errors) - MAX_PROBLEMS_SHOWN} more problems")
    return JSONResponse(
        {"detail": "; ".join(problems)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )
