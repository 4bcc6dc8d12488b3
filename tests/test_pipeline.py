"""The write path's planning: chunk budgets leave room for the title the model reads with them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.pipeline import plan_document
from ingest.splitter import HuggingFaceTokenizer
from retrieval.catalog import CollectionMode, CollectionRecord, DocumentRecord, DocumentStatus
from retrieval.embedder import Embedder

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def collection(max_tokens: int) -> CollectionRecord:
    return CollectionRecord(
        id=1,
        name="kb",
        threshold=0.5,
        top_k=10,
        term_map={},
        chunk_max_tokens=max_tokens,
        chunk_overlap_sentences=0,
        model="m",
        dimension=384,
        mode=CollectionMode.DENSE,
        filterable={},
        created_at=NOW,
        updated_at=NOW,
    )


def document(text: str, title: str | None) -> DocumentRecord:
    return DocumentRecord(
        collection="kb",
        id="d",
        text=text,
        title=title,
        source=None,
        metadata={},
        content_hash="h",
        indexed_hash=None,
        status=DocumentStatus.PENDING,
        chunk_count=0,
        error=None,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.fixture(scope="module")
def tokenizer(embedder: Embedder) -> HuggingFaceTokenizer:
    return HuggingFaceTokenizer(tokenizer=embedder.copy_tokenizer())


TEXT = " ".join(f"Sentence {n} describes the torque of bolt {n} on the frame." for n in range(30))


@pytest.mark.parametrize("max_tokens", [32, 64, 200])
def test_title_and_chunk_together_fit_the_budget(
    tokenizer: HuggingFaceTokenizer, max_tokens: int
) -> None:
    plan = plan_document(
        document(TEXT, "Bicycle frame maintenance"), collection(max_tokens), tokenizer
    )
    assert plan.title == "Bicycle frame maintenance"
    for chunk in plan.chunks:
        indexed = plan.indexed_text(chunk)
        assert indexed.startswith("Bicycle frame maintenance\n")
        assert tokenizer.count(indexed) <= max_tokens
        assert TEXT[chunk.start : chunk.end] == chunk.text


def test_a_title_too_long_for_the_budget_is_left_out(tokenizer: HuggingFaceTokenizer) -> None:
    long_title = "A very long title " * 5
    plan = plan_document(document(TEXT, long_title), collection(32), tokenizer)
    assert plan.title is None
    assert all(plan.indexed_text(chunk) == chunk.text for chunk in plan.chunks)
    assert all(tokenizer.count(chunk.text) <= 32 for chunk in plan.chunks)


def test_no_title_no_prefix(tokenizer: HuggingFaceTokenizer) -> None:
    plan = plan_document(document("Short text.", None), collection(200), tokenizer)
    assert [plan.indexed_text(chunk) for chunk in plan.chunks] == ["Short text."]
    assert plan.word_pieces.total == tokenizer.count("Short text.")
