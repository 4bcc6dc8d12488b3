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
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.auth import Authenticator
from api.body_limit import DeclaredBodyLimit
from api.observability import RequestObservability
from api.rate_limit import RateClass, RateLimiter, parse_rates
from api.routes import (
    calibration,
    collections,
    console,
    documents,
    files,
    health,
    jobs,
    keys,
    metrics,
    ollama_compat,
    openai_compat,
    reconcile,
    search,
    similarity,
)
from api.routes.models import router as models_router
from api.schemas import ErrorResponse
from ingest.pipeline import IngestContext
from ingest.queue import JobQueue
from ingest.sweeper import LostJobSweeper
from ingest.thread_queue import ThreadJobQueue
from retrieval.config import QueueBackend, Settings
from retrieval.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    SemsearchError,
    Unauthenticated,
    Unavailable,
)
from retrieval.models.registry import ModelRegistry
from retrieval.services import Services
from workers.celery_app import CeleryJobQueue, create_celery_app

logger = logging.getLogger(__name__)

ERROR_STATUS: dict[type[SemsearchError], int] = {
    Unauthenticated: status.HTTP_401_UNAUTHORIZED,
    Forbidden: status.HTTP_403_FORBIDDEN,
    RateLimited: status.HTTP_429_TOO_MANY_REQUESTS,
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
        (401, "No API key, or an unknown or revoked one (once any key exists)."),
        (403, "The API key lacks the scope the operation needs."),
        (404, "The collection, document or job does not exist (or the key may not see it)."),
        (409, "Conflicts with the current state (a name taken, a re-index under way)."),
        (422, "The input is invalid: `detail` names the field and the rule."),
        (429, "The key's request rate is spent; retry after `Retry-After` seconds."),
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
        context=IngestContext.of(services),
        retry_delays_s=settings.ingest_retry_delays_s,
        slice_s=settings.ingest_slice_s,
        recovered_job_ids=services.catalog.unfinished_job_ids(),
    )


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """Counts in the broker's Redis when there is one (shared by every API process)."""
    broker = settings.broker_url or ""
    return RateLimiter(
        {
            RateClass.SEARCH: parse_rates(
                settings.rate_limit_search, setting="SEMSEARCH_RATE_LIMIT_SEARCH"
            ),
            RateClass.INGEST: parse_rates(
                settings.rate_limit_ingest, setting="SEMSEARCH_RATE_LIMIT_INGEST"
            ),
        },
        redis_url=broker if broker.startswith(("redis://", "rediss://")) else None,
    )


def create_app(settings: Settings, *, models: ModelRegistry | None = None) -> FastAPI:
    """The HTTP API over the services that `settings` describe.

    `models` lends a registry whose models may be loaded already (tests, embedding hosts).
    """

    rate_limiter = build_rate_limiter(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.open(settings, models=models)
        job_queue = build_job_queue(services)
        app.state.services = services
        app.state.job_queue = job_queue
        app.state.authenticator = Authenticator(services.catalog)
        app.state.rate_limiter = rate_limiter
        sweeper = None
        if settings.queue_backend is QueueBackend.CELERY:
            sweeper = LostJobSweeper(
                catalog=services.catalog,
                queue=job_queue,
                interval_s=min(60.0, settings.requeue_lost_jobs_after_s),
                grace_s=settings.requeue_lost_jobs_after_s,
            )
            sweeper.start()
        try:
            yield
        finally:
            if sweeper is not None:
                sweeper.close()
            job_queue.close()
            services.close()

    # /docs and /redoc with Swagger UI's and ReDoc's scripts served from the installed package,
    # not a CDN: the API docs work offline.
    app = FastAPIOffline(
        static_url="/docs-assets",
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
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
            allow_headers=["content-type", "authorization", "x-request-id"],
            expose_headers=["x-request-id", "retry-after", "location"],
        )
    app.add_middleware(RequestObservability)  # outermost: every answer has an id and a count
    for router in (
        collections.router,
        documents.router,
        files.router,
        jobs.router,
        jobs.collection_router,
        search.router,
        models_router,
        calibration.router,
        reconcile.router,
        keys.router,
        similarity.router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(console.router)
    # Other APIs' shapes, errors included: they document their own error responses.
    app.include_router(openai_compat.router)
    app.include_router(ollama_compat.router)
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
    headers = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)


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
