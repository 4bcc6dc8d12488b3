"""The ingest path through a real Celery worker on the real Redis broker.

The worker runs inside the test process (celery.contrib.testing) and shares the app's embedded
store, which is the only way an embedded Qdrant folder can serve both: it admits one process.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery.signals import task_prerun
from fastapi.testclient import TestClient
from redis import Redis

from api.app import create_app
from ingest.sweeper import LostJobSweeper
from retrieval.catalog import DocumentInput
from retrieval.collections import NewCollection
from retrieval.config import Settings
from retrieval.models.registry import MINILM, MULTILINGUAL_E5_SMALL, ModelRegistry
from retrieval.services import Services
from tests.conftest import REDIS_URL, celery_worker_for, wait_for_job
from tests.test_api import DOCUMENTS, create_collection, search
from workers.celery_app import CeleryJobQueue, create_celery_app

pytestmark = pytest.mark.redis


def test_job_runs_on_the_celery_worker_and_succeeds(celery_api: TestClient) -> None:
    assert celery_api.get("/healthz").json()["ingestion"] == "celery"
    create_collection(celery_api, threshold=0.3)
    response = celery_api.post("/collections/kb/documents", json={"documents": DOCUMENTS})
    assert response.status_code == 202, response.text

    job = wait_for_job(celery_api, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["documents_done"] == len(DOCUMENTS)
    assert job["chunks_done"] == job["chunks_total"] > 0
    assert search(celery_api, "How do I reset my password")["hits"][0]["document_id"] == "password"


def test_unreachable_broker_is_503_and_the_job_is_marked_failed(
    tmp_path: Path, models: ModelRegistry
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", broker_url="redis://127.0.0.1:1/0", broker_timeout_s=0.5
    )
    with TestClient(create_app(settings, models=models)) as client:
        create_collection(client)
        response = client.post("/collections/kb/documents", json={"documents": DOCUMENTS[:1]})
        assert response.status_code == 503
        assert "redis://127.0.0.1:1/0 cannot be reached" in response.json()["detail"]
        document = client.get("/collections/kb/documents/password").json()
        assert document["status"] == "pending"


def test_the_worker_embeds_with_each_collections_model(
    celery_api: TestClient, models: ModelRegistry
) -> None:
    """Ingest and re-index both run on the worker, each with the collection's own model."""
    create_collection(celery_api, threshold=-1, mode="dense")
    response = celery_api.post("/collections/kb/documents", json={"documents": DOCUMENTS[:3]})
    assert wait_for_job(celery_api, response.json()["id"])["status"] == "succeeded"

    patched = celery_api.patch("/collections/kb", json={"model": MULTILINGUAL_E5_SMALL.name})
    job = wait_for_job(celery_api, patched.json()["reindex"]["job_id"])
    assert (job["kind"], job["status"]) == ("reindex", "succeeded")

    answer = search(celery_api, "How do I reset my password?")
    assert answer["model"] == MULTILINGUAL_E5_SMALL.name
    hit = answer["hits"][0]
    assert hit["document_id"] == "password"
    indexed = [f"{hit['title']}\n{hit['text']}"]
    e5, minilm = models.get(MULTILINGUAL_E5_SMALL.name), models.get(MINILM.name)
    query = ["How do I reset my password"]
    by_e5 = float(e5.encode_queries(query)[0] @ e5.encode_passages(indexed)[0])
    by_minilm = float(minilm.encode_queries(query)[0] @ minilm.encode_passages(indexed)[0])
    assert hit["dense_score"] == pytest.approx(by_e5, abs=2e-3)
    assert abs(hit["dense_score"] - by_minilm) > 0.05


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """A Redis of the test's own, so that stopping it touches nobody else."""
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)


def private_broker_settings(tmp_path: Path, port: int, **extra: Any) -> Settings:
    """Settings of an API whose broker is the test's own redis-server on `port`."""
    return Settings(
        data_dir=tmp_path / "data",
        broker_url=f"redis://127.0.0.1:{port}/0",
        broker_timeout_s=0.5,
        celery_queue=f"semsearch-test-{uuid.uuid4().hex}",
        **extra,
    )


def test_a_broker_outage_refuses_ingest_keeps_search_and_heals_itself(
    tmp_path: Path, models: ModelRegistry
) -> None:
    port = free_port()
    redis = start_redis(port)
    settings = private_broker_settings(tmp_path, port)
    app = create_app(settings, models=models)
    try:
        with TestClient(app) as api:
            create_collection(api, threshold=0.3)
            assert api.get("/health/ready").status_code == 200

            redis.terminate()
            redis.wait(timeout=10)
            refused = api.post("/collections/kb/documents", json={"documents": DOCUMENTS[:1]})
            assert refused.status_code == 503
            assert "cannot be reached" in refused.json()["detail"]
            ready = api.get("/health/ready")
            assert ready.status_code == 503
            assert "the job broker at redis://127.0.0.1" in ready.json()["detail"]
            assert search(api, "reset my password")["hits"] == []  # search needs no broker

            redis = start_redis(port)
            assert api.get("/health/ready").status_code == 200
            accepted = api.post("/collections/kb/documents", json={"documents": DOCUMENTS[:2]})
            assert accepted.status_code == 202, accepted.text
            with celery_worker_for(app, settings):
                job = wait_for_job(api, accepted.json()["id"])
            assert job["status"] == "succeeded", job
            hits = search(api, "reset my password")["hits"]
            assert hits[0]["document_id"] == "password"
    finally:
        redis.terminate()
        redis.wait(timeout=10)


def test_a_job_lost_by_a_redis_restart_is_sent_again(tmp_path: Path, models: ModelRegistry) -> None:
    """Redis here keeps nothing on disk, like a cache-only deployment: a restart empties it."""
    port = free_port()
    redis = start_redis(port)
    settings = private_broker_settings(tmp_path, port, requeue_lost_jobs_after_s=1.0)
    app = create_app(settings, models=models)
    try:
        with TestClient(app) as api:
            create_collection(api, threshold=0.3)
            accepted = api.post("/collections/kb/documents", json={"documents": DOCUMENTS[:2]})
            assert accepted.status_code == 202
            time.sleep(2.5)  # past the grace period, but the task is still in the queue
            with Redis(port=port) as client:
                assert client.llen(settings.celery_queue) == 1, "a task in the queue was re-sent"

            redis.terminate()
            redis.wait(timeout=10)
            redis = start_redis(port)  # empty: the task is gone, the job still "queued"
            assert api.get(f"/jobs/{accepted.json()['id']}").json()["status"] == "queued"

            with celery_worker_for(app, settings):
                job = wait_for_job(api, accepted.json()["id"])
            assert job["status"] == "succeeded", job
            assert search(api, "reset my password")["hits"][0]["document_id"] == "password"
    finally:
        redis.terminate()
        redis.wait(timeout=10)


def test_a_sweep_that_resends_a_stalled_job_still_resends_a_lost_queued_one(
    celery_settings: Settings, models: ModelRegistry
) -> None:
    """The broker's queue is measured before the sweep sends anything: the stalled job it
    sends again must not pass for a queue that holds the lost one."""
    services = Services.open(celery_settings, models=models)
    queue = CeleryJobQueue(app=create_celery_app(celery_settings), broker_url=REDIS_URL)
    try:
        services.collections.create(NewCollection(name="kb", threshold=0.3, top_k=3))
        stalled = services.catalog.stage_documents("kb", [DocumentInput(id="a", text="A.")])
        services.catalog.start_job(stalled.id, chunks_total=1)  # and its worker died
        lost = services.catalog.stage_documents("kb", [DocumentInput(id="b", text="B.")])
        time.sleep(0.3)  # both silent past the grace period; the broker's queue is empty

        sweeper = LostJobSweeper(catalog=services.catalog, queue=queue, interval_s=60, grace_s=0.2)
        assert sweeper.sweep() == [stalled.id, lost.id]
        with Redis.from_url(REDIS_URL) as client:
            assert client.llen(celery_settings.celery_queue) == 2
        assert sweeper.sweep() == []  # both wait in the broker now
    finally:
        with Redis.from_url(REDIS_URL) as client:
            client.delete(celery_settings.celery_queue)
        queue.close()
        services.close()


def test_a_large_job_and_a_large_reindex_are_shared_by_workers(
    celery_settings: Settings, models: ModelRegistry
) -> None:
    """Parts of one job go to whichever worker is free: a worker of two threads (`semsearch
    worker --concurrency 2`) runs two at once. Two worker processes would need a Qdrant
    server to share, which this machine lacks; two Celery workers in one process share the
    Redis transport's poller and disturb each other, so the threads stand in for them. A
    re-index of as many documents is split the same way; the last of its parts to end swaps
    the new vectors in."""
    settings = celery_settings.model_copy(update={"job_part_documents": 6})
    ran_on: dict[str, int] = {}

    def record(args: Any = None, **_: Any) -> None:
        ran_on[args[0]] = threading.get_ident()

    documents = [
        {
            "id": f"manual-{n}",
            "text": f"Page {n}. " + " ".join(f"Bolt {k} of frame {n}." for k in range(40)),
        }
        for n in range(24)
    ]
    app = create_app(settings, models=models)
    task_prerun.connect(record, weak=False)
    try:
        with (
            TestClient(app) as client,
            celery_worker_for(app, settings, concurrency=2),
        ):
            create_collection(client, threshold=0.3)
            response = client.post("/collections/kb/documents", json={"documents": documents})
            assert response.status_code == 202, response.text
            assert response.json()["parts"] == 4
            job = wait_for_job(client, response.json()["id"])
            count = client.get("/collections/kb").json()["document_count"]
            ingest_threads = set(ran_on.values())
            ran_on.clear()

            patched = client.patch("/collections/kb", json={"model": MULTILINGUAL_E5_SMALL.name})
            assert patched.status_code == 200, patched.text
            reindex = wait_for_job(client, patched.json()["reindex"]["job_id"])
            collection = client.get("/collections/kb").json()
            services: Services = client.app.state.services  # type: ignore[attr-defined]
            stored = services.catalog.get_collection("kb")
            points = services.store.count(stored.store_name)
            hits = search(client, "bolt 7 of frame 5", top_k=3)["hits"]
    finally:
        task_prerun.disconnect(record)

    assert job["status"] == "succeeded", job
    assert job["documents_done"] == len(documents)
    assert job["chunks_done"] == job["chunks_total"] > len(documents)
    assert count == len(documents)
    assert len(set(ingest_threads)) == 2

    assert reindex["status"] == "succeeded", reindex
    assert (reindex["kind"], reindex["parts"]) == ("reindex", 4)
    assert reindex["documents_done"] == len(documents)
    assert reindex["chunks_done"] == reindex["chunks_total"] == points
    assert (collection["model"], collection["reindex"]) == (MULTILINGUAL_E5_SMALL.name, None)
    assert {hit["document_id"] for hit in hits} & {"manual-5"}
    assert len(ran_on) == 4  # each part of the re-index ran once
    assert len(set(ran_on.values())) == 2
