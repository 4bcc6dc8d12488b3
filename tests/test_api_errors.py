"""Bad input answers 4xx with a message that names the problem, and changes nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.schemas import MAX_DOCUMENT_CHARS, MAX_QUERY_CHARS, MAX_TOP_K
from tests.test_api import DOCUMENTS, create_collection, ingest, search


@pytest.fixture
def stored(api: TestClient) -> dict[str, Any]:
    """A collection with one indexed document, and a snapshot of what the API shows of it."""
    create_collection(api, threshold=0.3)
    ingest(api, DOCUMENTS[:1])
    return snapshot(api)


def snapshot(api: TestClient) -> dict[str, Any]:
    return {
        "collection": api.get("/collections/kb").json(),
        "document": api.get("/collections/kb/documents/password").json(),
        "hits": search(api, "reset my password")["hits"],
    }


def detail(response: Any) -> str:
    text: str = response.json()["detail"]
    return text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/collections/nope", None),
        ("patch", "/collections/nope", {"threshold": 0.5}),
        ("delete", "/collections/nope", None),
        ("post", "/collections/nope/search", {"query": "hello"}),
        ("post", "/collections/nope/documents", {"documents": [{"id": "a", "text": "b"}]}),
        ("get", "/collections/nope/documents/a", None),
    ],
)
def test_unknown_collection_is_404(
    api: TestClient, stored: dict[str, Any], method: str, path: str, body: Any
) -> None:
    response = api.request(method, path, json=body)
    assert response.status_code == 404
    assert detail(response) == "collection 'nope' does not exist"
    assert snapshot(api) == stored


def test_unknown_document_and_job_are_404(api: TestClient, stored: dict[str, Any]) -> None:
    response = api.get("/collections/kb/documents/missing")
    assert response.status_code == 404
    assert "missing" in detail(response)
    response = api.get("/jobs/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert detail(response) == "job '00000000-0000-0000-0000-000000000000' does not exist"


def test_duplicate_collection_is_409(api: TestClient, stored: dict[str, Any]) -> None:
    response = api.post("/collections", json={"name": "kb", "threshold": 0.9})
    assert response.status_code == 409
    assert detail(response) == "collection 'kb' already exists"
    assert snapshot(api) == stored


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/collections/kb/documents", {"documents": [{"id": "x", "text": ""}]}, "documents.0.text"),
        (
            "/collections/kb/documents",
            {"documents": [{"id": "x", "text": "\u200b \n\ufeff"}]},
            "documents.0.text",
        ),
        (
            "/collections/kb/documents",
            {"documents": [{"id": "x", "text": "a" * (MAX_DOCUMENT_CHARS + 1)}]},
            "documents.0.text",
        ),
        ("/collections/kb/documents", {"documents": []}, "documents"),
        ("/collections/kb/documents", {"documents": [{"text": "no id"}]}, "documents.0.id"),
        ("/collections/kb/search", {"query": "x", "threshold": 1.5}, "threshold"),
        ("/collections/kb/search", {"query": "x", "threshold": -1.01}, "threshold"),
        ("/collections/kb/search", {"query": "x", "top_k": 0}, "top_k"),
        ("/collections/kb/search", {"query": "x", "top_k": MAX_TOP_K + 1}, "top_k"),
        ("/collections/kb/search", {"query": ""}, "query"),
        ("/collections/kb/search", {"query": "q" * (MAX_QUERY_CHARS + 1)}, "query"),
        ("/collections/kb/search", {"query": "x", "filter": {"a": [1]}}, "filter.a"),
        ("/collections", {"name": "bad name!"}, "name"),
        ("/collections", {"name": "ok", "threshold": 2}, "threshold"),
        ("/collections", {"name": "ok", "chunking": {"max_tokens": 100000}}, "chunking.max_tokens"),
    ],
)
def test_invalid_body_is_422_naming_the_field(
    api: TestClient, stored: dict[str, Any], path: str, body: Any, field: str
) -> None:
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text
    assert detail(response).startswith(f"{field}:"), detail(response)
    assert snapshot(api) == stored


def test_patch_out_of_range_is_422(api: TestClient, stored: dict[str, Any]) -> None:
    response = api.patch("/collections/kb", json={"threshold": -3})
    assert response.status_code == 422
    assert detail(response).startswith("threshold:")
    response = api.patch("/collections/kb", json={"term_map": {" ": "x"}})
    assert response.status_code == 422
    assert "term" in detail(response)
    assert snapshot(api) == stored


def test_malformed_json_is_422(api: TestClient, stored: dict[str, Any]) -> None:
    response = api.post(
        "/collections/kb/search",
        content=b'{"query": "unterminated',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "JSON" in detail(response)
    assert snapshot(api) == stored


def test_query_of_punctuation_only_is_422(api: TestClient, stored: dict[str, Any]) -> None:
    response = api.post("/collections/kb/search", json={"query": "？！。"})
    assert response.status_code == 422
    assert detail(response).startswith("query:")


def test_duplicate_document_ids_in_one_request_are_422(
    api: TestClient, stored: dict[str, Any]
) -> None:
    documents = [{"id": "password", "text": "new text"}, {"id": "password", "text": "other"}]
    response = api.post("/collections/kb/documents", json={"documents": documents})
    assert response.status_code == 422
    assert detail(response) == "document id 'password' appears more than once in one request"
    assert snapshot(api) == stored
