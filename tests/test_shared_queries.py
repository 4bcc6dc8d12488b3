"""Queries that meet at a busy model share one encode; repeated queries come from the cache."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

import httpx
import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from prometheus_client import REGISTRY

from retrieval.models.base import EmbeddingModel, TextRole
from retrieval.models.registry import BUNDLED_MODELS, MINILM, ModelRegistry
from retrieval.models.sentence_transformers import SentenceTransformerEngine, bundled_minilm_path
from retrieval.models.shared_queries import SharedQueryEncodes
from retrieval.models.tokenizer import HuggingFaceTokenizer
from retrieval.models.turns import QueryFirstTurns
from tests.conftest import LIVE_TIMEOUT_S, wait_for_job

QUESTIONS = [
    "how do I reset my password",
    "where is my parcel",
    "can I pay with a credit card",
    "the app crashes when I open it",
    "how long does a refund take",
    "change the delivery address",
    "cancel my subscription",
    "is there a student discount",
]


def _combine_behind_a_busy_model(
    texts: Sequence[str], encode: Callable[[list[str]], NDArray[np.float32]], *, max_texts: int
) -> dict[str, NDArray[np.float32] | BaseException]:
    """Each text asked on its own thread while the model is busy; their answers by text."""
    turns = QueryFirstTurns()
    shared = SharedQueryEncodes(turns, encode, max_texts=max_texts)
    answers: dict[str, NDArray[np.float32] | BaseException] = {}
    release = threading.Event()
    held = threading.Event()

    def hold() -> None:  # an encode of passages in progress
        with turns.turn(query=False):
            held.set()
            release.wait(timeout=30)

    def ask(text: str) -> None:
        try:
            answers[text] = shared.encode([text])[0]
        except RuntimeError as error:
            answers[text] = error

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(timeout=30)
    askers = [threading.Thread(target=ask, args=(text,)) for text in texts]
    for asker in askers:
        asker.start()
    deadline = time.monotonic() + 30
    while turns._queries_waiting < len(texts):  # every asker waits behind the holder
        assert time.monotonic() < deadline, "the askers did not line up"
        time.sleep(0.001)
    release.set()
    for thread in (holder, *askers):
        thread.join(timeout=30)
    return answers


def test_queries_waiting_at_a_busy_model_share_one_encode(minilm: EmbeddingModel) -> None:
    batches: list[list[str]] = []

    def encode(texts: list[str]) -> NDArray[np.float32]:
        batches.append(texts)
        return minilm.encode(texts, role=TextRole.QUERY)

    answers = _combine_behind_a_busy_model(QUESTIONS, encode, max_texts=64)

    assert len(batches) == 1
    assert sorted(batches[0]) == sorted(QUESTIONS)
    alone = minilm.encode(QUESTIONS, role=TextRole.QUERY)
    for text, row in zip(QUESTIONS, alone, strict=True):
        answer = answers[text]
        assert isinstance(answer, np.ndarray)
        assert float(answer @ row) > 0.9999, f"{text!r} got another caller's row"


def test_a_shared_encode_takes_at_most_max_texts(minilm: EmbeddingModel) -> None:
    sizes: list[int] = []

    def encode(texts: list[str]) -> NDArray[np.float32]:
        sizes.append(len(texts))
        return minilm.encode(texts, role=TextRole.QUERY)

    answers = _combine_behind_a_busy_model(QUESTIONS, encode, max_texts=3)

    assert sizes == [3, 3, 2]
    assert all(isinstance(answers[text], np.ndarray) for text in QUESTIONS)


def test_a_failed_shared_encode_reaches_each_of_its_callers_and_the_next_works(
    minilm: EmbeddingModel,
) -> None:
    def fail(texts: list[str]) -> NDArray[np.float32]:
        raise RuntimeError("the engine failed")

    answers = _combine_behind_a_busy_model(QUESTIONS, fail, max_texts=64)

    assert all(isinstance(answer, RuntimeError) for answer in answers.values())
    shared = SharedQueryEncodes(
        QueryFirstTurns(), lambda texts: minilm.encode(texts, role=TextRole.QUERY), max_texts=64
    )
    row = shared.encode([QUESTIONS[0]])
    assert row.shape == (1, MINILM.dimension)


def _threads_of_this_process() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc (Linux)")
def test_query_encodes_from_many_threads_run_the_model_on_one(minilm: EmbeddingModel) -> None:
    """Sixteen searches' threads, each alive after its encode: the model ran on one thread for
    all of them, so no thread of theirs got an OpenMP team of its own (torch keeps one for
    every thread that runs it: with encodes on the callers' threads, 16 callers grew the
    process by about 16 threads)."""
    minilm.encode(["warm up the query thread"], role=TextRole.QUERY)
    encoding_threads: set[int] = set()
    original = minilm._shared_queries._encode

    def recording(texts: list[str]) -> NDArray[np.float32]:
        encoding_threads.add(threading.get_ident())
        return original(texts)

    minilm._shared_queries._encode = recording
    before = _threads_of_this_process()
    done, release = threading.Semaphore(0), threading.Event()
    callers: list[threading.Thread] = []

    def search_then_stay(text: str) -> None:
        minilm.encode([text], role=TextRole.QUERY)
        done.release()
        release.wait(timeout=60)

    try:
        for index in range(16):
            caller = threading.Thread(target=search_then_stay, args=(f"{QUESTIONS[0]} {index}",))
            caller.start()
            callers.append(caller)
            assert done.acquire(timeout=30)  # one after another: each runs an encode itself
        grown = _threads_of_this_process() - before
    finally:
        minilm._shared_queries._encode = original
        release.set()
        for caller in callers:
            caller.join(timeout=30)

    assert len(encoding_threads) == 1
    assert encoding_threads.isdisjoint(caller.ident for caller in callers)
    assert grown <= 16 + 2, f"{grown} threads for 16 callers"


def _cache_lookups(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "semsearch_query_cache_lookups_total", {"model": MINILM.name, "outcome": outcome}
    )
    return value or 0.0


def test_repeated_queries_come_from_the_cache_least_recently_used_out() -> None:
    model = ModelRegistry(BUNDLED_MODELS, default=MINILM.name, query_cache_size=2).get(MINILM.name)
    hits, misses = _cache_lookups("hit"), _cache_lookups("miss")

    first = model.encode_queries(["where is my parcel"])
    again = model.encode_queries(["where is my parcel"])
    assert (_cache_lookups("hit") - hits, _cache_lookups("miss") - misses) == (1, 1)
    assert np.array_equal(first, again)
    assert np.allclose(first, model.encode(["where is my parcel"], role=TextRole.QUERY), atol=1e-6)

    model.encode_queries(["cancel my subscription", "is there a student discount"])
    model.encode_queries(["where is my parcel"])  # pushed out by the two newer ones
    assert _cache_lookups("miss") - misses == 4


def test_a_cache_of_size_zero_never_answers() -> None:
    model = ModelRegistry(BUNDLED_MODELS, default=MINILM.name, query_cache_size=0).get(MINILM.name)
    hits = _cache_lookups("hit")
    model.encode_queries(["where is my parcel"])
    model.encode_queries(["where is my parcel"])
    assert _cache_lookups("hit") == hits


def test_concurrent_searches_each_get_their_own_hits(live_url: str) -> None:
    """Sixteen searches at once through the real server return what each returns alone."""
    with httpx.Client(base_url=live_url, timeout=LIVE_TIMEOUT_S) as client:
        created = client.post(
            "/collections", json={"name": "faq", "threshold": 0.0, "top_k": 1, "mode": "dense"}
        )
        assert created.status_code == 201, created.text
        documents = [{"id": f"q{index}", "text": text} for index, text in enumerate(QUESTIONS)]
        job = client.post("/collections/faq/documents", json={"documents": documents})
        assert job.status_code == 202, job.text
        assert wait_for_job(client, job.json()["id"])["status"] == "succeeded"

        def top(text: str) -> str:
            response = client.post("/collections/faq/search", json={"query": text})
            assert response.status_code == 200, response.text
            return str(response.json()["hits"][0]["document_id"])

        alone = [top(text) for text in QUESTIONS]
        found: list[str | None] = [None] * (len(QUESTIONS) * 2)
        askers = [
            threading.Thread(
                target=lambda position=position: found.__setitem__(
                    position, top(QUESTIONS[position % len(QUESTIONS)])
                )
            )
            for position in range(len(found))
        ]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join(timeout=60)
    assert alone == [f"q{index}" for index in range(len(QUESTIONS))]
    assert found == alone * 2


@pytest.mark.parametrize("attempt", range(20))
def test_a_query_answered_by_another_turn_lets_a_waiting_passage_slice_go(attempt: int) -> None:
    """A query that leaves without the turn (another turn encoded it) must wake the passages
    it was holding back: without that wake-up, ingestion slept until the next search. Which
    waiter the end of a turn wakes first is the scheduler's choice, hence several attempts."""
    turns = QueryFirstTurns()
    release = threading.Event()
    answered = threading.Event()
    held = threading.Event()
    passage_ran = threading.Event()

    def hold() -> None:  # the turn that will answer the waiting query
        with turns.turn(query=False):
            held.set()
            release.wait(timeout=30)
            answered.set()

    def passage() -> None:
        with turns.turn(query=False):
            passage_ran.set()

    def query() -> None:
        with turns.turn(query=True, unless=answered.is_set) as taken:
            assert not taken

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(timeout=30)
    # The passage waits first, so the end of the holder's turn wakes it before the query.
    slice_thread = threading.Thread(target=passage)
    slice_thread.start()
    time.sleep(0.01)
    query_thread = threading.Thread(target=query)
    query_thread.start()
    deadline = time.monotonic() + 30
    while turns._queries_waiting == 0:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    release.set()
    for thread in (holder, query_thread):
        thread.join(timeout=30)
    assert passage_ran.wait(timeout=5), "the passage slice was never woken"
    slice_thread.join(timeout=30)


class _RecordingEngine:
    """The real torch engine, noting for each encode its role and how many encodes were in
    progress when it began, its own included (2: run during a passage encode's pause, on the
    query thread while the passage encode's thread waits in that pause)."""

    def __init__(self, inner: SentenceTransformerEngine) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._in_progress = 0
        self.calls: list[tuple[TextRole, int]] = []

    def encode(self, texts: Sequence[str], *, role: TextRole) -> NDArray[np.float32]:
        with self._lock:
            self._in_progress += 1
            self.calls.append((role, self._in_progress))
        try:
            return self._inner.encode(texts, role=role)
        finally:
            with self._lock:
                self._in_progress -= 1

    def pause_between_layers(self, pause: Callable[[], None]) -> None:
        self._inner.pause_between_layers(pause)

    def new_tokenizer(self) -> HuggingFaceTokenizer:
        return self._inner.new_tokenizer()


def test_a_query_is_answered_between_the_layers_of_a_passage_encode(
    minilm: EmbeddingModel,
) -> None:
    """A search that arrives while the model encodes passages waits for one layer, not for
    the slice: the passage encode stops after a layer, encodes the query, and goes on."""
    inner = SentenceTransformerEngine.load(bundled_minilm_path(), device="cpu", batch_size=32)
    engine = _RecordingEngine(inner)
    model = EmbeddingModel(spec=MINILM, engine=engine)
    first_layer = next(
        module
        for module in inner._model.modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) > 1
    )[0]
    in_passage_encode = threading.Event()

    def wait_for_the_query(*_: object) -> None:
        # Once, in the passage encode: hold its first layer until the query stands in line.
        if not in_passage_encode.is_set():
            in_passage_encode.set()
            deadline = time.monotonic() + 30
            while not model._shared_queries.has_waiting():
                assert time.monotonic() < deadline, "the query never lined up"
                time.sleep(0.001)

    first_layer.register_forward_hook(wait_for_the_query)
    passage = "Refunds reach the card they were paid with within five working days. " * 4
    passage_rows: list[NDArray[np.float32]] = []
    passages = threading.Thread(
        target=lambda: passage_rows.append(model.encode([passage], role=TextRole.PASSAGE))
    )
    passages.start()
    assert in_passage_encode.wait(timeout=30)
    query_row = model.encode([QUESTIONS[4]], role=TextRole.QUERY)
    passages.join(timeout=30)

    assert engine.calls == [(TextRole.PASSAGE, 1), (TextRole.QUERY, 2)]
    assert float(query_row[0] @ minilm.encode([QUESTIONS[4]], role=TextRole.QUERY)[0]) > 0.9999
    assert float(passage_rows[0][0] @ minilm.encode_passages([passage])[0]) > 0.9999
