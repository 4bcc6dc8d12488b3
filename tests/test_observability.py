"""Metrics at /metrics, request ids in answers, and JSON log lines that follow a job.

Real parts throughout: the embedded service, the real model, the ingestion thread, and a real
Celery worker on the local Redis. Metrics are process-wide, so the tests compare before/after.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from api.app import create_app
from retrieval.config import Settings
from retrieval.log import JsonLinesHandler
from retrieval.models.registry import MINILM, ModelRegistry
from tests.conftest import REDIS_URL, wait_for_job
from tests.test_api import DOCUMENTS, create_collection, search

SEARCH_ROUTE = "/collections/{name}/search"
DOCUMENTS_ROUTE = "/collections/{name}/documents"


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of GET /metrics, by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def ingest_as(client: TestClient, request_id: str) -> str:
    """Submit DOCUMENTS under the request id `request_id`; the job's id."""
    response = client.post(
        "/collections/kb/documents",
        json={"documents": DOCUMENTS},
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 202, response.text
    assert response.headers["X-Request-ID"] == request_id
    job_id: str = response.json()["id"]
    return job_id


@pytest.fixture
def ingest_log() -> Iterator[io.StringIO]:
    """The JSON lines that the ingest package logs at INFO and above, as the service writes them."""
    stream = io.StringIO()
    handler = JsonLinesHandler(stream)
    logger = logging.getLogger("ingest")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def job_lines(stream: io.StringIO, job_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if job_id in line["message"]]


# ------------------------------------------------------------------------------------ metrics


def test_metrics_count_requests_by_route_template_and_embeddings_by_model(
    api: TestClient,
) -> None:
    create_collection(api, threshold=0.3, mode="dense")
    before = scrape(api)

    job = wait_for_job(api, ingest_as(api, "metrics-test"))
    assert job["status"] == "succeeded", job
    search(api, "How do I reset the password of the metrics account")
    assert api.get("/collections/nope").status_code == 404
    assert api.get("/no/such/path").status_code == 404
    assert api.request("BREW", "/collections").status_code == 405
    after = scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "semsearch_http_requests_total"
    assert delta(requests, method="POST", route=SEARCH_ROUTE, status="200") == 1
    assert delta(requests, method="POST", route=DOCUMENTS_ROUTE, status="202") == 1
    assert delta(requests, method="GET", route="/collections/{name}", status="404") == 1
    assert delta(requests, method="GET", route="<unmatched>", status="404") == 1
    assert delta(requests, method="OTHER", route="/collections", status="405") == 1
    assert delta("semsearch_http_request_seconds_count", method="POST", route=SEARCH_ROUTE) == 1
    http_routes = {
        v for name, labels in after if name.startswith("semsearch_http") for _, v in labels
    }
    assert not {route for route in http_routes if "nope" in route or "kb" in route}

    model = MINILM.name
    queries = delta("semsearch_embedding_batch_size_count", model=model, role="query")
    assert queries >= 1
    assert delta("semsearch_embedding_seconds_count", model=model, role="query") == queries
    chunks = job["chunks_total"]
    assert isinstance(chunks, int)
    assert delta("semsearch_embedding_batch_size_sum", model=model, role="passage") >= chunks
    assert delta("semsearch_embedding_seconds_count", model=model, role="passage") >= 1

    lookups = "semsearch_query_cache_lookups_total"
    assert delta(lookups, model=model, outcome="miss") == 1
    assert delta(lookups, model=model, outcome="hit") == 0
    search(api, "How do I reset the password of the metrics account")
    again = scrape(api)
    assert (
        value(again, lookups, model=model, outcome="hit")
        - value(before, lookups, model=model, outcome="hit")
        == 1
    )
    assert value(again, "semsearch_embedding_batch_size_count", model=model, role="query") == (
        value(after, "semsearch_embedding_batch_size_count", model=model, role="query")
    )

    finished = "semsearch_ingest_jobs_finished_total"
    assert delta(finished, kind="ingest", outcome="succeeded") == 1
    assert after[("semsearch_ingest_jobs_unfinished", frozenset())] == 0
    assert after[("semsearch_ingest_queue_depth", frozenset())] == 0


def test_metrics_is_open_and_outside_the_api_schema(api: TestClient) -> None:
    assert "/metrics" not in api.get("/openapi.json").json()["paths"]
    assert "semsearch_http_requests_total" in api.get("/metrics").text


def test_several_apps_in_one_process_share_the_metrics(
    api: TestClient, tmp_path: Path, models: ModelRegistry
) -> None:
    other = Settings(data_dir=tmp_path / "other")
    with TestClient(create_app(other, models=models)) as second:
        assert second.get("/metrics").status_code == 200
    assert api.get("/metrics").status_code == 200


# ----------------------------------------------------------------------------- request ids


def test_a_short_printable_request_id_is_echoed(api: TestClient) -> None:
    response = api.get("/health/live", headers={"X-Request-ID": "abc-123:/x=y"})
    assert response.headers["X-Request-ID"] == "abc-123:/x=y"
    missing = api.get("/collections/nope", headers={"X-Request-ID": "lost-1"})
    assert missing.status_code == 404
    assert missing.headers["X-Request-ID"] == "lost-1"


@pytest.mark.parametrize("incoming", [None, "", "has space", "x" * 129, "naïve"])
def test_a_missing_or_unfit_request_id_is_replaced(api: TestClient, incoming: str | None) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming.encode()}
    response = api.get("/health/live", headers=headers)
    generated = response.headers["X-Request-ID"]
    assert generated != incoming
    assert uuid.UUID(hex=generated)


def test_each_request_gets_its_own_id(api: TestClient) -> None:
    ids = {api.get("/health/live").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


# ------------------------------------------------------------------------ logs follow a job


def test_the_ingestion_threads_log_lines_carry_the_submitting_request_id(
    api: TestClient, ingest_log: io.StringIO
) -> None:
    create_collection(api)
    job_id = ingest_as(api, "thread-req-42")
    assert wait_for_job(api, job_id)["status"] == "succeeded"

    lines = job_lines(ingest_log, job_id)
    assert [line["message"] for line in lines][-1] == f"job {job_id}: succeeded"
    for line in lines:
        assert line["request_id"] == "thread-req-42"
        assert line["logger"] == "ingest.pipeline"
        assert line["level"] == "INFO"
        assert line["timestamp"].endswith("+00:00")


@pytest.mark.redis
def test_the_celery_workers_log_lines_carry_the_submitting_request_id(
    celery_api: TestClient, ingest_log: io.StringIO
) -> None:
    # The worker set up logging through workers/celery_app.py: JSON lines on the root logger.
    assert any(isinstance(h, JsonLinesHandler) for h in logging.getLogger().handlers)
    create_collection(celery_api)
    job_id = ingest_as(celery_api, "celery-req-7")
    assert wait_for_job(celery_api, job_id)["status"] == "succeeded"

    lines = job_lines(ingest_log, job_id)
    assert [line["message"] for line in lines][-1] == f"job {job_id}: succeeded"
    assert {line["request_id"] for line in lines} == {"celery-req-7"}
    assert scrape(celery_api)[("semsearch_ingest_queue_depth", frozenset())] == 0


@pytest.mark.redis
def test_jobs_waiting_for_a_celery_worker_show_in_the_gauges(
    tmp_path: Path, models: ModelRegistry
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        broker_url=REDIS_URL,
        celery_queue=f"semsearch-test-{uuid.uuid4().hex}",
    )
    with TestClient(create_app(settings, models=models)) as client:
        create_collection(client)
        assert scrape(client)[("semsearch_ingest_queue_depth", frozenset())] == 0
        ingest_as(client, "no-worker-yet")
        samples = scrape(client)
        assert samples[("semsearch_ingest_queue_depth", frozenset())] == 1
        assert samples[("semsearch_ingest_jobs_unfinished", frozenset())] == 1
    with Redis.from_url(REDIS_URL) as redis:
        redis.delete(settings.celery_queue)  # the task that no worker took


@pytest.mark.redis
def test_metrics_answer_without_the_queue_depth_when_the_broker_is_down(
    tmp_path: Path, models: ModelRegistry
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", broker_url="redis://127.0.0.1:1/0", broker_timeout_s=0.5
    )
    with TestClient(create_app(settings, models=models)) as client:
        samples = scrape(client)
    assert ("semsearch_ingest_queue_depth", frozenset()) not in samples
    assert samples[("semsearch_ingest_jobs_unfinished", frozenset())] == 0


SEMSEARCH = [sys.executable, "-c", "import sys; from api.cli import main; main()"]
"""The `semsearch` command run by this interpreter (its arguments follow)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_celery_worker_serves_its_own_metrics(tmp_path: Path) -> None:
    """`semsearch worker` as a real process: its embedding and job metrics are its own, so it
    serves them itself. The Qdrant URL is unreachable on purpose: the worker starts without
    touching it, and the scrape needs nothing else."""
    port = free_port()
    environment = {
        **os.environ,
        "SEMSEARCH_DATA_DIR": str(tmp_path),
        "SEMSEARCH_BROKER_URL": f"{REDIS_URL.rsplit('/', 1)[0]}/13",
        "SEMSEARCH_QDRANT_URL": "http://127.0.0.1:1",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as stderr:
        worker = subprocess.Popen(
            [*SEMSEARCH, "worker", "--metrics-port", str(port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert worker.poll() is None, log.read_text(errors="replace")[-2000:]
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the worker served no metrics in 120 s"
                time.sleep(0.2)
        names = {family.name for family in text_string_to_metric_families(response.text)}
        assert {"semsearch_embedding_batch_size", "semsearch_ingest_jobs_finished"} <= names

        taken = subprocess.run(
            [*SEMSEARCH, "worker", "--metrics-port", str(port)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert taken.returncode == 2
        assert f"cannot serve metrics on 127.0.0.1:{port}" in " ".join(taken.stderr.split())
    finally:
        worker.terminate()
        worker.wait(timeout=60)
