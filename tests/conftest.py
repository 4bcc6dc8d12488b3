"""Shared fixtures: a clean environment per test, one loaded model per session, a live app."""

from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from celery.contrib.testing.worker import start_worker
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.pipeline import IngestContext
from retrieval.config import Settings
from retrieval.models.base import EmbeddingModel
from retrieval.models.registry import BUNDLED_MODELS, MINILM, ModelRegistry
from retrieval.services import Services
from workers.celery_app import create_celery_app
from workers.tasks import register_tasks

JOB_TIMEOUT_S = 120.0
LIVE_TIMEOUT_S = 60.0
"""How long a test waits for a live server's answer: httpx's default 5 s is too short on a
shared machine, where a first request to a fresh server once took longer."""
live_get = functools.partial(httpx.get, timeout=LIVE_TIMEOUT_S)
live_post = functools.partial(httpx.post, timeout=LIVE_TIMEOUT_S)
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def celery_settings(tmp_path: Path) -> Settings:
    # A queue of its own, so that no task left over from another run reaches this worker.
    return Settings(
        data_dir=tmp_path / "data",
        broker_url=REDIS_URL,
        celery_queue=f"semsearch-test-{uuid.uuid4().hex}",
    )


@pytest.fixture
def celery_api(celery_settings: Settings, models: ModelRegistry) -> Iterator[TestClient]:
    """The API sending jobs through the local Redis to a real Celery worker in this process.

    The worker shares the app's embedded store, which is the only way an embedded Qdrant
    folder can serve both: it admits one process."""
    app = create_app(celery_settings, models=models)
    with TestClient(app) as client, celery_worker_for(app, celery_settings):
        yield client


@contextmanager
def celery_worker_for(app: FastAPI, settings: Settings, *, concurrency: int = 1) -> Iterator[None]:
    """A real Celery worker in this process, running jobs with the started `app`'s services
    (they share its embedded store, which admits one process); with `concurrency` above 1,
    in as many threads, as `semsearch worker --concurrency` runs them."""
    services: Services = app.state.services
    worker_app = create_celery_app(settings)
    register_tasks(worker_app, context=lambda: IngestContext.of(services))
    with start_worker(
        worker_app,
        pool="solo" if concurrency == 1 else "threads",
        concurrency=concurrency,
        perform_ping_check=False,
        shutdown_timeout=30,
    ):
        yield


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SEMSEARCH_* variable of the caller's shell leaks into a test; HOME is the test's own."""
    for name in list(os.environ):
        if name.startswith("SEMSEARCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """The real bundled models, each loaded once for the whole run when a test first needs it,
    with the service's default query cache."""
    return ModelRegistry(
        BUNDLED_MODELS,
        default=MINILM.name,
        query_cache_size=Settings.model_fields["query_cache_size"].default,
        onnx_cache_dir=tmp_path_factory.mktemp("onnx"),
    )


@pytest.fixture(scope="session")
def minilm(models: ModelRegistry) -> EmbeddingModel:
    """The real bundled all-MiniLM-L6-v2."""
    return models.get(MINILM.name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The embedded defaults, except the search rate: tests that run sample sets through search
    ask faster than a client may (repeated questions come from the query cache). The rates
    themselves are tested where they are set (test_auth.py, test_compat.py)."""
    return Settings(data_dir=tmp_path / "data", rate_limit_search="")


@pytest.fixture
def api(settings: Settings, models: ModelRegistry) -> Iterator[TestClient]:
    """The embedded service (SQLite, Qdrant Edge, ingestion thread) behind a test client."""
    with TestClient(create_app(settings, models=models)) as client:
        yield client


@pytest.fixture
def live_url(settings: Settings, models: ModelRegistry) -> Iterator[str]:
    """The embedded service served by a real uvicorn on a free local port, for the CLI."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, models=models), host="127.0.0.1", port=0, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_for_job(client: TestClient | httpx.Client, job_id: str) -> dict[str, object]:
    """Poll GET /jobs/{id} until the job ends; fail the test if it does not within the limit."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        response = client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, object] = response.json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish within {JOB_TIMEOUT_S}s")
