"""The service as an operator sees it: restarts, outages of its backing services, start-up."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import cli
from ingest.pipeline import IngestContext, submit_documents
from ingest.thread_queue import ThreadJobQueue
from retrieval.catalog import Catalog, DocumentInput
from retrieval.collections import NewCollection
from retrieval.config import Settings
from retrieval.errors import ConfigurationError, Unavailable
from retrieval.models.registry import ModelRegistry
from retrieval.services import Services
from tests.conftest import wait_for_job
from tests.test_api import DOCUMENTS, create_collection, ingest, search

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def depot_notes(count: int) -> list[dict[str, Any]]:
    """Short documents, many of them: a job long enough to be interrupted."""
    return [
        {"id": f"note-{n}", "text": f"Note {n}: the depot {n} opens at {n % 12 + 1} o'clock."}
        for n in range(count)
    ]


def hit_keys(result: dict[str, Any]) -> list[tuple[str, int, float]]:
    return [(h["document_id"], h["chunk_index"], round(h["score"], 5)) for h in result["hits"]]


def test_restart_on_the_same_data_dir_gives_the_same_hits(
    settings: Settings, models: ModelRegistry
) -> None:
    with TestClient(create_app(settings, models=models)) as api:
        create_collection(api, threshold=0.2, top_k=5)
        ingest(api, DOCUMENTS)
        before = search(api, "How do I reset my password?")
        assert before["hits"]

    with TestClient(create_app(settings, models=models)) as api:
        after = search(api, "How do I reset my password?")
        assert hit_keys(after) == hit_keys(before)
        assert api.get("/collections/kb/documents/password").json()["status"] == "indexed"


def test_jobs_left_queued_at_shutdown_run_after_restart(
    settings: Settings, models: ModelRegistry
) -> None:
    many = depot_notes(300)
    with TestClient(create_app(settings, models=models)) as api:
        create_collection(api)
        first = api.post("/collections/kb/documents", json={"documents": many}).json()
        second = api.post("/collections/kb/documents", json={"documents": DOCUMENTS}).json()
    # Shutdown interrupted the job in progress and left the next one queued in the catalog.
    catalog = Catalog.from_url(settings.catalog_url)
    try:
        assert catalog.get_job(first["id"]).status in ("queued", "running")
        assert catalog.get_job(second["id"]).status == "queued"
    finally:
        catalog.close()

    with TestClient(create_app(settings, models=models)) as api:
        assert wait_for_job(api, first["id"])["status"] == "succeeded"
        assert wait_for_job(api, second["id"])["status"] == "succeeded"
        assert search(api, "reset my password")["hits"][0]["document_id"] == "password"


def test_a_reindex_interrupted_by_shutdown_completes_after_restart(
    settings: Settings, models: ModelRegistry
) -> None:
    many = depot_notes(200)
    with TestClient(create_app(settings, models=models)) as api:
        create_collection(api, threshold=-1, mode="dense")
        ingest(api, many)
        patched = api.patch("/collections/kb", json={"model": "multilingual-e5-small"}).json()
        reindex_id = patched["reindex"]["job_id"]
    # Shutdown interrupted the re-index: the collection still serves the old vectors.
    catalog = Catalog.from_url(settings.catalog_url)
    try:
        assert catalog.get_job(reindex_id).status in ("queued", "running")
        collection = catalog.get_collection("kb")
        assert (collection.model, collection.reindex is not None) == ("all-MiniLM-L6-v2", True)
    finally:
        catalog.close()

    with TestClient(create_app(settings, models=models)) as api:
        assert wait_for_job(api, reindex_id)["status"] == "succeeded"
        collection = api.get("/collections/kb").json()
        assert (collection["model"], collection["reindex"]) == ("multilingual-e5-small", None)
        assert collection["document_count"] == 200
        hits = search(api, "When does depot 7 open?", top_k=3)["hits"]
        assert "note-7" in [hit["document_id"] for hit in hits]
        services: Services = api.app.state.services  # type: ignore[attr-defined]
        stored = services.catalog.get_collection("kb")
        assert services.store.count(stored.store_name) == 200


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A database of its own on the local PostgreSQL, dropped afterwards."""
    name = f"semsearch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_catalog_outage_is_503_and_the_service_recovers(
    tmp_path: Path, models: ModelRegistry, postgres_database: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{postgres_database}",
    )
    with TestClient(create_app(settings, models=models)) as api:
        create_collection(api, threshold=0.2)
        ingest(api, DOCUMENTS[:2])

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{postgres_database}" WITH ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (postgres_database,),
            )
        for request in (
            lambda: api.get("/collections/kb"),
            lambda: api.post("/collections/kb/search", json={"query": "reset password"}),
            lambda: api.post("/collections", json={"name": "other"}),
        ):
            response = request()
            assert response.status_code == 503, response.text
            assert response.json()["detail"].startswith("catalog database unavailable")

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{postgres_database}" WITH ALLOW_CONNECTIONS true')
        assert search(api, "reset my password")["hits"][0]["document_id"] == "password"
        assert api.get("/collections").json()["count"] == 1


def block_connections(database: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )


def allow_connections(database: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')


@pytest.mark.postgres
def test_ingestion_outlives_a_catalog_outage_longer_than_its_retries(
    tmp_path: Path, models: ModelRegistry, postgres_database: str
) -> None:
    """Once the job's tries are spent, not even its failure can be recorded: the thread keeps
    the job, stays alive, and runs it when the database is back."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{postgres_database}",
        ingest_retry_delays_s=(0.05, 0.1),
    )
    services = Services.open(settings, models=models)
    queue = ThreadJobQueue(context=IngestContext.of(services), retry_delays_s=(0.05, 0.1))
    try:
        services.collections.create(NewCollection(name="kb", top_k=3, threshold=-1.0))
        job = services.catalog.stage_documents(
            "kb", [DocumentInput(id="password", text=DOCUMENTS[0]["text"])]
        )
        block_connections(postgres_database)
        queue.submit(job.id)
        time.sleep(1.5)  # every try and the attempt to record the failure have failed by now
        assert queue.is_running()

        allow_connections(postgres_database)
        deadline = time.monotonic() + 60
        while services.catalog.get_job(job.id).status != "succeeded":
            assert time.monotonic() < deadline, services.catalog.get_job(job.id)
            time.sleep(0.1)
        hits = services.searcher.search("kb", "reset my password").hits
        assert hits[0].document_id == "password"
    finally:
        allow_connections(postgres_database)
        queue.close()
        services.close()


@pytest.mark.postgres
def test_connections_dropped_between_requests_are_replaced_unseen(
    tmp_path: Path, models: ModelRegistry, postgres_database: str
) -> None:
    """A database restart or a proxy's idle timeout kills pooled connections: the pool's
    pre-ping replaces them, so not one request fails."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{postgres_database}",
    )
    with TestClient(create_app(settings, models=models)) as api:
        create_collection(api, threshold=0.2)
        ingest(api, DOCUMENTS[:2])
        for _ in range(3):
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (postgres_database,),
                )
            assert api.get("/collections/kb").status_code == 200
            assert search(api, "reset my password")["hits"][0]["document_id"] == "password"
        ingest(api, DOCUMENTS[2:3])
        assert api.get("/collections/kb").json()["document_count"] == 3


def test_readiness_reports_an_ingestion_thread_that_stopped(api: TestClient) -> None:
    assert api.get("/health/live").json() == {"status": "ok"}
    assert api.get("/health/ready").status_code == 200
    api.app.state.job_queue.close()  # type: ignore[attr-defined]

    ready = api.get("/health/ready")

    assert ready.status_code == 503
    assert ready.json()["detail"].startswith("not ready: the ingestion thread is not running")
    assert api.get("/healthz").status_code == 503
    assert api.get("/health/live").status_code == 200


def test_unreachable_qdrant_server_is_503_and_nothing_is_stored(
    tmp_path: Path, models: ModelRegistry
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", qdrant_url="http://127.0.0.1:1", qdrant_timeout_s=1
    )
    with TestClient(create_app(settings, models=models)) as api:
        response = api.post("/collections", json={"name": "kb"})
        assert response.status_code == 503, response.text
        assert "127.0.0.1:1" in response.json()["detail"]
        assert api.get("/collections").json()["count"] == 0


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_separate_workers_on_an_embedded_store_are_refused(command: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [command],
        env={
            "SEMSEARCH_BROKER_URL": "redis://127.0.0.1:6379/0",
            "SEMSEARCH_DATA_DIR": str(tmp_path),
        },
    )
    assert result.exit_code == 2
    assert "SEMSEARCH_QDRANT_URL" in result.output
    assert "one process" in result.output


def test_worker_without_a_broker_is_refused() -> None:
    result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code == 2
    assert "SEMSEARCH_BROKER_URL" in result.output


def test_a_second_process_on_the_same_data_folder_stops_at_start_up(
    tmp_path: Path, models: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = Services.open(settings, models=models)
    try:
        with pytest.raises(
            ConfigurationError,
            match=f"the data folder {settings.data_dir} is in use by process {os.getpid()}",
        ):
            Services.open(settings, models=models)
        monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(settings.data_dir))
        result = CliRunner().invoke(cli, ["serve", "--port", "1"])
        assert result.exit_code == 2
        assert "belongs to one process" in " ".join(result.output.split())
    finally:
        first.close()
    Services.open(settings, models=models).close()  # released with the first one


def test_a_big_import_lets_a_small_job_of_another_collection_run_first(
    tmp_path: Path, models: ModelRegistry
) -> None:
    settings = Settings(data_dir=tmp_path / "data", ingest_slice_s=0.2)
    with TestClient(create_app(settings, models=models)) as api:
        create_collection(api, name="big", threshold=0.3)
        create_collection(api, name="small", threshold=0.3)
        many = [
            {"id": f"n{n}", "text": f"Depot {n} opens at {n % 12} am on weekdays. " * 3}
            for n in range(400)
        ]
        big = api.post("/collections/big/documents", json={"documents": many}).json()
        deadline = time.monotonic() + 60
        while api.get(f"/jobs/{big['id']}").json()["chunks_done"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        small = api.post("/collections/small/documents", json={"documents": DOCUMENTS[:1]}).json()

        small_done = wait_for_job(api, small["id"])
        big_now = api.get(f"/jobs/{big['id']}").json()
        assert small_done["status"] == "succeeded"
        assert big_now["status"] == "running", "the small job waited for the whole import"
        assert 0 < big_now["documents_done"] < 400

        big_done = wait_for_job(api, big["id"])
        assert big_done["status"] == "succeeded"
        assert big_done["documents_done"] == 400
        documents = api.get("/collections/big/documents", params={"limit": 500}).json()
        assert documents["count"] == 400
        assert {d["status"] for d in documents["documents"]} == {"indexed"}
        assert search(api, "when does depot 7 open", name="big")["hits"]


def test_a_reindex_lets_waiting_jobs_run_between_its_turns_and_embeds_each_chunk_once(
    tmp_path: Path, models: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-index records each document it has written: a turn resumes where the last one
    stopped, and the small jobs submitted meanwhile do not wait for the whole re-index."""
    e5 = models.get("multilingual-e5-small")
    embedded: list[str] = []
    encode_passages = e5.encode_passages

    def counted(texts: list[str]) -> Any:
        embedded.extend(texts)
        return encode_passages(texts)

    settings = Settings(data_dir=tmp_path / "data", ingest_slice_s=0.01)
    with TestClient(create_app(settings, models=models)) as api:
        create_collection(api, threshold=-1, mode="dense")
        create_collection(api, name="small", threshold=0.3)
        ingest(api, depot_notes(300))  # five batches of chunks: four chances to yield
        monkeypatch.setattr(e5, "encode_passages", counted)

        patched = api.patch("/collections/kb", json={"model": "multilingual-e5-small"}).json()
        reindex_id = patched["reindex"]["job_id"]
        deadline = time.monotonic() + 60
        while api.get(f"/jobs/{reindex_id}").json()["chunks_done"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        waiting = [
            api.post("/collections/small/documents", json={"documents": [document]}).json()
            for document in DOCUMENTS
        ]
        for job in waiting:
            assert wait_for_job(api, job["id"])["status"] == "succeeded"
        assert api.get(f"/jobs/{reindex_id}").json()["status"] == "running", (
            "the small jobs waited for the whole re-index"
        )

        reindex = wait_for_job(api, reindex_id)
        assert reindex["status"] == "succeeded", reindex
        assert len(embedded) == reindex["chunks_total"] == reindex["chunks_done"]
        assert reindex["documents_done"] == 300
        assert len(embedded) >= 300
        assert len(set(embedded)) == len(embedded)
        assert api.get("/collections/kb").json()["model"] == "multilingual-e5-small"


def test_an_outage_fails_sliced_jobs_once_their_tries_are_spent(
    tmp_path: Path, models: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two jobs take turns while the store is down: each one's count of tries carries over its
    turns, and its backoff wait does not eat the turn it waited for. The embedded store lives
    in this process and cannot be taken down from outside it, so its upsert is replaced by one
    that fails as an unreachable store does (a fault that cannot be produced for real)."""
    services = Services.open(Settings(data_dir=tmp_path / "data"), models=models)
    queue = None
    try:
        for name in ("a", "b"):
            services.collections.create(NewCollection(name=name, threshold=0.1, top_k=5))

        def down(*_: object, **__: object) -> None:
            raise Unavailable("the vector store is down")

        monkeypatch.setattr(services.store, "upsert", down)
        queue = ThreadJobQueue(
            context=IngestContext.of(services), retry_delays_s=(0.05, 0.1), slice_s=0.01
        )
        documents = [
            DocumentInput(id=f"d{n}", text=f"Depot {n} opens at {n} am.") for n in range(3)
        ]
        jobs = [submit_documents(services.catalog, queue, name, documents) for name in ("a", "b")]

        deadline = time.monotonic() + 30
        while any(services.catalog.get_job(job.id).status != "failed" for job in jobs):
            assert time.monotonic() < deadline, [services.catalog.get_job(job.id) for job in jobs]
            time.sleep(0.05)
        for job in jobs:
            error = services.catalog.get_job(job.id).error or ""
            assert "gave up after retries: the vector store is down" in error
    finally:
        if queue is not None:
            queue.close()
        services.close()


def test_a_part_that_fails_gives_the_whole_reindex_up(
    settings: Settings, models: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No text makes a bundled model's encode fail for real, so one document's encode is
    made to raise: the re-index of parts must not half-switch the collection."""
    e5 = models.get("multilingual-e5-small")
    encode_passages = e5.encode_passages

    def fails_on_note_3(texts: list[str]) -> Any:
        if any(text.startswith("Note 3:") for text in texts):
            raise ValueError("the model could not encode this text")
        return encode_passages(texts)

    parted = settings.model_copy(update={"job_part_documents": 2})
    with TestClient(create_app(parted, models=models)) as api:
        create_collection(api, threshold=-1, mode="dense")
        ingest(api, depot_notes(6))
        services: Services = api.app.state.services  # type: ignore[attr-defined]
        before = services.catalog.get_collection("kb")
        monkeypatch.setattr(e5, "encode_passages", fails_on_note_3)

        patched = api.patch("/collections/kb", json={"model": "multilingual-e5-small"}).json()
        new_store = services.catalog.get_collection("kb").reindex
        reindex = wait_for_job(api, patched["reindex"]["job_id"])

        assert new_store is not None
        assert (reindex["status"], reindex["parts"]) == ("failed", 3)
        assert "note-3: ValueError: the model could not encode this text" in reindex["error"]
        collection = api.get("/collections/kb").json()
        assert (collection["model"], collection["reindex"]) == ("all-MiniLM-L6-v2", None)
        assert services.catalog.get_collection("kb").store_name == before.store_name
        assert not services.store.collection_exists(new_store.store_name)
        assert services.catalog.reindexed_documents(reindex["id"]) == {}
        assert services.catalog.unfinished_job_ids() == []
        hits = search(api, "When does depot 4 open?", top_k=1)["hits"]
        assert [hit["document_id"] for hit in hits] == ["note-4"]
