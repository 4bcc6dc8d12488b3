"""The whole path through the HTTP API in the embedded mode: collection, ingest, search."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import wait_for_job

DOCUMENTS: list[dict[str, Any]] = [
    {
        "id": "password",
        "title": "Reset a password",
        "text": "To reset your password, open Settings, choose Security and click "
        "Reset password. A link is sent to your e-mail address.",
        "metadata": {"lang": "en", "team": "accounts"},
    },
    {
        "id": "refund",
        "title": "Refunds",
        "text": "Refunds are paid back to the original card within five business days. "
        "Gift cards cannot be refunded.",
        "metadata": {"lang": "en", "team": "billing"},
    },
    {
        "id": "shipping",
        "title": "Shipping",
        "text": "We ship orders within 24 hours. Delivery takes three to five days.",
        "metadata": {"lang": "en", "team": "logistics"},
    },
    {
        "id": "margin",
        "title": "交易规则",
        "text": "期货交易保证金是买卖期货合约时存入的资金，比例由交易所规定。",
        "metadata": {"lang": "zh", "team": "futures"},
    },
    {
        "id": "lost-card",
        "title": "挂失",
        "text": "信用卡丢失后请立即致电客服冻结卡片。补办新卡需要三到五个工作日。",
        "metadata": {"lang": "zh", "team": "cards"},
    },
]


def create_collection(api: TestClient, name: str = "kb", **fields: Any) -> dict[str, Any]:
    response = api.post("/collections", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def ingest(api: TestClient, documents: list[dict[str, Any]], name: str = "kb") -> dict[str, Any]:
    response = api.post(f"/collections/{name}/documents", json={"documents": documents})
    assert response.status_code == 202, response.text
    job = wait_for_job(api, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def search(api: TestClient, query: str, name: str = "kb", **fields: Any) -> dict[str, Any]:
    response = api.post(f"/collections/{name}/search", json={"query": query, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def kb(api: TestClient) -> TestClient:
    # Dense on purpose: these tests pin the cosine semantics; auto/hybrid: test_hybrid_api.py.
    create_collection(api, threshold=0.3, top_k=3, mode="dense")
    ingest(api, DOCUMENTS)
    return api


def test_collection_lifecycle(api: TestClient) -> None:
    created = create_collection(
        api, threshold=0.65, top_k=5, term_map={"CTP保证金": "期货交易保证金"}
    )
    assert created["threshold"] == 0.65
    assert created["chunking"] == {"max_tokens": 200, "overlap_sentences": 0}
    assert created["model"] == "all-MiniLM-L6-v2"
    assert created["dimension"] == 384

    listed = api.get("/collections").json()
    assert listed["count"] == 1
    assert [c["name"] for c in listed["collections"]] == ["kb"]

    patched = api.patch("/collections/kb", json={"threshold": 0.85, "term_map": {}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["threshold"] == 0.85
    assert patched.json()["top_k"] == 5
    # A term map shapes the vectors: the change is a re-index job, even of no documents.
    assert patched.json()["term_map"] == {"CTP保证金": "期货交易保证金"}
    assert patched.json()["reindex"]["term_map"] == {}
    assert wait_for_job(api, patched.json()["reindex"]["job_id"])["status"] == "succeeded"
    assert api.get("/collections/kb").json()["term_map"] == {}
    assert api.get("/collections/kb").json()["reindex"] is None

    assert api.delete("/collections/kb").status_code == 204
    assert api.get("/collections/kb").status_code == 404
    assert api.get("/collections").json()["count"] == 0


def test_ingest_job_and_document_status(api: TestClient) -> None:
    create_collection(api)
    response = api.post("/collections/kb/documents", json={"documents": DOCUMENTS[:2]})
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] in ("queued", "running", "succeeded")
    assert accepted["documents_total"] == 2
    assert response.headers["Location"] == f"/jobs/{accepted['id']}"

    job = wait_for_job(api, accepted["id"])
    assert job["status"] == "succeeded"
    assert job["documents_done"] == 2
    assert job["chunks_done"] == job["chunks_total"] >= 2
    assert job["error"] is None

    document = api.get("/collections/kb/documents/password").json()
    assert document["status"] == "indexed"
    assert document["chunk_count"] >= 1
    assert len(document["content_hash"]) == 64
    assert document["metadata"] == {"lang": "en", "team": "accounts"}


def test_search_returns_the_expected_document_first(kb: TestClient) -> None:
    english = search(kb, "How do I reset my password?")
    assert english["hits"][0]["document_id"] == "password"
    assert english["query"] == "How do I reset my password"
    hit = english["hits"][0]
    document_text = DOCUMENTS[0]["text"]
    assert document_text[hit["start"] : hit["end"]] == hit["text"]
    assert hit["title"] == "Reset a password"
    assert hit["metadata"] == {"lang": "en", "team": "accounts"}
    scores = [h["score"] for h in english["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert all(score >= 0.3 for score in scores)

    chinese = search(kb, "信用卡丢了怎么办？")
    assert chinese["hits"][0]["document_id"] == "lost-card"


def test_query_below_the_threshold_returns_no_hits(kb: TestClient) -> None:
    unrelated = search(kb, "What is the capital of France?")
    assert unrelated["hits"] == []
    assert unrelated["threshold"] == 0.3

    override = search(kb, "How do I reset my password", threshold=0.99)
    assert override["hits"] == []
    assert override["threshold"] == 0.99


def test_jargon_query_finds_its_document_only_through_the_term_map(kb: TestClient) -> None:
    before = search(kb, "CTP保证金", threshold=0.7)
    assert "margin" not in [hit["document_id"] for hit in before["hits"]]

    mapped = kb.patch("/collections/kb", json={"term_map": {"ctp保证金": "期货交易保证金"}})
    assert mapped.status_code == 200, mapped.text
    reindex = wait_for_job(kb, mapped.json()["reindex"]["job_id"])
    assert reindex["status"] == "succeeded", reindex
    after = search(kb, "CTP保证金", threshold=0.7)
    assert after["query"] == "期货交易保证金"
    assert after["hits"][0]["document_id"] == "margin"


def test_metadata_filter(kb: TestClient) -> None:
    result = search(kb, "money back", filter={"team": "logistics"}, threshold=-1)
    assert {hit["document_id"] for hit in result["hits"]} == {"shipping"}


def test_reingesting_changed_text_leaves_no_stale_chunk(kb: TestClient) -> None:
    long_text = " ".join(
        f"Paragraph {n} explains how parcels travel between depot {n} and the customer."
        for n in range(40)
    )
    ingest(kb, [{"id": "shipping", "text": long_text}])
    long_count = kb.get("/collections/kb/documents/shipping").json()["chunk_count"]
    assert long_count > 1

    ingest(kb, [{"id": "shipping", "text": "Orders leave the warehouse by drone."}])
    document = kb.get("/collections/kb/documents/shipping").json()
    assert document["chunk_count"] == 1
    result = search(kb, "parcels travel between depot and customer", threshold=-1, top_k=50)
    shipping_hits = [hit for hit in result["hits"] if hit["document_id"] == "shipping"]
    assert [hit["text"] for hit in shipping_hits] == ["Orders leave the warehouse by drone."]


def test_reingesting_identical_text_is_a_noop_that_succeeds(kb: TestClient) -> None:
    before = kb.get("/collections/kb/documents/refund").json()
    job = ingest(kb, [DOCUMENTS[1]])
    assert job["documents_done"] == 1
    assert job["chunks_total"] == 0
    after = kb.get("/collections/kb/documents/refund").json()
    assert after["content_hash"] == before["content_hash"]
    assert after["status"] == "indexed"
    assert after["chunk_count"] == before["chunk_count"]


def test_deleting_a_document_removes_its_hits(kb: TestClient) -> None:
    assert search(kb, "How do I reset my password")["hits"][0]["document_id"] == "password"
    assert kb.delete("/collections/kb/documents/password").status_code == 204
    assert kb.get("/collections/kb/documents/password").status_code == 404
    result = search(kb, "How do I reset my password", threshold=-1, top_k=50)
    assert "password" not in {hit["document_id"] for hit in result["hits"]}
    assert kb.delete("/collections/kb/documents/password").status_code == 404


def test_health(api: TestClient) -> None:
    health = api.get("/healthz").json()
    assert health == {
        "status": "ok",
        "vectors": "edge",
        "ingestion": "thread",
        "default_model": "all-MiniLM-L6-v2",
    }


def test_document_ids_may_contain_slashes(api: TestClient) -> None:
    create_collection(api)
    ingest(api, [{"id": "guides/intro.md", "text": "An introduction to the product."}])
    assert api.get("/collections/kb/documents/guides/intro.md").json()["id"] == "guides/intro.md"
    assert api.delete("/collections/kb/documents/guides/intro.md").status_code == 204
    assert api.get("/collections/kb/documents/guides/intro.md").status_code == 404


def test_documents_are_listed_by_page(kb: TestClient) -> None:
    page = kb.get("/collections/kb/documents", params={"offset": 1, "limit": 2}).json()
    assert page["count"] == len(DOCUMENTS)
    assert [document["id"] for document in page["documents"]] == sorted(
        document["id"] for document in DOCUMENTS
    )[1:3]
    assert kb.get("/collections/kb/documents", params={"limit": 0}).status_code == 422
    assert kb.get("/collections/nope/documents").status_code == 404


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_every_asset_from_the_service_itself(api: TestClient, page: str) -> None:
    """No CDN: a machine without internet gets working API docs."""
    html = api.get(page)
    assert html.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
    scripts = [asset for asset in assets if asset.endswith(".js")]
    assert scripts, html.text
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        response = api.get(asset)
        assert response.status_code == 200, asset
    assert all(len(api.get(script).content) > 100_000 for script in scripts)
    assert "http://" not in html.text.replace("http://www.w3.org", "")
    assert "https://" not in html.text
    if page == "/docs":
        assert '"validatorUrl": null' in html.text  # else the page asks swagger.io for a badge


def test_similarity_scores_as_search_does(api: TestClient) -> None:
    """The text-embeddings-inference shape; the score equals the one search gives the same
    text as a stored chunk in dense mode."""
    passage = "To reset your password, open Settings and choose Reset password."
    create_collection(api, threshold=-1, mode="dense")
    ingest(api, [{"id": "pwd", "text": passage}])
    query = "How do I reset my password?"
    [hit] = search(api, query)["hits"]
    body = {"inputs": {"source_sentence": query, "sentences": [passage, "The canteen opens at 8."]}}
    response = api.post("/similarity", json=body)
    assert response.status_code == 200, response.text
    related, unrelated = response.json()
    assert related == pytest.approx(hit["score"], abs=1e-5)
    assert related > unrelated + 0.3

    chinese = {
        "inputs": {
            "source_sentence": "如何重置密码？",
            "sentences": ["怎么修改登录密码", "今天天气很好"],
        },
        "model": "intfloat/multilingual-e5-small",
    }
    same, other = api.post("/similarity", json=chinese).json()
    assert same > other

    unknown = api.post("/similarity", json={**body, "model": "no-such-model"})
    assert unknown.status_code == 422
    assert "registered models" in unknown.json()["detail"]
    blank = {"inputs": {"source_sentence": "？？ ", "sentences": ["x"]}}
    assert "source_sentence" in api.post("/similarity", json=blank).json()["detail"]
