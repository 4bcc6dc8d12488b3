"""SIGKILL of the embedded service mid-ingest and mid-re-index: nothing is lost or half-done.

The service runs as a real `semsearch serve` process on its own data folder; it is killed
with SIGKILL (no shutdown code runs) while a job writes, then started again on the folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.pipeline import submit_documents
from ingest.sweeper import LostJobSweeper
from retrieval.catalog import Catalog, CollectionMode, DocumentInput
from retrieval.collections import NewCollection
from retrieval.config import Settings
from retrieval.services import Services
from tests.conftest import REDIS_URL, wait_for_job
from workers.celery_app import CeleryJobQueue, create_celery_app

START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """`semsearch serve` in a child process on a data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.client: httpx.Client | None = None

    def start(self) -> httpx.Client:
        environment = {
            **os.environ,
            "SEMSEARCH_DATA_DIR": str(self.data_dir),
            "SEMSEARCH_PORT": str(self.port),
            "HF_HUB_OFFLINE": "1",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; main()", "serve",
             "--log-level", "warning"],
            env=environment,
        )  # fmt: skip
        self._close_client()
        client = self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.process.poll() is None, "the server exited at start-up"
            try:
                if client.get("/health/ready").status_code == 200:
                    return client
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        self._close_client()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def _close_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    try:
        yield running
    finally:
        running.stop()


def notes(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-{n}", "text": f"Note {n} of {prefix}: depot {n} opens at {n % 12} am."}
        for n in range(count)
    ]


def wait_until_running(client: httpx.Client, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while client.get(f"/jobs/{job_id}").json()["chunks_done"] == 0:
        assert time.monotonic() < deadline, "the job never started writing"
        time.sleep(0.05)


def test_sigkill_mid_ingest_and_mid_reindex_loses_nothing(server: Server) -> None:
    client = server.start()
    assert client.post("/collections", json={"name": "kb", "mode": "dense"}).status_code == 201
    done = client.post("/collections/kb/documents", json={"documents": notes(20, "a")}).json()
    assert wait_for_job(client, done["id"])["status"] == "succeeded"

    # 1. Killed while an ingest writes.
    running = client.post("/collections/kb/documents", json={"documents": notes(400, "b")})
    wait_until_running(client, running.json()["id"])
    server.kill()
    client = server.start()
    assert wait_for_job(client, running.json()["id"])["status"] == "succeeded"

    # 2. Killed while a term-map change re-indexes.
    patched = client.patch("/collections/kb", json={"term_map": {"depot": "warehouse"}}).json()
    wait_until_running(client, patched["reindex"]["job_id"])
    server.kill()
    client = server.start()
    assert wait_for_job(client, patched["reindex"]["job_id"])["status"] == "succeeded"
    assert client.get("/collections/kb").json()["term_map"] == {"depot": "warehouse"}

    # 3. Killed right after a delete answered.
    assert client.delete("/collections/kb/documents/a-3").status_code == 204
    server.kill()
    server.stop()

    services = Services.open(Settings(data_dir=server.data_dir))
    try:
        collection = services.catalog.get_collection("kb")
        documents, total = services.catalog.list_documents("kb", offset=0, limit=500)
        assert total == 419
        assert all(document.status == "indexed" for document in documents)
        chunks = sum(document.chunk_count for document in documents)
        assert services.store.count(collection.store_name) == chunks
        assert services.store.count(collection.store_name, document_id="a-3") == 0
        hits = services.searcher.search("kb", "when does warehouse 7 of b open", top_k=5).hits
        assert "b-7" in [hit.document_id for hit in hits]
    finally:
        services.close()


def test_sigterm_lets_an_in_flight_request_finish(server: Server) -> None:
    client = server.start()
    assert client.post("/collections", json={"name": "kb"}).status_code == 201
    pairs = [
        {
            "a": f"question number {n} about depots",
            "b": f"depot {n} opening hours",
            "match": n % 3 == 0,
        }
        for n in range(600)
    ]
    answers: list[httpx.Response] = []

    def calibrate() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as own:
            answers.append(own.post("/collections/kb/calibrate", json={"pairs": pairs}))

    caller = threading.Thread(target=calibrate)
    caller.start()
    time.sleep(1.0)  # the calibration is embedding its 1,200 texts now
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    caller.join(timeout=120)

    # uvicorn drains, shuts down, then re-raises the signal: the exit status is SIGTERM's.
    assert server.process.wait(timeout=60) == -signal.SIGTERM
    assert [answer.status_code for answer in answers] == [200]
    assert answers[0].json()["samples"] == 600


WORKER = """
from ingest.pipeline import IngestContext
from retrieval.config import Settings
from retrieval.services import Services
from workers.celery_app import create_celery_app
from workers.tasks import register_tasks

settings = Settings()
services = Services.open(settings)
app = create_celery_app(settings)
register_tasks(app, context=lambda: IngestContext.of(services))
try:
    app.worker_main(["worker", "--loglevel=INFO", "--pool=threads", "--concurrency=1"])
finally:
    services.close()
"""
"""What `semsearch worker` runs, without its refusal of an embedded store: here the worker is
the only process that opens the data folder, which that command cannot know."""


class CeleryJob:
    """A job of 600 documents in a fresh embedded data folder, sent through the local Redis to
    worker processes started on demand."""

    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(
            data_dir=tmp_path / "data",
            broker_url=REDIS_URL,
            celery_queue=f"semsearch-test-{uuid.uuid4().hex}",
        )
        self.documents = [DocumentInput(id=d["id"], text=d["text"]) for d in notes(600, "w")]
        services = Services.open(self.settings)
        try:
            services.collections.create(
                NewCollection(name="kb", top_k=5, mode=CollectionMode.DENSE)
            )
            self.queue = CeleryJobQueue(app=create_celery_app(self.settings), broker_url=REDIS_URL)
            self.id = submit_documents(services.catalog, self.queue, "kb", self.documents).id
        finally:
            services.close()
        self.catalog = Catalog.from_url(self.settings.catalog_url)
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self) -> subprocess.Popen[bytes]:
        environment = {
            **os.environ,
            "SEMSEARCH_DATA_DIR": str(self.settings.data_dir),
            "SEMSEARCH_BROKER_URL": REDIS_URL,
            "SEMSEARCH_CELERY_QUEUE": self.settings.celery_queue,
        }
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER], env=environment, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def wait_until_midway(self, worker: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 120
        while self.catalog.get_job(self.id).chunks_done == 0:
            assert worker.poll() is None, "the worker exited before it started the job"
            assert time.monotonic() < deadline, "the worker never started the job"
            time.sleep(0.05)

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=30)

    def close(self) -> None:
        self.stop_workers()
        self.queue.close()
        self.catalog.close()

    def assert_exactly_indexed(self, *, resumed: bool = False) -> None:
        """Every document indexed once: as many points as its documents have chunks, which
        the job counted whole unless it `resumed` (then it counted only what was left, which
        is everything when the worker died before its first slice was recorded)."""
        finished = self.catalog.get_job(self.id)
        assert finished.status == "succeeded", finished.error
        services = Services.open(Settings(data_dir=self.settings.data_dir))
        try:
            listed, total = services.catalog.list_documents("kb", offset=0, limit=500)
            assert total == 600
            assert all(document.status == "indexed" for document in listed)
            record = services.catalog.get_collection("kb")
            ids = [document.id for document in self.documents]
            indexed = sum(d.chunk_count for d in services.catalog.get_documents("kb", ids))
            assert services.store.count(record.store_name) == indexed
            if resumed:
                assert 0 < finished.chunks_total <= indexed
            else:
                assert finished.chunks_total == indexed
        finally:
            services.close()


@pytest.fixture
def celery_job(tmp_path: Path) -> Iterator[CeleryJob]:
    job = CeleryJob(tmp_path)
    try:
        yield job
    finally:
        job.close()


@pytest.mark.redis
def test_sigterm_lets_a_celery_worker_finish_its_job(celery_job: CeleryJob) -> None:
    worker = celery_job.start_worker()
    celery_job.wait_until_midway(worker)
    worker.send_signal(signal.SIGTERM)
    job = celery_job.catalog.get_job(celery_job.id)
    assert job.status == "running"
    assert job.chunks_done < job.chunks_total, "the job ended before the signal"
    assert worker.wait(timeout=120) == 0
    celery_job.assert_exactly_indexed()


@pytest.mark.redis
def test_a_job_whose_celery_worker_was_killed_is_sent_again_and_completes(
    celery_job: CeleryJob,
) -> None:
    worker = celery_job.start_worker()
    celery_job.wait_until_midway(worker)
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    job = celery_job.catalog.get_job(celery_job.id)
    assert job.status == "running"
    assert job.chunks_done < job.chunks_total

    # The broker keeps the killed worker's task unacknowledged for its visibility timeout
    # (hours); the sweeper sees the job's heartbeat stop and sends it again.
    sweeper = LostJobSweeper(
        catalog=celery_job.catalog, queue=celery_job.queue, interval_s=60, grace_s=1.0
    )
    deadline = time.monotonic() + 60
    while celery_job.id not in sweeper.sweep():
        assert time.monotonic() < deadline, "the stalled job was never sent again"
        time.sleep(0.2)
    assert sweeper.sweep() == []  # claimed once: the next sweep waits for a new silence

    second = celery_job.start_worker()
    deadline = time.monotonic() + 300
    while celery_job.catalog.get_job(celery_job.id).status == "running":
        assert second.poll() is None, "the second worker exited"
        assert time.monotonic() < deadline, "the job did not complete after it was sent again"
        time.sleep(0.1)
    celery_job.stop_workers()  # the embedded data folder admits one process: the check's
    celery_job.assert_exactly_indexed(resumed=True)
