"""A model's token counter: how many tokens a text makes, where they sit, which are unknown.

Chunk budgets, the title rule and the language check all count in the tokens of the model
that embeds the collection, so the counter belongs to the model (retrieval/models/).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from retrieval.errors import ConfigurationError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class Tokenizer(Protocol):
    """The word-piece view of a model's tokenizer that chunking needs."""

    def count(self, text: str) -> int:
        """Number of word pieces in ``text``, special tokens excluded."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span (start, end) in ``text`` of each word piece, in order."""
        ...


class HuggingFaceTokenizer:
    """Tokenizer over a Hugging Face fast tokenizer (offsets need the Rust implementation).

    Calls are serialised by a lock: a fast tokenizer driven from two threads at once fails
    with "Already borrowed". The lock is this object's own, so do not hand the same underlying
    tokenizer to another user that drives it concurrently (load a second one instead).
    """

    def __init__(self, *, tokenizer: PreTrainedTokenizerBase) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigurationError(
                f"tokenizer {type(tokenizer).__name__} is not a fast tokenizer; chunking needs "
                "character offsets: use a model folder that has a tokenizer.json"
            )
        self._tokenizer = tokenizer
        self._lock = threading.Lock()

    def _encode(self, text: str, *, offsets: bool) -> Any:
        with self._lock:
            # verbose=False: no "sequence longer than the model" log line for a whole document.
            return self._tokenizer(
                text,
                add_special_tokens=False,
                return_offsets_mapping=offsets,
                return_attention_mask=False,
                return_token_type_ids=False,
                verbose=False,
            )

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._encode(text, offsets=False)["input_ids"])

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        if not text:
            return []
        # Already a list of (int, int) tuples: no per-piece conversion for a large block.
        return cast("list[tuple[int, int]]", self._encode(text, offsets=True)["offset_mapping"])

    def word_piece_counts(self, text: str) -> WordPieceCounts:
        """How many word pieces `text` makes, and how many of them the model cannot read."""
        if not text:
            return WordPieceCounts(total=0, unknown=0)
        ids: list[int] = self._encode(text, offsets=False)["input_ids"]
        unknown_id = self._tokenizer.unk_token_id
        return WordPieceCounts(total=len(ids), unknown=sum(1 for i in ids if i == unknown_id))


UNKNOWN_SHARE_LIMIT = 0.3
"""Above this share of unknown tokens a model is taken not to read a text.

all-MiniLM-L6-v2 knows 244 CJK characters: 58-75% of the word pieces of Chinese question
sets are [UNK] to it, near 0% of English ones. multilingual-e5-small knows both (near 0%)."""


@dataclass(frozen=True, slots=True)
class WordPieceCounts:
    """How many tokens a text makes under a model's tokenizer, and how many are unknown."""

    total: int
    unknown: int

    @property
    def unknown_share(self) -> float | None:
        """Share of the tokens the model cannot read; None for a text without tokens."""
        return self.unknown / self.total if self.total else None

    @property
    def readable(self) -> bool:
        share = self.unknown_share
        return share is None or share <= UNKNOWN_SHARE_LIMIT
