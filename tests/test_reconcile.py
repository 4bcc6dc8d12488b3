"""Reconcile (catalog -> vectors) and delete by id prefix: store, library, HTTP and CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli_reconcile import reconcile
from ingest.pipeline import IngestContext
from ingest.reconcile import find_discrepancies, reconcile_collection
from ingest.thread_queue import ThreadJobQueue
from retrieval.catalog import Catalog, DocumentInput, DocumentStatus, IndexState, JobStatus
from retrieval.errors import NotFound, Unavailable
from retrieval.lexical import LexicalEncoder
from retrieval.models.base import EmbeddingModel
from retrieval.services import Services
from retrieval.store import base
from retrieval.store.base import ChunkPayload, ChunkPoint, VectorStore, point_id
from tests.conftest import wait_for_job
from tests.test_auth import bearer, make_key
from tests.test_catalog import PG_DSN, PG_URL, doc, mark_indexed, spec
from tests.test_store import ENGINES, chunk, open_engine, unit

# -- the store: what it holds per document, deleting many documents -----------------------


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    opened = open_engine(request.param, tmp_path)
    yield opened
    opened.close()


def test_chunk_indexes_lists_every_point_across_pages(
    store: VectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "SCROLL_PAGE_POINTS", 3)  # 10 points: 4 pages
    store.create_collection("c", dimension=8)
    assert store.chunk_indexes("c") == {}
    store.upsert("c", [chunk("c", "a", i, unit(1, i)) for i in range(6)])
    store.upsert("c", [chunk("c", "b", i, unit(0, 1, i)) for i in (0, 2, 7)])
    store.upsert("c", [chunk("c", "c/1", 0, unit(0, 0, 1))])

    assert store.chunk_indexes("c") == {"a": set(range(6)), "b": {0, 2, 7}, "c/1": {0}}
    with pytest.raises(NotFound, match="Collection 'nope' does not exist"):
        store.chunk_indexes("nope")


def test_delete_documents_removes_every_point_of_each(
    store: VectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "DELETE_BATCH_DOCUMENTS", 2)  # 3 ids: two requests
    store.create_collection("c", dimension=8)
    for document_id in ("a", "b", "c", "d"):
        store.upsert("c", [chunk("c", document_id, i, unit(1, i)) for i in range(3)])

    store.delete_documents("c", ["a", "c", "unknown"])
    store.delete_documents("c", [])

    assert store.chunk_indexes("c") == {"b": {0, 1, 2}, "d": {0, 1, 2}}
    assert store.count("c") == 6
    with pytest.raises(NotFound, match="Collection 'nope' does not exist"):
        store.delete_documents("nope", ["a"])


def test_find_discrepancies_compares_indexed_documents_only() -> None:
    indexed = DocumentStatus.INDEXED
    states = {
        "whole": IndexState(indexed, "h1", 3),
        "gappy": IndexState(indexed, "h2", 4),
        "gone": IndexState(indexed, "h3", 2),
        "grown": IndexState(indexed, "h4", 2),
        "busy": IndexState(DocumentStatus.PENDING, None, 0),
        "broken": IndexState(DocumentStatus.FAILED, "h5", 1),
    }
    held = {
        "whole": {0, 1, 2},
        "gappy": {0, 3, 5},
        "grown": {0, 1, 2, 3},
        "busy": {0, 1},
        "ghost": {0, 1, 2},
    }

    found = find_discrepancies(held, states)

    assert found.incomplete == {"gappy": 2, "gone": 2}
    assert found.stale == {"gappy": 1, "grown": 2}
    assert found.orphans == {"ghost": 3}


# -- the catalog: document states, re-queueing, exact prefixes (SQLite and PostgreSQL) ----


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """A migrated catalog on a SQLite file, or in a PostgreSQL schema of its own."""
    schema = f"test_reconcile_{uuid.uuid4().hex[:16]}"
    url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    if request.param == "postgresql":
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    opened = Catalog.from_url(url)
    try:
        opened.upgrade_schema()
        opened.create_collection(spec())
        yield opened
    finally:
        opened.close()
        if request.param == "postgresql":
            with psycopg.connect(PG_DSN, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def index_all(catalog: Catalog, *document_ids: str) -> None:
    catalog.stage_documents(
        "kb", [doc(document_id, f"Text of {document_id}.") for document_id in document_ids]
    )
    for document in catalog.get_documents("kb", document_ids):
        mark_indexed(catalog, "kb", document.id, document.content_hash, chunk_count=3)


def test_requeue_clears_the_indexed_hash_of_unchanged_documents_only(catalog: Catalog) -> None:
    index_all(catalog, "a", "b", "c")
    states = catalog.index_states("kb")
    assert states["a"] == IndexState(DocumentStatus.INDEXED, states["a"].indexed_hash, 3)
    catalog.stage_documents("kb", [doc("b", "New text of b.")])  # changed since it was read

    job = catalog.requeue_documents("kb", {"a": states["a"], "b": states["b"]})

    assert job is not None
    assert (job.status, job.documents_total) == (JobStatus.QUEUED, 1)
    assert catalog.job_document_ids(job.id) == ["a"]
    after = catalog.index_states("kb")
    assert after["a"] == IndexState(DocumentStatus.PENDING, None, 3)
    assert after["c"] == states["c"]
    assert catalog.requeue_documents("kb", {"a": states["a"]}) is None  # a changed: no job

    catalog.undo_requeue("kb", {"a": states["a"]})
    assert catalog.index_states("kb")["a"] == states["a"]


def test_while_unchanged_acts_on_documents_still_as_read(catalog: Catalog) -> None:
    index_all(catalog, "a", "b")
    states = catalog.index_states("kb")
    catalog.stage_documents("kb", [doc("b", "Changed.")])
    acted: list[list[str]] = []
    expected: dict[str, IndexState | None] = {
        "a": states["a"],
        "b": states["b"],
        "ghost": None,
        "a-not-absent": None,
    }
    catalog.stage_documents("kb", [doc("a-not-absent")])

    unchanged = catalog.while_unchanged("kb", expected, acted.append)

    assert unchanged == ["a", "ghost"]
    assert acted == [["a", "ghost"]]
    assert catalog.while_unchanged("kb", {"b": states["b"]}, acted.append) == []
    assert len(acted) == 1  # nothing unchanged: the action is not called


def test_prefix_ids_are_compared_exactly_and_deleted_in_batches(catalog: Catalog) -> None:
    ids = ["a_b", "a_bc", "axb", "A_b", "a%c", "ab", "b/a_b"]
    catalog.stage_documents("kb", [doc(document_id) for document_id in ids])

    assert catalog.document_ids_with_prefix("kb", "a_") == ["a_b", "a_bc"]
    assert catalog.document_ids_with_prefix("kb", "a%") == ["a%c"]
    assert catalog.document_ids_with_prefix("kb", "A") == ["A_b"]
    assert catalog.delete_documents("kb", ["a_b", "a_bc", "nope"]) == 2
    assert sorted(catalog.index_states("kb")) == sorted(["axb", "A_b", "a%c", "ab", "b/a_b"])
    with pytest.raises(NotFound):
        catalog.document_ids_with_prefix("nope", "a")


# -- the service: reconcile repairs what was done behind its back --------------------------

SENTENCES = {
    "alpha": [
        "Refunds are paid back to the original card within five working days.",
        "A refund for a cancelled order starts once the parcel is back in our warehouse.",
        "Store credit can be chosen instead of a refund and is granted at once.",
        "Refunds for gift cards are not possible under any circumstances.",
    ],
    "beta": [
        "Volcanic eruptions eject ash clouds high into the stratosphere.",
        "Lava flows from basaltic volcanoes move slowly down the slopes.",
        "Geologists monitor seismic tremors to forecast an eruption.",
        "Pyroclastic flows are the deadliest hazard near an active volcano.",
    ],
    "gamma": [
        "The password can be reset from the sign-in page with the emailed link.",
        "A reset link expires after thirty minutes for security reasons.",
        "Two-factor authentication codes are sent by text message.",
    ],
    "delta": [
        "Our offices are closed on public holidays and reopen the next working day.",
        "Support answers chats between nine in the morning and six in the evening.",
        "Phone support is available on weekdays only.",
    ],
}


def create_and_ingest(client: TestClient | httpx.Client, documents: dict[str, str]) -> None:
    created = client.post(
        "/collections", json={"name": "kb", "threshold": 0.1, "chunking": {"max_tokens": 20}}
    )
    assert created.status_code == 201, created.text
    job = client.post(
        "/collections/kb/documents",
        json={"documents": [{"id": key, "text": text} for key, text in documents.items()]},
    )
    assert job.status_code == 202, job.text
    assert wait_for_job(client, job.json()["id"])["status"] == "succeeded"


def chunk_counts(api: TestClient) -> dict[str, int]:
    listed = api.get("/collections/kb/documents", params={"limit": 500}).json()["documents"]
    assert all(document["status"] == "indexed" for document in listed), listed
    return {document["id"]: document["chunk_count"] for document in listed}


def services_of(api: TestClient) -> Services:
    services: Services = api.app.state.services  # type: ignore[attr-defined]
    return services


def store_name(api: TestClient) -> str:
    return services_of(api).catalog.get_collection("kb").store_name


def held_points(api: TestClient) -> dict[str, set[int]]:
    return services_of(api).store.chunk_indexes(store_name(api))


def points_like_the_pipeline(
    model: EmbeddingModel, document_id: str, texts: dict[int, str]
) -> list[ChunkPoint]:
    """Chunk points as ingest/pipeline.py writes them: id, vectors and payload."""
    vectors = model.encode_passages(list(texts.values()))
    sparse = LexicalEncoder().encode_documents(list(texts.values()))
    return [
        ChunkPoint(
            id=point_id("kb", document_id, index),
            vector=vector.tolist(),
            sparse=lexical,
            payload=ChunkPayload(
                document_id=document_id, chunk_index=index, text=text, start=0, end=len(text)
            ),
        )
        for (index, text), vector, lexical in zip(texts.items(), vectors, sparse, strict=True)
    ]


def reconcile_over_http(api: TestClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = api.post("/collections/kb/reconcile", json=body)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_reconcile_restores_exact_counts_after_points_vanish(
    api: TestClient, minilm: EmbeddingModel
) -> None:
    create_and_ingest(api, {key: " ".join(lines) for key, lines in SENTENCES.items()})
    counts = chunk_counts(api)
    assert counts["alpha"] >= 3, counts  # several chunks each
    assert counts["beta"] >= 2, counts
    store = services_of(api).store
    name = store_name(api)

    # Behind the service's back: alpha loses its tail, beta every point; a document nobody
    # stored gets points; gamma gets a chunk beyond its count (an older, longer version).
    store.delete_document(name, "alpha", from_chunk=1)
    store.delete_document(name, "beta")
    store.upsert(name, points_like_the_pipeline(minilm, "ghost", {0: "Boo.", 1: "Who is there?"}))
    stale = counts["gamma"]
    store.upsert(name, points_like_the_pipeline(minilm, "gamma", {stale: "Old tail of gamma."}))
    damaged = held_points(api)

    expected = {
        "documents_checked": 4,
        "documents_skipped": 0,
        "points_checked": sum(len(indexes) for indexes in damaged.values()),
        "vectors_recreated": False,
        "documents_requeued": 2,
        "requeued_ids": ["alpha", "beta"],
        "missing_points": counts["alpha"] - 1 + counts["beta"],
        "orphan_documents": 1,
        "orphan_ids": ["ghost"],
        "orphan_points": 2,
        "stale_chunks": 1,
    }
    dry = reconcile_over_http(api, {"dry_run": True})
    assert dry == {**expected, "collection": "kb", "dry_run": True, "job_id": None}
    assert held_points(api) == damaged  # a dry run changes nothing
    assert chunk_counts(api) == counts

    report = reconcile_over_http(api)  # no body: a real run
    assert report == {**expected, "collection": "kb", "dry_run": False, "job_id": report["job_id"]}
    assert report["job_id"] is not None
    job = wait_for_job(api, report["job_id"])
    assert job["status"] == "succeeded", job
    assert (job["documents_total"], job["documents_done"]) == (2, 2)

    assert chunk_counts(api) == counts
    held = held_points(api)
    assert held == {document_id: set(range(count)) for document_id, count in counts.items()}
    for document_id, count in counts.items():
        assert store.count(name, document_id=document_id) == count
    assert store.count(name) == sum(counts.values())
    assert store.count(name, document_id="ghost") == 0

    hits = api.post(
        "/collections/kb/search", json={"query": "when does a volcano erupt?", "top_k": 3}
    ).json()["hits"]
    assert [hit["document_id"] for hit in hits][:1] == ["beta"]

    again = reconcile_over_http(api)
    assert again["job_id"] is None
    assert again["documents_requeued"] + again["orphan_documents"] + again["stale_chunks"] == 0
    assert again["points_checked"] == sum(counts.values())


def test_reconcile_recreates_vectors_that_are_gone(api: TestClient) -> None:
    create_and_ingest(api, {key: " ".join(lines) for key, lines in SENTENCES.items()})
    counts = chunk_counts(api)
    services_of(api).store.drop_collection(store_name(api))

    report = reconcile_over_http(api)

    assert report["vectors_recreated"] is True
    assert report["documents_requeued"] == 4
    assert report["missing_points"] == sum(counts.values())
    assert wait_for_job(api, report["job_id"])["status"] == "succeeded"
    assert held_points(api) == {key: set(range(count)) for key, count in counts.items()}
    hits = api.post("/collections/kb/search", json={"query": "reset my password"}).json()["hits"]
    assert hits[0]["document_id"] == "gamma"


def test_reconcile_leaves_pending_documents_to_their_jobs(api: TestClient) -> None:
    create_and_ingest(api, {"alpha": " ".join(SENTENCES["alpha"])})
    catalog = services_of(api).catalog
    # Staged but never submitted: pending, no points, a job that has not run.
    catalog.stage_documents("kb", [DocumentInput(id="later", text="Not embedded yet.")])

    report = reconcile_over_http(api)

    assert (report["documents_checked"], report["documents_skipped"]) == (1, 1)
    assert report["documents_requeued"] == 0
    assert report["job_id"] is None
    assert catalog.get_document("kb", "later").status is DocumentStatus.PENDING


def test_reconcile_gives_the_documents_back_when_the_queue_refuses(api: TestClient) -> None:
    create_and_ingest(api, {"alpha": " ".join(SENTENCES["alpha"])})
    services = services_of(api)
    before = services.catalog.get_document("kb", "alpha")
    services.store.delete_document(store_name(api), "alpha")
    closed = ThreadJobQueue(context=IngestContext.of(services))
    closed.close()

    with pytest.raises(Unavailable, match="shutting down"):
        reconcile_collection("kb", catalog=services.catalog, store=services.store, job_queue=closed)

    after = services.catalog.get_document("kb", "alpha")
    assert (after.status, after.indexed_hash, after.chunk_count) == (
        DocumentStatus.INDEXED,
        before.indexed_hash,
        before.chunk_count,
    )
    (job,) = [job for job in services.catalog.list_jobs("kb", limit=5) if job.status == "failed"]
    assert "shutting down" in (job.error or "")
    retried = reconcile_over_http(api)  # nothing was left half-done: it can simply run again
    assert retried["requeued_ids"] == ["alpha"]
    assert wait_for_job(api, retried["job_id"])["status"] == "succeeded"
    assert services.store.count(store_name(api), document_id="alpha") == before.chunk_count


def test_reconcile_refusals(api: TestClient) -> None:
    create_and_ingest(api, {"alpha": " ".join(SENTENCES["alpha"])})
    missing = api.post("/collections/nope/reconcile")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "collection 'nope' does not exist"
    for body in ({"dry_run": "perhaps"}, {"dry_run": True, "force": True}):
        assert api.post("/collections/kb/reconcile", json=body).status_code == 422

    catalog = services_of(api).catalog
    collection = catalog.get_collection("kb")
    _, job = catalog.start_reindex("kb", collection.index_settings)  # not submitted: it stays
    refused = api.post("/collections/kb/reconcile", json={"dry_run": True})
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"collection 'kb' is being re-indexed (job {job.id}); reconcile it once that job "
        "has finished"
    )
    catalog.abandon_reindex("kb", job.id)
    assert api.post("/collections/kb/reconcile").status_code == 200


def test_reconcile_needs_the_write_scope_on_the_collection(api: TestClient) -> None:
    create_and_ingest(api, {"alpha": " ".join(SENTENCES["alpha"])})
    admin = make_key(api, None, name="root", scopes=["admin"])
    reader = make_key(api, admin, name="bot", scopes=["read"], collections=["kb"])
    elsewhere = make_key(api, admin, name="other", scopes=["write"], collections=["other"])
    writer = make_key(api, admin, name="loader", scopes=["write"], collections=["kb"])

    assert api.post("/collections/kb/reconcile").status_code == 401
    assert api.post("/collections/kb/reconcile", headers=bearer(reader)).status_code == 403
    hidden = api.post("/collections/kb/reconcile", headers=bearer(elsewhere))
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == "collection 'kb' does not exist"
    assert api.post("/collections/kb/reconcile", headers=bearer(writer)).status_code == 200


# -- delete by id prefix -------------------------------------------------------------------

PREFIXED = {
    "manuals/v1/install": "Install the package with the installer.",
    "manuals/v1/upgrade": "Upgrade by running the installer again. Keep your settings.",
    "manuals/v10/install": "Version ten installs from the app store.",
    "Manuals/v1/legacy": "The legacy manual of the first version.",
    "manuals/v2/install": "Version two installs from a container image.",
    "a_b": "An id with an underscore.",
    "axb": "An id that LIKE's '_' would match.",
}


def test_delete_by_prefix_removes_those_documents_and_every_point(api: TestClient) -> None:
    create_and_ingest(api, PREFIXED)
    counts = chunk_counts(api)
    store = services_of(api).store
    name = store_name(api)

    deleted = api.delete("/collections/kb/documents", params={"prefix": "manuals/v1/"})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"prefix": "manuals/v1/", "deleted": 2}
    underscore = api.delete("/collections/kb/documents", params={"prefix": "a_"})
    assert underscore.json() == {"prefix": "a_", "deleted": 1}
    nothing = api.delete("/collections/kb/documents", params={"prefix": "zzz"})
    assert nothing.json() == {"prefix": "zzz", "deleted": 0}

    gone = {"manuals/v1/install", "manuals/v1/upgrade", "a_b"}
    kept = {key: count for key, count in counts.items() if key not in gone}
    assert chunk_counts(api) == kept
    for document_id in gone:
        assert api.get(f"/collections/kb/documents/{document_id}").status_code == 404
        assert store.count(name, document_id=document_id) == 0
    assert held_points(api) == {key: set(range(count)) for key, count in kept.items()}
    assert store.count(name) == sum(kept.values())


def test_delete_by_prefix_refuses_an_empty_or_missing_prefix(api: TestClient) -> None:
    create_and_ingest(api, PREFIXED)
    empty = api.delete("/collections/kb/documents", params={"prefix": ""})
    assert empty.status_code == 422
    assert empty.json()["detail"].startswith("prefix: an empty prefix would delete every document")
    absent = api.delete("/collections/kb/documents")
    assert absent.status_code == 422
    assert absent.json()["detail"] == "query.prefix: Field required"
    assert api.delete("/collections/nope/documents", params={"prefix": "a"}).status_code == 404
    assert len(chunk_counts(api)) == len(PREFIXED)


def test_delete_by_prefix_reaches_the_vectors_being_reindexed(api: TestClient) -> None:
    create_and_ingest(api, PREFIXED)
    services = services_of(api)
    collection = services.catalog.get_collection("kb")
    reindex, _ = services.catalog.start_reindex("kb", collection.index_settings)
    services.store.create_collection(reindex.store_name, dimension=collection.dimension)
    services.store.upsert(
        reindex.store_name,
        [chunk("kb", key, 0, unit(1, dim=collection.dimension)) for key in PREFIXED],
    )

    deleted = api.delete("/collections/kb/documents", params={"prefix": "manuals/"})

    assert deleted.json()["deleted"] == 4
    assert set(services.store.chunk_indexes(reindex.store_name)) == {
        "Manuals/v1/legacy",
        "a_b",
        "axb",
    }
    assert set(held_points(api)) == {"Manuals/v1/legacy", "a_b", "axb"}


# -- the command -------------------------------------------------------------------------


def test_the_command_prints_the_report_and_one_line_errors(live_url: str) -> None:
    with httpx.Client(base_url=live_url, timeout=30) as client:
        create_and_ingest(client, {"alpha": " ".join(SENTENCES["alpha"])})
    app = typer.Typer()
    app.command()(reconcile)
    runner = CliRunner()

    dry = runner.invoke(app, ["kb", "--dry-run", "--url", live_url])
    assert dry.exit_code == 0, dry.output
    assert "reconcile kb (dry run)" in dry.output
    assert "documents checked" in dry.output
    assert "the vectors agree with the catalog" in dry.output

    as_json = runner.invoke(app, ["kb", "--json", "--url", live_url])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert (report["documents_checked"], report["dry_run"], report["job_id"]) == (1, False, None)

    missing = runner.invoke(app, ["nope", "--url", live_url])
    assert missing.exit_code == 2
    assert "error: collection 'nope' does not exist" in missing.output
    assert "Traceback" not in missing.output
