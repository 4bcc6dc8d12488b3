"""The language check: can a collection's model read the collection's text, and the query?

Each model counts its own unknown tokens: all-MiniLM-L6-v2's vocabulary holds 244 CJK
characters, so most Chinese text becomes [UNK] (58-75% of the word pieces of Chinese question
sets, near 0% for English); multilingual-e5-small reads both. The share over a collection's
indexed text decides whether the collection carries a warning, and whether a collection in
mode `auto` is searched dense or hybrid. A warning names a registered model that reads more
languages and the one call that switches to it (a re-index from the stored text).
"""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.catalog import Catalog, CollectionMode, CollectionRecord
from retrieval.models.registry import ModelRegistry
from retrieval.models.tokenizer import WordPieceCounts


@dataclass(frozen=True, slots=True)
class LanguageCheck:
    """What a collection's model makes of the collection's indexed text."""

    collection: str
    model: str
    counts: WordPieceCounts
    reader: str | None
    """A registered model that reads Chinese as well as English, other than `model`."""

    @property
    def unknown_share(self) -> float | None:
        """Share of the indexed text's tokens the model cannot read; None before any text."""
        return self.counts.unknown_share

    @property
    def model_reads_text(self) -> bool:
        return self.counts.readable

    @property
    def warning(self) -> str | None:
        """What a user must know when the model does not read this collection's language."""
        share = self.unknown_share
        if share is None or self.model_reads_text:
            return None
        return (
            f"{share:.0%} of this collection's tokens are unknown to its model {self.model}: it "
            "does not read this language, so dense scores here are close to noise and the "
            "lexical leg (BM25 over words and character bigrams) carries the search in hybrid "
            f"mode. {_switch_advice(self.collection, self.reader)}"
        )

    def effective_mode(self, collection: CollectionRecord) -> CollectionMode:
        """The mode a search runs in: the collection's own, or for `auto` the mode an applied
        calibration measured best, else hybrid when the model cannot read the text."""
        if collection.mode is not CollectionMode.AUTO:
            return collection.mode
        calibrated = collection.calibrated_auto_mode
        if calibrated is not None:
            return calibrated
        return CollectionMode.DENSE if self.model_reads_text else CollectionMode.HYBRID


def query_warning(
    collection: str, model: str, counts: WordPieceCounts, reader: str | None
) -> str | None:
    """A warning for a query the collection's model cannot read, None when it can."""
    share = counts.unknown_share
    if share is None or counts.readable:
        return None
    return (
        f"{share:.0%} of this query's tokens are unknown to the model {model}, so its dense "
        "score is close to noise: hits come from the lexical leg only, or none in dense mode. "
        f"{_switch_advice(collection, reader)}"
    )


def _switch_advice(collection: str, reader: str | None) -> str:
    if reader is None:
        return "For semantic matching in this language, register a model that reads it."
    return (
        f"The registered model {reader} reads it: PATCH /collections/{collection} with "
        f'{{"model": "{reader}"}} re-embeds the collection from its stored text.'
    )


def check_language(
    catalog: Catalog, collection: CollectionRecord, models: ModelRegistry
) -> LanguageCheck:
    """The language check of a collection from its documents' token counts."""
    total, unknown = catalog.language_counts(collection.name)
    reader = models.reader_of(other_than=collection.model)
    return LanguageCheck(
        collection=collection.name,
        model=collection.model,
        counts=WordPieceCounts(total=total, unknown=unknown),
        reader=reader.name if reader else None,
    )
