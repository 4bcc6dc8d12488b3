"""Document-level search: each document's mean chunk vector, written by the real pipeline and
searched through the API (`"unit": "document"`), and the re-index that adds such vectors to a
collection built before them."""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np
import qdrant_edge as qe
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.pipeline import UPSERT_BATCH_CHUNKS, IndexTarget, IngestContext, plan_document
from retrieval.config import Settings
from retrieval.models.registry import ModelRegistry
from retrieval.services import Services
from retrieval.store.base import DENSE_VECTOR, LEXICAL_VECTOR
from tests.conftest import wait_for_job
from tests.test_api import create_collection, ingest, search

MANUAL = " ".join(
    f"Step {n}: tighten bolt {n} of the bicycle frame to {n % 7 + 3} newton metres."
    for n in range(200)
)
"""Long enough to make more chunks than one embedding batch at 32 tokens per chunk."""

DOCUMENTS: list[dict[str, Any]] = [
    {"id": "manual", "text": MANUAL},
    {"id": "refund", "text": "Refunds are paid back to the original card within five days."},
    {"id": "shipping", "text": "We ship orders within 24 hours. Delivery takes three days."},
]


def services_of(api: TestClient) -> Services:
    services: Services = api.app.state.services  # type: ignore[attr-defined]
    return services


def chunk_texts(api: TestClient, document_id: str) -> list[str]:
    """Every chunk of a stored document as the write path embeds it (its own planning)."""
    services = services_of(api)
    target = IndexTarget.of(services.catalog.get_collection("kb"), IngestContext.of(services))
    [document] = services.catalog.get_documents("kb", [document_id])
    plan = plan_document(document, target)
    return [plan.indexed_text(chunk, target.term_map) for chunk in plan.chunks]


def expected_document_score(api: TestClient, query: str, document_id: str) -> float:
    """The cosine of the query and the mean of the document's chunk vectors, computed here."""
    model = services_of(api).models.get("all-MiniLM-L6-v2")
    chunks = model.encode_passages(chunk_texts(api, document_id))
    mean = chunks.mean(axis=0)
    query_vector = model.encode_queries([query])[0]
    return float(query_vector @ mean / (np.linalg.norm(query_vector) * np.linalg.norm(mean)))


def test_document_hits_are_scored_by_the_mean_of_their_chunks(api: TestClient) -> None:
    create_collection(api, threshold=0.0, top_k=10, mode="dense", chunking={"max_tokens": 32})
    job = ingest(api, DOCUMENTS)
    manual_chunks = len(chunk_texts(api, "manual"))
    assert manual_chunks > UPSERT_BATCH_CHUNKS  # its chunks span several embedding batches

    result = search(api, "How tight should the frame bolts be", unit="document", threshold=-1.0)

    assert result["unit"] == "document"
    assert result["mode"] == "dense"
    assert next(hit["document_id"] for hit in result["hits"]) == "manual"
    assert sorted(hit["document_id"] for hit in result["hits"]) == sorted(
        document["id"] for document in DOCUMENTS
    )
    assert all(hit["chunk_index"] == 0 for hit in result["hits"])
    manual_hit = result["hits"][0]
    expected = expected_document_score(api, result["query"], "manual")
    assert abs(manual_hit["score"] - expected) < 1e-4
    passages = search(api, "How tight should the frame bolts be", threshold=-1.0, top_k=3)
    assert passages["unit"] == "passage"
    assert manual_hit["score"] < passages["hits"][0]["score"]  # a mean is less peaked
    # The document vector rides on an existing point: the counts stay one point per chunk.
    store = services_of(api).store
    collection = services_of(api).catalog.get_collection("kb")
    assert store.count(collection.store_name) == job["chunks_done"]


def test_a_changed_document_gets_the_mean_of_its_new_chunks(api: TestClient) -> None:
    create_collection(api, threshold=0.0, top_k=10, mode="dense", chunking={"max_tokens": 32})
    ingest(api, DOCUMENTS)
    shorter = {"id": "manual", "text": "Frame bolts: tighten to five newton metres. Oil chains."}
    ingest(api, [shorter])

    result = search(api, "bolt torque", unit="document", threshold=-1.0)
    manual = next(hit for hit in result["hits"] if hit["document_id"] == "manual")

    assert len(chunk_texts(api, "manual")) == 1
    assert abs(manual["score"] - expected_document_score(api, result["query"], "manual")) < 1e-4
    assert manual["text"] == chunk_texts(api, "manual")[0]


def test_document_unit_threshold_filter_and_refusals(api: TestClient) -> None:
    create_collection(api, threshold=0.0, top_k=10, mode="dense")
    ingest(api, [{**document, "metadata": {"team": document["id"]}} for document in DOCUMENTS])

    strict = search(api, "refund to my card", unit="document", threshold=0.5)
    filtered = search(api, "refund to my card", unit="document", filter={"team": "shipping"})
    hybrid = api.post(
        "/collections/kb/search", json={"query": "refund", "unit": "document", "mode": "hybrid"}
    )
    unknown = api.post("/collections/kb/search", json={"query": "refund", "unit": "book"})

    assert [hit["document_id"] for hit in strict["hits"]] == ["refund"]
    assert all(hit["score"] >= 0.5 for hit in strict["hits"])
    assert [hit["document_id"] for hit in filtered["hits"]] == ["shipping"]
    assert hybrid.status_code == 422
    assert "unit 'document' is a dense search" in hybrid.json()["detail"]
    assert unknown.status_code == 422
    assert "unit" in unknown.json()["detail"]


def test_a_hybrid_collection_searched_by_document_says_which_leg_ran(api: TestClient) -> None:
    create_collection(api, threshold=0.0, top_k=5, mode="hybrid")
    ingest(api, DOCUMENTS)

    result = search(api, "refund to my card", unit="document")

    assert result["mode"] == "dense"
    assert "mean vectors alone (dense)" in result["warning"]
    assert result["hits"][0]["document_id"] == "refund"


def test_a_collection_built_before_document_vectors_is_upgraded_by_a_reindex(
    settings: Settings, models: ModelRegistry
) -> None:
    with TestClient(create_app(settings, models=models)) as api:
        create_collection(api, threshold=0.0, top_k=5, mode="dense")
        ingest(api, DOCUMENTS)
        store_name = services_of(api).catalog.get_collection("kb").store_name
    # The shard as an earlier release made it: dense and lexical vectors only.
    shard = settings.shards_dir / store_name
    shutil.rmtree(shard)
    old_layout = qe.EdgeConfig(
        vectors={DENSE_VECTOR: qe.EdgeVectorParams(size=384, distance=qe.Distance.Cosine)},
        sparse_vectors={LEXICAL_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )
    qe.EdgeShard.create(str(shard), old_layout).close()

    with TestClient(create_app(settings, models=models)) as api:
        refused = api.post("/collections/kb/search", json={"query": "refund", "unit": "document"})
        assert refused.status_code == 409
        assert "re-index it (POST /collections/kb/reindex" in refused.json()["detail"]

        reindex = api.post("/collections/kb/reindex")
        assert reindex.status_code == 202, reindex.text
        assert wait_for_job(api, reindex.json()["id"])["status"] == "succeeded"

        upgraded = search(api, "refund to my card", unit="document")
        assert upgraded["hits"][0]["document_id"] == "refund"
        assert len(search(api, "refund to my card")["hits"]) >= 1
