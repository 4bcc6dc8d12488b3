"""The language check: can the embedding model read a collection's text at all?

all-MiniLM-L6-v2 reads English: its vocabulary holds 244 CJK characters, so most Chinese
text becomes [UNK] word pieces (58-75% of the word pieces of Chinese question sets, near 0%
for English). Dense scores over such text are near noise. The share of unknown word pieces
over a collection's indexed text decides whether it carries a warning, and whether a
collection in mode `auto` is searched dense or hybrid.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.catalog import Catalog, CollectionMode, CollectionRecord

UNKNOWN_SHARE_LIMIT = 0.3
"""Above this share of [UNK] word pieces the model is taken not to read the collection."""


@dataclass(frozen=True, slots=True)
class LanguageCheck:
    word_pieces: int
    unknown_word_pieces: int

    @property
    def unknown_share(self) -> float | None:
        """Share of the indexed text's word pieces the model maps to [UNK]; None before any."""
        if self.word_pieces == 0:
            return None
        return self.unknown_word_pieces / self.word_pieces

    @property
    def model_reads_text(self) -> bool:
        share = self.unknown_share
        return share is None or share <= UNKNOWN_SHARE_LIMIT

    def warning(self, model: str) -> str | None:
        """What a user must know when the model does not read this collection's language."""
        share = self.unknown_share
        if share is None or self.model_reads_text:
            return None
        return (
            f"{share:.0%} of this collection's word pieces are unknown to the model {model}: "
            "it does not read this language, so its dense scores here are close to noise. The "
            "lexical leg (BM25 over words and character bigrams) carries the search in hybrid "
            "mode; for semantic matching in this language, use a model that reads it "
            "(SEMSEARCH_MODEL_PATH)."
        )

    def effective_mode(self, collection: CollectionRecord) -> CollectionMode:
        """The mode a search runs in: the collection's own, or for `auto` what the text needs."""
        if collection.mode is not CollectionMode.AUTO:
            return collection.mode
        return CollectionMode.DENSE if self.model_reads_text else CollectionMode.HYBRID


def check_language(catalog: Catalog, collection: str) -> LanguageCheck:
    """The language check of a collection from its documents' word-piece counts."""
    word_pieces, unknown = catalog.language_counts(collection)
    return LanguageCheck(word_pieces=word_pieces, unknown_word_pieces=unknown)
