"""API keys, scopes, per-collection limits, rate limits and the refusal to serve open."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import cli
from api.cli_keys import ensure_keys_before_exposing, open_catalog
from api.rate_limit import RateClass, RateLimiter, parse_rates
from retrieval.access import Scope, issue_key
from retrieval.catalog import utc_now
from retrieval.config import Settings
from retrieval.errors import ConfigurationError, RateLimited
from retrieval.models.registry import ModelRegistry
from tests.conftest import wait_for_job

DOCUMENT = {"id": "refund", "text": "Refunds are paid back to the card within five days."}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_key(api: TestClient, token: str | None, **body: Any) -> str:
    response = api.post("/keys", json=body, headers=bearer(token) if token else {})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["token"].startswith("ssk_")
    return str(created["token"])


@pytest.fixture
def secured(api: TestClient) -> dict[str, str]:
    """Collections a and b with a document each, then keys of every kind (the first ends
    open access)."""
    for name in ("a", "b"):
        assert api.post("/collections", json={"name": name, "threshold": 0.2}).status_code == 201
        job = api.post(f"/collections/{name}/documents", json={"documents": [DOCUMENT]}).json()
        assert wait_for_job(api, job["id"])["status"] == "succeeded"
    admin = make_key(api, None, name="root", scopes=["admin"])
    return {
        "admin": admin,
        "read_a": make_key(api, admin, name="bot-a", scopes=["read"], collections=["a"]),
        "write_a": make_key(api, admin, name="loader-a", scopes=["write"], collections=["a"]),
        "admin_a": make_key(api, admin, name="owner-a", scopes=["admin"], collections=["a"]),
    }


def test_the_service_runs_open_until_the_first_key(api: TestClient) -> None:
    assert api.post("/collections", json={"name": "kb"}).status_code == 201
    assert api.get("/collections").status_code == 200
    make_key(api, None, name="root", scopes=["admin"])
    refused = api.get("/collections")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert "semsearch keys create" in refused.json()["detail"]
    assert api.get("/health/ready").status_code == 200  # probes stay open


def test_unknown_malformed_and_revoked_keys_are_refused(
    api: TestClient, secured: dict[str, str]
) -> None:
    fake = secured["read_a"][:-4] + "AAAA"
    for token in (fake, "not-a-key", "ssk_" + "0" * 12 + "_x" * 20):
        response = api.get("/collections", headers=bearer(token))
        assert response.status_code == 401
        assert response.json()["detail"] == "the API key is unknown or revoked"
    keys = api.get("/keys", headers=bearer(secured["admin"])).json()["keys"]
    reader = next(key for key in keys if key["name"] == "bot-a")
    assert "token" not in reader
    revoked = api.delete(f"/keys/{reader['key_id']}", headers=bearer(secured["admin"]))
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    search = api.post(
        "/collections/a/search", json={"query": "refund"}, headers=bearer(secured["read_a"])
    )
    assert search.status_code == 401


def test_a_read_key_reads_its_collection_and_cannot_learn_of_another(
    api: TestClient, secured: dict[str, str]
) -> None:
    read_a = bearer(secured["read_a"])
    hits = api.post("/collections/a/search", json={"query": "refund to my card"}, headers=read_a)
    assert hits.status_code == 200
    assert hits.json()["hits"][0]["document_id"] == "refund"
    listed = api.get("/collections", headers=read_a).json()
    assert [c["name"] for c in listed["collections"]] == ["a"]

    missing = api.post("/collections/zzz/search", json={"query": "refund"}, headers=read_a)
    hidden = api.post("/collections/b/search", json={"query": "refund"}, headers=read_a)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == "collection 'b' does not exist"
    for path in ("/collections/b", "/collections/b/documents", "/collections/b/documents/refund"):
        assert api.get(path, headers=read_a).status_code == 404, path

    lacking = api.post("/collections/a/documents", json={"documents": [DOCUMENT]}, headers=read_a)
    assert lacking.status_code == 403
    assert "'write' scope" in lacking.json()["detail"]
    assert api.delete("/collections/a/documents/refund", headers=read_a).status_code == 403
    assert api.delete("/collections/a", headers=read_a).status_code == 403
    assert api.get("/keys", headers=read_a).status_code == 403
    assert api.get("/collections/a/documents/refund", headers=read_a).status_code == 200


def test_a_write_key_ingests_and_follows_its_job_but_cannot_search(
    api: TestClient, secured: dict[str, str]
) -> None:
    write_a = bearer(secured["write_a"])
    document = {"id": "hours", "text": "The shop opens at nine every weekday."}
    accepted = api.post("/collections/a/documents", json={"documents": [document]}, headers=write_a)
    assert accepted.status_code == 202
    job_id = accepted.json()["id"]
    deadline = time.monotonic() + 60
    while api.get(f"/jobs/{job_id}", headers=write_a).json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.get(f"/jobs/{job_id}", headers=bearer(secured["read_a"])).status_code == 200
    searched = api.post("/collections/a/search", json={"query": "opening hours"}, headers=write_a)
    assert searched.status_code == 403
    b_job = api.post("/collections/b/documents", json={"documents": [document]}, headers=write_a)
    assert b_job.status_code == 404

    # A job of collection b is as unknown to a key of collection a as a job that never was.
    admin = bearer(secured["admin"])
    job_b = api.post("/collections/b/documents", json={"documents": [document]}, headers=admin)
    assert api.get(f"/jobs/{job_b.json()['id']}", headers=write_a).status_code == 404


def test_an_admin_key_limited_to_a_collection(api: TestClient, secured: dict[str, str]) -> None:
    admin_a = bearer(secured["admin_a"])
    changed = api.patch("/collections/a", json={"threshold": 0.4}, headers=admin_a)
    assert changed.status_code == 200
    assert changed.json()["threshold"] == 0.4
    assert api.patch("/collections/b", json={"threshold": 0.4}, headers=admin_a).status_code == 404
    assert api.post("/collections", json={"name": "c"}, headers=admin_a).status_code == 403
    keys = api.post("/keys", json={"name": "x", "scopes": ["read"]}, headers=admin_a)
    assert keys.status_code == 403
    assert "not limited to collections" in keys.json()["detail"]
    assert (
        api.post("/collections/a/search", json={"query": "refund"}, headers=admin_a).status_code
        == 200
    )


def test_search_rate_limit_per_key_answers_429_with_retry_after(
    tmp_path: Path, models: ModelRegistry
) -> None:
    settings = Settings(data_dir=tmp_path / "data", rate_limit_search="3/minute")
    with TestClient(create_app(settings, models=models)) as api:
        assert api.post("/collections", json={"name": "a"}).status_code == 201
        admin = make_key(api, None, name="root", scopes=["admin"])
        other = make_key(api, admin, name="other", scopes=["read"])
        codes = [
            api.post(
                "/collections/a/search", json={"query": "x"}, headers=bearer(admin)
            ).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        limited = api.post("/collections/a/search", json={"query": "x"}, headers=bearer(admin))
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert "3 per 1 minute" in limited.json()["detail"]
        # Each key has its own allowance; ingest has a separate one.
        assert (
            api.post(
                "/collections/a/search", json={"query": "x"}, headers=bearer(other)
            ).status_code
            == 200
        )
        ingest = api.post(
            "/collections/a/documents", json={"documents": [DOCUMENT]}, headers=bearer(admin)
        )
        assert ingest.status_code == 202


@pytest.mark.redis
def test_rate_counts_in_redis_are_shared_by_every_api_process() -> None:
    url = "redis://127.0.0.1:6379/15"
    rates = {RateClass.SEARCH: parse_rates("2/minute", setting="test")}
    first, second = RateLimiter(rates, redis_url=url), RateLimiter(rates, redis_url=url)
    caller = f"key-{uuid.uuid4().hex}"
    first.hit(RateClass.SEARCH, caller)
    second.hit(RateClass.SEARCH, caller)
    with pytest.raises(RateLimited):
        first.hit(RateClass.SEARCH, caller)


def test_an_unreachable_rate_store_lets_requests_through_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Port 1 refuses connections: the same failure as a stopped Redis."""
    rates = {RateClass.SEARCH: parse_rates("1/minute", setting="test")}
    limiter = RateLimiter(rates, redis_url="redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            limiter.hit(RateClass.SEARCH, "key")
    assert "rate limits not counted" in caplog.text


def test_a_rate_setting_that_is_no_rate_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="SEMSEARCH_RATE_LIMIT_SEARCH"):
        parse_rates("lots", setting="SEMSEARCH_RATE_LIMIT_SEARCH")


@pytest.fixture
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    return Settings()


def test_keys_cli_creates_lists_and_revokes(data_env: Settings) -> None:
    runner = CliRunner()
    created = runner.invoke(
        cli, ["keys", "create", "faq-bot", "--scope", "read", "--collection", "faq"]
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ssk_")
    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0
    assert "faq-bot" in listed.stdout
    assert token not in listed.stdout
    key_id = token.split("_")[1]
    assert runner.invoke(cli, ["keys", "revoke", key_id]).exit_code == 0
    catalog = open_catalog(data_env)
    try:
        [record] = catalog.list_api_keys()
    finally:
        catalog.close()
    assert record.collections == ("faq",)
    assert record.scopes == {Scope.READ}
    assert not record.active
    unknown = runner.invoke(cli, ["keys", "revoke", "nope"])
    assert unknown.exit_code == 2
    assert "does not exist" in unknown.stderr
    no_scope = runner.invoke(cli, ["keys", "create", "x", "--scope", "root"])
    assert no_scope.exit_code == 2


def test_a_key_made_by_the_cli_closes_a_running_open_service(
    data_env: Settings, models: ModelRegistry
) -> None:
    with TestClient(create_app(data_env, models=models)) as api:
        assert api.get("/collections").status_code == 200
        result = CliRunner().invoke(cli, ["keys", "create", "root", "--scope", "admin"])
        assert result.exit_code == 0, result.output
        token = result.stdout.strip().splitlines()[-1]
        deadline = time.monotonic() + 10
        while api.get("/collections").status_code != 401:
            assert time.monotonic() < deadline, "the open service did not notice the new key"
            time.sleep(0.2)
        assert api.get("/collections", headers=bearer(token)).status_code == 200


def test_serving_beyond_loopback_needs_a_key_or_insecure(data_env: Settings) -> None:
    ensure_keys_before_exposing(data_env, "127.0.0.1")
    ensure_keys_before_exposing(data_env, "::1")
    with pytest.raises(ConfigurationError, match="--insecure"):
        ensure_keys_before_exposing(data_env, "0.0.0.0")
    refused = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 2
    assert "semsearch keys create" in refused.stderr
    catalog = open_catalog(data_env)
    try:
        catalog.add_api_key(
            issue_key(name="root", scopes=[Scope.ADMIN], collections=None, now=utc_now())
        )
    finally:
        catalog.close()
    ensure_keys_before_exposing(data_env, "0.0.0.0")
