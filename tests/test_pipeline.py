"""The write path's planning: chunk budgets leave room for the title the model reads with them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from ingest.pipeline import IndexTarget, plan_document
from retrieval.catalog import CollectionMode, CollectionRecord, DocumentRecord, DocumentStatus
from retrieval.models.registry import MINILM, ModelRegistry
from retrieval.terms import TermMap

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
        model=MINILM.name,
        dimension=384,
        mode=CollectionMode.DENSE,
        filterable={},
        created_at=NOW,
        updated_at=NOW,
        store_name="kb",
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
def target(models: ModelRegistry) -> Callable[[int], IndexTarget]:
    def planned_with(max_tokens: int) -> IndexTarget:
        chosen = collection(max_tokens)
        return IndexTarget(
            collection=chosen,
            model=models.get(chosen.model),
            term_map=TermMap(chosen.term_map),
            reindex_job=None,
            document_vectors=True,
        )

    return planned_with


TEXT = " ".join(f"Sentence {n} describes the torque of bolt {n} on the frame." for n in range(30))


@pytest.mark.parametrize("max_tokens", [32, 64, 200])
def test_title_and_chunk_together_fit_the_budget(
    target: Callable[[int], IndexTarget], max_tokens: int
) -> None:
    chosen = target(max_tokens)
    plan = plan_document(document(TEXT, "Bicycle frame maintenance"), chosen)
    assert plan.title == "Bicycle frame maintenance"
    for chunk in plan.chunks:
        indexed = plan.indexed_text(chunk, chosen.term_map)
        assert indexed.startswith("Bicycle frame maintenance\n")
        assert chosen.model.tokenizer.count(indexed) <= max_tokens
        assert TEXT[chunk.start : chunk.end] == chunk.text


def test_a_title_too_long_for_the_budget_is_left_out(target: Callable[[int], IndexTarget]) -> None:
    chosen = target(32)
    long_title = "A very long title " * 5
    plan = plan_document(document(TEXT, long_title), chosen)
    assert plan.title is None
    assert all(plan.indexed_text(chunk, chosen.term_map) == chunk.text for chunk in plan.chunks)
    assert all(chosen.model.tokenizer.count(chunk.text) <= 32 for chunk in plan.chunks)


def test_no_title_no_prefix(target: Callable[[int], IndexTarget]) -> None:
    chosen = target(200)
    plan = plan_document(document("Short text.", None), chosen)
    assert [plan.indexed_text(chunk, chosen.term_map) for chunk in plan.chunks] == ["Short text."]
    assert plan.word_pieces.total == chosen.model.tokenizer.count("Short text.")
