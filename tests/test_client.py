"""The Python client, sync and async, against the real service on a real port."""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from api.client import (
    ApiError,
    AsyncSemsearchClient,
    JobTimeout,
    SemsearchClient,
    ServiceUnreachable,
)
from api.schemas import CollectionCreate, CollectionUpdate, DocumentIn
from retrieval.models.registry import MINILM

CLOSED_PORT_URL = "http://127.0.0.1:1"

DOCUMENTS = [
    DocumentIn(
        id="guides/reset password",
        title="Reset a password",
        text="To reset your password, open Settings, choose Security and click Reset password.",
        metadata={"lang": "en", "team": "accounts"},
    ),
    DocumentIn(
        id="refund",
        title="Refunds",
        text="Refunds are paid back to the original card within five business days.",
        metadata={"lang": "en", "team": "billing"},
    ),
    DocumentIn(
        id="margin",
        title="保证金",
        text="期货交易保证金是买卖期货合约时存入的资金，比例由交易所规定。",
        metadata={"lang": "zh", "team": "futures"},
    ),
]


def test_the_sync_client_covers_collections_documents_jobs_and_search(live_url: str) -> None:
    with SemsearchClient(base_url=live_url) as client:
        created = client.create_collection(
            CollectionCreate(
                name="kb",
                threshold=0.2,
                term_map={"pwd": "password"},
                filterable={"lang": "keyword"},
            )
        )
        assert (created.name, created.threshold, created.model) == ("kb", 0.2, MINILM.name)
        assert created.filterable == {"lang": "keyword"}

        job = client.ingest("kb", DOCUMENTS)
        done = client.wait_for_job(job.id, timeout_s=120, poll_s=0.05)
        assert done.status == "succeeded", done.error
        assert (done.documents_done, done.documents_total) == (3, 3)

        result = client.search("kb", "forgot my pwd", top_k=2)
        assert result.query == "forgot my password"  # the term map applied
        assert result.hits[0].document_id == "guides/reset password"
        chinese = client.search("kb", "margin", metadata_filter={"lang": "zh"}, threshold=-1.0)
        assert [hit.document_id for hit in chinese.hits] == ["margin"]
        lexical = client.search("kb", "refunds card", mode="lexical", threshold=-1.0)
        assert lexical.mode == "lexical"
        assert lexical.hits[0].document_id == "refund"

        page = client.list_documents("kb", offset=1, limit=1)
        assert page.count == 3
        assert [document.id for document in page.documents] == ["margin"]
        document = client.get_document("kb", "guides/reset password")
        assert document.metadata == {"lang": "en", "team": "accounts"}
        assert document.chunk_count == 1
        client.delete_document("kb", "guides/reset password")
        with pytest.raises(ApiError) as missing:
            client.get_document("kb", "guides/reset password")
        assert missing.value.status_code == 404

        updated = client.update_collection("kb", CollectionUpdate(threshold=0.9, top_k=3))
        assert (updated.threshold, updated.top_k) == (0.9, 3)
        assert [c.name for c in client.list_collections().collections] == ["kb"]
        client.delete_collection("kb")
        with pytest.raises(ApiError, match="does not exist") as gone:
            client.get_collection("kb")
        assert gone.value.status_code == 404


def test_the_async_client_does_the_same_calls(live_url: str) -> None:
    async def scenario() -> None:
        async with AsyncSemsearchClient(base_url=live_url) as client:
            await client.create_collection(CollectionCreate(name="kb", threshold=0.2))
            job = await client.ingest("kb", DOCUMENTS)
            done = await client.wait_for_job(job.id, timeout_s=120, poll_s=0.05)
            assert done.status == "succeeded", done.error
            result = await client.search("kb", "how do I reset my password?", top_k=1)
            assert [hit.document_id for hit in result.hits] == ["guides/reset password"]
            assert (await client.list_documents("kb")).count == 3
            assert (await client.get_job(job.id)).id == job.id
            scores = await client.similarity("reset my password", ["change the password", "rain"])
            assert scores[0] > scores[1]
            with pytest.raises(ApiError) as missing:
                await client.search("nope", "anything")
            assert missing.value.status_code == 404
            assert "'nope' does not exist" in missing.value.detail

    asyncio.run(scenario())


def test_wait_for_job_gives_up_at_its_timeout_and_the_job_goes_on(live_url: str) -> None:
    documents = [
        DocumentIn(id=f"doc-{index}", text=f"Document {index} is about topic {index}. " * 20)
        for index in range(60)
    ]
    with SemsearchClient(base_url=live_url) as client:
        client.create_collection(CollectionCreate(name="big"))
        job = client.ingest("big", documents)
        with pytest.raises(JobTimeout, match=f"job {job.id} is still") as timed_out:
            client.wait_for_job(job.id, timeout_s=0.01, poll_s=0.01)
        assert timed_out.value.job.status in ("queued", "running")
        assert timed_out.value.status_code is None
        assert client.wait_for_job(job.id, timeout_s=120).status == "succeeded"


def test_similarity_and_embeddings_agree(live_url: str) -> None:
    texts = ["How do I reset my password", "Refunds take five business days"]
    with SemsearchClient(base_url=live_url) as client:
        [default] = [model.name for model in client.list_models().models if model.default]
        embedded = client.embed(texts)
        assert embedded.model == default == MINILM.name
        first, second = embedded.vectors
        assert len(first) == MINILM.dimension
        assert math.isclose(sum(x * x for x in first), 1.0, rel_tol=1e-3)
        cosine = sum(a * b for a, b in zip(first, second, strict=True))
        # MiniLM has no query/passage prefixes, and nothing here is cleaned away (terminal
        # punctuation would be): /similarity scores the same two vectors.
        [score] = client.similarity(texts[0], [texts[1]])
        assert math.isclose(cosine, score, abs_tol=1e-3)
        with pytest.raises(ApiError) as unknown:
            client.embed(texts, model="no-such-model")
        assert unknown.value.status_code is not None
        assert unknown.value.status_code >= 400
        assert "no-such-model" in unknown.value.detail

    async def embed_async() -> list[list[float]]:
        async with AsyncSemsearchClient(base_url=live_url) as client:
            return (await client.embed(texts, model=MINILM.name)).vectors

    again = asyncio.run(embed_async())
    assert all(
        math.isclose(a, b, abs_tol=1e-5)
        for a, b in zip(again[0] + again[1], first + second, strict=True)
    )


def test_a_stopped_service_is_a_service_unreachable_naming_the_url() -> None:
    with (
        SemsearchClient(base_url=CLOSED_PORT_URL) as client,
        pytest.raises(ServiceUnreachable) as sync_error,
    ):
        client.list_collections()
    assert sync_error.value.status_code is None
    assert f"cannot reach the semsearch service at {CLOSED_PORT_URL}" in sync_error.value.detail
    assert "semsearch serve" in sync_error.value.detail

    async def unreachable() -> ServiceUnreachable:
        async with AsyncSemsearchClient(base_url=CLOSED_PORT_URL) as client:
            try:
                await client.get_job("anything")
            except ServiceUnreachable as error:
                return error
        raise AssertionError("the call reached a closed port")

    assert CLOSED_PORT_URL in asyncio.run(unreachable()).detail


def test_a_tiny_timeout_is_named_as_such(live_url: str) -> None:
    with (
        SemsearchClient(base_url=live_url, timeout_s=1e-6) as client,
        pytest.raises(ServiceUnreachable, match="did not answer within the client's timeout"),
    ):
        client.similarity("a long enough sentence to embed", ["another sentence"] * 50)


def test_requests_the_api_would_refuse_are_refused_before_sending() -> None:
    with (
        SemsearchClient(base_url=CLOSED_PORT_URL) as client,
        pytest.raises(ValueError, match="top_k"),
    ):
        client.search("kb", "query", top_k=0)  # a ValidationError, not a ServiceUnreachable


class QuietFileHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log on the test's stderr."""


@pytest.fixture
def other_web_server(tmp_path: Path) -> Iterator[str]:
    """A plain static file server: what a --url pointing at the wrong port may find."""
    (tmp_path / "models").write_text("<html>not an API</html>")
    handler = functools.partial(QuietFileHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_server_that_is_not_semsearch_is_named_as_such(other_web_server: str) -> None:
    with SemsearchClient(base_url=other_web_server) as client:
        with pytest.raises(ApiError, match="is not the semsearch API's answer") as not_api:
            client.list_models()
        assert not_api.value.status_code == 200
        with pytest.raises(ApiError) as missing:
            client.list_collections()
        assert missing.value.status_code == 404
        assert (
            missing.value.detail == f"HTTP 404 File not found from {other_web_server}/collections"
        )
