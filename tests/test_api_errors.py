"""Bad input answers 4xx with a message that names the problem, and changes nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from retrieval.config import Settings
from retrieval.limits import InputLimits
from retrieval.models.registry import ModelRegistry
from tests.conftest import LIVE_TIMEOUT_S, wait_for_job
from tests.test_api import DOCUMENTS, create_collection, ingest, search

LIMITS = InputLimits()
"""The limits a service has when none is configured."""


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
            {"documents": [{"id": "x", "text": "a" * (LIMITS.max_document_chars + 1)}]},
            "documents.0.text",
        ),
        ("/collections/kb/documents", {"documents": []}, "documents"),
        ("/collections/kb/documents", {"documents": [{"text": "no id"}]}, "documents.0.id"),
        ("/collections/kb/search", {"query": "x", "threshold": 1.5}, "threshold"),
        ("/collections/kb/search", {"query": "x", "threshold": -1.01}, "threshold"),
        ("/collections/kb/search", {"query": "x", "top_k": 0}, "top_k"),
        ("/collections/kb/search", {"query": "x", "top_k": LIMITS.max_top_k + 1}, "top_k"),
        ("/collections/kb/search", {"query": ""}, "query"),
        ("/collections/kb/search", {"query": "q" * (LIMITS.max_query_chars + 1)}, "query"),
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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"query": "\\ud800"}', "body.query holds a lone surrogate"),
        ('{"query": "reset", "threshold": NaN}', "NaN is not valid JSON"),
        ('{"query": "reset", "top_k": Infinity}', "Infinity is not valid JSON"),
        ('{"query": "reset", "filter": {"\\udfff": 1}}', "body.filter (a key) holds a lone"),
    ],
)
def test_what_json_cannot_store_is_refused_while_parsing(
    api: TestClient, stored: dict[str, Any], body: str, message: str
) -> None:
    response = api.post(
        "/collections/kb/search", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert message in detail(response)
    assert snapshot(api) == stored


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"id": "..", "text": "x"}, "cannot be blank or have '.' or '..' between slashes"),
        ({"id": ".", "text": "x"}, "cannot be blank or have '.' or '..' between slashes"),
        ({"id": "a/../b", "text": "x"}, "cannot be blank or have '.' or '..' between slashes"),
        ({"id": "  ", "text": "x"}, "cannot be blank"),
        ({"id": "a\u0000b", "text": "x"}, "cannot hold control characters"),
        ({"id": "a\nb", "text": "x"}, "cannot hold control characters"),
        ({"id": "d", "text": "\ud800"}, "body.documents[0].text holds a lone surrogate"),
        ({"id": "d", "text": "x", "metadata": {"a": 1.5e400}}, "Infinity is not valid JSON"),
    ],
)
def test_documents_that_could_not_be_addressed_or_stored_are_refused(
    api: TestClient, stored: dict[str, Any], document: dict[str, Any], message: str
) -> None:
    body = json.dumps({"documents": [document]}, allow_nan=True)
    response = api.post(
        "/collections/kb/documents", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert message in detail(response)
    assert snapshot(api) == stored


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"child": value}
    return value


def test_metadata_the_engine_cannot_hold_is_refused(
    api: TestClient, stored: dict[str, Any]
) -> None:
    deep = {"documents": [{"id": "deep", "text": "x", "metadata": nested(127)}]}
    response = api.post("/collections/kb/documents", json=deep)
    assert response.status_code == 422
    assert (
        detail(response)
        == "documents.0.metadata: Value error, metadata is nested more than 8 levels deep"
    )
    big = {"documents": [{"id": "big", "text": "x", "metadata": {"notes": "n" * 70_000}}]}
    response = api.post("/collections/kb/documents", json=big)
    assert response.status_code == 422
    assert "more than the limit of 65536" in detail(response)
    assert snapshot(api) == stored
    # Eight levels are fine, and searchable afterwards.
    ingest(api, [{"id": "eight", "text": "Refunds take five days.", "metadata": nested(8)}])
    assert search(api, "refund", threshold=-1)["hits"]


def test_a_refused_body_is_not_echoed(api: TestClient, stored: dict[str, Any]) -> None:
    response = api.post("/collections/kb/search", json={"query": "q" * 3_000_000})
    assert response.status_code == 422
    assert len(response.content) < 1_000
    assert detail(response) == "query: String should have at most 20000 characters"


def test_a_huge_page_offset_is_refused(api: TestClient, stored: dict[str, Any]) -> None:
    response = api.get("/collections/kb/documents", params={"offset": 2**63})
    assert response.status_code == 422
    assert "offset: Input should be less than or equal to 2147483647" in detail(response)


HARD_IDS = ["a/b", "a b", "%2e%2e", "%2F", "100%", "?x=1", "#frag", "é/字", "a//b", ".a/..b"]


def test_hard_ids_reach_their_own_document_only(live_url: str) -> None:
    """Through httpx against a real server (the test client decodes paths twice)."""
    with httpx.Client(base_url=live_url, timeout=LIVE_TIMEOUT_S) as client:
        assert client.post("/collections", json={"name": "ids"}).status_code == 201
        documents = [{"id": i, "text": f"Text {n}."} for n, i in enumerate([*HARD_IDS, "other"])]
        job = client.post("/collections/ids/documents", json={"documents": documents}).json()
        assert wait_for_job(client, job["id"])["status"] == "succeeded"
        for document_id in HARD_IDS:
            path = f"/collections/ids/documents/{quote(document_id, safe='/')}"
            assert client.get(path).json()["id"] == document_id
            assert client.delete(path).status_code == 204
            assert client.get(path).status_code == 404
        assert client.get("/collections/ids/documents/other").status_code == 200
        assert client.get("/collections/ids").json()["document_count"] == 1


def test_every_error_answer_is_documented_as_a_detail_string(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(schema)
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            for code in ("422",):
                if code in operation["responses"]:
                    reference = operation["responses"][code]["content"]["application/json"]
                    assert reference["schema"]["$ref"].endswith("/ErrorResponse"), path


def test_a_body_over_the_limit_is_413_naming_it(tmp_path: Path, models: ModelRegistry) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_request_bytes=4096)
    with TestClient(create_app(settings, models=models)) as api:
        create_collection(api)
        response = api.post(
            "/collections/kb/documents", json={"documents": [{"id": "a", "text": "x" * 5000}]}
        )
        assert response.status_code == 413
        assert detail(response).startswith("the request body is 5")
        assert "more than the limit of 4096 bytes (SEMSEARCH_MAX_REQUEST_BYTES)" in detail(response)

        def chunks() -> Iterator[bytes]:
            yield b'{"documents": [{"id": "a", "text": "'
            yield b"x" * 5000
            yield b'"}]}'

        chunked = api.post(
            "/collections/kb/documents",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413
        assert "more than the limit of 4096 bytes" in detail(chunked)
        assert api.get("/collections/kb").json()["document_count"] == 0
        assert api.get("/health/ready").status_code == 200


def test_cross_origin_calls_are_off_unless_an_origin_is_allowed(
    api: TestClient, tmp_path: Path, models: ModelRegistry
) -> None:
    preflight = {
        "origin": "https://kb.example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    closed = api.options("/collections/kb/search", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers

    settings = Settings(data_dir=tmp_path / "cors", cors_origins=["https://kb.example.com"])
    with TestClient(create_app(settings, models=models)) as open_api:
        allowed = open_api.options("/collections/kb/search", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://kb.example.com"
        other = open_api.options(
            "/collections/kb/search", headers={**preflight, "origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


def test_configured_limits_answer_422_naming_the_limit_and_its_setting(
    tmp_path: Path, models: ModelRegistry
) -> None:
    limits = InputLimits(
        max_documents_per_request=2,
        max_document_chars=50,
        max_query_chars=10,
        max_top_k=10,
        max_filter_depth=1,
        max_metadata_depth=1,
        max_metadata_bytes=20,
        max_term_map_entries=1,
        max_id_chars=5,
    )
    doc = {"id": "a", "text": "short"}
    refused = [
        (
            "/collections/kb/documents",
            {"documents": [doc, doc, doc]},
            "documents",
            "MAX_DOCUMENTS_PER_REQUEST",
        ),
        (
            "/collections/kb/documents",
            {"documents": [{"id": "a", "text": "x" * 51}]},
            "documents.0.text",
            "MAX_DOCUMENT_CHARS",
        ),
        (
            "/collections/kb/documents",
            {"documents": [{"id": "abcdef", "text": "x"}]},
            "documents.0.id",
            "MAX_ID_CHARS",
        ),
        (
            "/collections/kb/documents",
            {"documents": [{**doc, "metadata": {"a": {"b": 1}}}]},
            "documents.0.metadata",
            "MAX_METADATA_DEPTH",
        ),
        (
            "/collections/kb/documents",
            {"documents": [{**doc, "metadata": {"a": "x" * 30}}]},
            "documents.0.metadata",
            "MAX_METADATA_BYTES",
        ),
        ("/collections/kb/search", {"query": "x" * 11}, "query", "MAX_QUERY_CHARS"),
        ("/collections/kb/search", {"query": "x", "top_k": 11}, "top_k", "MAX_TOP_K"),
        (
            "/collections/kb/search",
            {"query": "x", "filter": {"must": [{"must": [{"key": "a", "match": 1}]}]}},
            "filter.must[0]",
            "MAX_FILTER_DEPTH",
        ),
        (
            "/collections",
            {"name": "c2", "term_map": {"a": "b", "c": "d"}},
            "term_map",
            "MAX_TERM_MAP_ENTRIES",
        ),
    ]
    with TestClient(
        create_app(Settings(data_dir=tmp_path / "data", limits=limits), models=models)
    ) as api:
        assert api.post("/collections", json={"name": "kb"}).status_code == 201
        for path, body, field, setting in refused:
            response = api.post(path, json=body)
            assert response.status_code == 422, (field, response.text)
            assert detail(response).startswith(f"{field}:"), detail(response)
            assert f"SEMSEARCH_LIMITS__{setting}" in detail(response)
        assert api.get("/collections/kb").json()["document_count"] == 0
        assert [c["name"] for c in api.get("/collections").json()["collections"]] == ["kb"]


def test_a_limit_above_its_ceiling_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_LIMITS__MAX_METADATA_DEPTH", "9")
    with pytest.raises(ValueError, match="max_metadata_depth"):
        Settings()
    monkeypatch.setenv("SEMSEARCH_LIMITS__MAX_METADATA_DEPTH", "3")
    assert Settings().limits.max_metadata_depth == 3
