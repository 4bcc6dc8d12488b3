"""Sentence splitting on CJK and Latin punctuation, and packing sentences into token budgets."""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from retrieval.models.tokenizer import Tokenizer

__all__ = [
    "MAX_OVERLAP_SENTENCES",
    "MIN_MAX_TOKENS",
    "ChunkSpan",
    "chunk_document",
    "split_sentences",
]

MIN_MAX_TOKENS = 8
MAX_OVERLAP_SENTENCES = 3


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """A chunk of a document: ``text == document[start:end]``."""

    text: str
    start: int
    end: int


# --- sentences ---------------------------------------------------------------------------------

_TERMINATORS = ".!?;。！？；…．｡"
_CLOSERS = "\"'”’」』）)]}》〉】〕〗»›"
_LINE_BREAK_CHARS = "\n\r\v\f\x85\u2028\u2029"

# A run of terminators with the closing quotes and brackets right after it ("好。”", "?!", "...",
# "."）"), or one line break.
_BOUNDARY = re.compile(
    f"(?:[{re.escape(_TERMINATORS)}]+[{re.escape(_CLOSERS)}]*)+|[{_LINE_BREAK_CHARS}]"
)

# Words that end in "." without ending a sentence (compared lower-cased, final "." dropped).
# Dotted initialisms ("u.s", "e.g", "a.m") are recognised by shape, see _ends_sentence.
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "gen", "col", "capt",
        "lt", "sgt", "gov", "sen", "rep", "hon", "messrs",
        "etc", "vs", "cf", "al", "approx", "dept", "est", "inc", "ltd", "co", "corp", "viz",
        "ca", "resp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
        "nov", "dec",
    }
)  # fmt: skip
# These end a sentence unless a number follows: "see No. 5" but "The answer is no. Then...".
_NUMBERED_ABBREVIATIONS = frozenset(
    {"no", "nos", "fig", "figs", "vol", "vols", "p", "pp", "eq", "eqs", "sec", "ch", "art", "tab"}
)
_DOTTED_INITIALISM = re.compile(r"[a-z](?:\.[a-z])+")
_LONGEST_ABBREVIATION = 12


def _is_ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _word_before(text: str, end: int) -> str | None:
    """The run of ASCII letters and dots ending at ``end``, lower-cased; None if it is longer
    than any abbreviation (then it is an ordinary word)."""
    start = end
    while start > 0 and end - start <= _LONGEST_ABBREVIATION:
        char = text[start - 1]
        if not (char == "." or (char.isascii() and char.isalpha())):
            break
        start -= 1
    if end - start > _LONGEST_ABBREVIATION:
        return None
    return text[start:end].lower()


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Whether a run of terminators ends a sentence. Only a single "." is in doubt: it does not
    in "3.14", "v1.2", "example.com" (an ASCII letter or digit follows), nor after "e.g.",
    "Dr.", "U.S." and the like, nor in "No. 5"."""
    run = match.group()
    if run[0] not in ".．" or (len(run) > 1 and run[1] in _TERMINATORS):
        return True
    after = match.start() + 1
    if after < len(text) and _is_ascii_alnum(text[after]):
        return False
    word = _word_before(text, match.start())
    if not word or not word[0].isalpha():
        return True
    if word in _ABBREVIATIONS or _DOTTED_INITIALISM.fullmatch(word):
        return False
    if word in _NUMBERED_ABBREVIATIONS:
        rest = text[after : after + 4].lstrip()
        return not (rest[:1].isascii() and rest[:1].isdigit())
    return True


def _append_trimmed(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    """Append (start, end) with whitespace trimmed from both ends, unless nothing is left."""
    segment = text[start:end]
    stripped = segment.lstrip()
    if not stripped:
        return
    start += len(segment) - len(stripped)
    end -= len(stripped) - len(stripped.rstrip())
    spans.append((start, end))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentences: (start, end) spans, whitespace trimmed, none empty.

    A sentence ends after a run of 。！？；… . ! ? ; (so "?!", "..." and "……" stay together)
    together with the closing quotes and brackets right after it (``他说：“好。”然后`` splits
    after ”), and at every line break. A single "." does not end a sentence inside a number or
    name ("3.14", "v1.2") or after an abbreviation ("e.g.", "Dr.", "U.S.", "No. 5").
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if match.group() in _LINE_BREAK_CHARS:
            _append_trimmed(spans, text, start, match.start())
        elif _ends_sentence(text, match):
            _append_trimmed(spans, text, start, match.end())
        else:
            continue
        start = match.end()
    _append_trimmed(spans, text, start, len(text))
    return spans


# --- chunks ------------------------------------------------------------------------------------

# Where an over-long sentence may be cut: after commas, enumeration commas, semicolons and colons
# (NFKC turns "，；：" into ASCII, so both forms are listed).
_CLAUSE_BOUNDARY = re.compile(f"[，、,；;:：]+[{re.escape(_CLOSERS)}]*")


def _ends_clause(text: str, match: re.Match[str], limit: int) -> bool:
    """An ASCII mark right before a letter, digit or "/" is no clause end: "3,000", "10:30",
    "http://"."""
    if not match.group()[-1].isascii():
        return True
    return match.end() >= limit or not (
        _is_ascii_alnum(text[match.end()]) or text[match.end()] == "/"
    )


def _is_word_char(char: str) -> bool:
    """A letter or digit below the CJK blocks: a word character of an alphabetic script."""
    return char.isalnum() and ord(char) < 0x2E80


# Sentences are tokenised for estimates in blocks of about this many characters: one call per
# sentence costs a Python round trip each, one call for a whole large document is slower per
# character in the Rust tokenizer than blocks of this size (measured: twice as slow at 1M chars).
_ESTIMATE_BLOCK_CHARS = 20_000


@dataclass(slots=True)
class _Unit:
    """A sentence, or a piece of an over-long one: the smallest thing a chunk is made of."""

    start: int
    end: int
    tokens: int
    exact: bool
    """Whether ``tokens`` is tokenizer.count of exactly this slice (not an estimate)."""


class _Chunker:
    """The state of one chunk_document call."""

    def __init__(self, text: str, tokenizer: Tokenizer, max_tokens: int) -> None:
        self.text = text
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens

    def sentence_units(self) -> list[_Unit]:
        """The sentences, with token estimates from tokenising blocks of whole sentences (the
        word pieces whose start lies in a sentence); over-long ones split further."""
        sentences = split_sentences(self.text)
        units: list[_Unit] = []
        first = 0
        while first < len(sentences):
            block_start = sentences[first][0]
            stop = first + 1
            while (
                stop < len(sentences) and sentences[stop][1] - block_start <= _ESTIMATE_BLOCK_CHARS
            ):
                stop += 1
            block_end = sentences[stop - 1][1]
            token_starts = [
                block_start + start
                for start, _ in self.tokenizer.token_spans(self.text[block_start:block_end])
            ]
            for start, end in sentences[first:stop]:
                estimate = bisect_left(token_starts, end) - bisect_left(token_starts, start)
                if estimate <= self.max_tokens:
                    units.append(_Unit(start, end, estimate, exact=False))
                else:
                    units.extend(self.split_long(start, end))
            first = stop
        return units

    def split_long(self, start: int, end: int) -> list[_Unit]:
        """Pieces of an over-long sentence: cut at clause marks, then each clause into windows
        of word pieces (one window when it fits). Every piece's token count is exact and within
        the budget."""
        clauses: list[tuple[int, int]] = []
        clause_start = start
        for match in _CLAUSE_BOUNDARY.finditer(self.text, start, end):
            if _ends_clause(self.text, match, end):
                _append_trimmed(clauses, self.text, clause_start, match.end())
                clause_start = match.end()
        _append_trimmed(clauses, self.text, clause_start, end)
        units: list[_Unit] = []
        for clause_start, clause_end in clauses:
            units.extend(self.split_by_windows(clause_start, clause_end))
        return units

    def split_by_windows(self, start: int, end: int) -> list[_Unit]:
        """Cut a span into consecutive windows of at most max_tokens word pieces, preferring
        cuts before a word's first piece. The windows tile the span: every character between
        two pieces goes to the window before it, so nothing is lost."""
        piece = self.text[start:end]
        spans = self.tokenizer.token_spans(piece)
        if not spans:
            return [_Unit(start, end, self.tokenizer.count(piece), exact=True)]
        units: list[_Unit] = []
        window_start = 0
        first = 0
        while first < len(spans):
            stop = min(first + self.max_tokens, len(spans))
            if stop < len(spans):
                stop = self._word_start_at_or_before(piece, spans, first, stop)
            while True:
                window_end = len(piece) if stop >= len(spans) else spans[stop][0]
                window_end = max(window_end, window_start)
                window: list[tuple[int, int]] = []
                _append_trimmed(window, piece, window_start, window_end)
                tokens = self.tokenizer.count(piece[window[0][0] : window[0][1]]) if window else 0
                # Pieces cut out of their context can tokenise differently: shrink until it fits.
                # A window of one piece is kept whatever its count; nothing smaller exists.
                if tokens <= self.max_tokens or stop - first <= 1:
                    break
                stop = max(first + 1, stop - max(1, tokens - self.max_tokens))
            if window:
                units.append(_Unit(start + window[0][0], start + window[0][1], tokens, exact=True))
            window_start = window_end
            first = stop
        return units

    @staticmethod
    def _word_start_at_or_before(
        piece: str, spans: list[tuple[int, int]], first: int, stop: int
    ) -> int:
        """The last piece index in the second half of [first, stop] that starts a word (not
        glued to a letter or digit before it); ``stop`` if there is none."""
        for index in range(stop, first + max(1, (stop - first) // 2) - 1, -1):
            char_start = spans[index][0]
            if char_start == 0 or not (
                _is_word_char(piece[char_start - 1]) and _is_word_char(piece[char_start])
            ):
                return index
        return stop

    def count_slice(self, first: _Unit, last: _Unit) -> int:
        return self.tokenizer.count(self.text[first.start : last.end])

    def pack(self, units: list[_Unit], overlap: int) -> list[ChunkSpan]:
        """Greedy packing by estimates, each chunk verified with count() on its actual slice."""
        chunks: list[ChunkSpan] = []
        previous_first = 0
        index = 0
        while index < len(units):
            # Trailing units of the previous chunk to repeat, as many as fit with the next one.
            repeat = min(overlap, index - previous_first) if chunks else 0
            while repeat and (
                sum(unit.tokens for unit in units[index - repeat : index + 1]) > self.max_tokens
            ):
                repeat -= 1
            first = index - repeat
            total = sum(unit.tokens for unit in units[first:index])
            stop = index
            while stop < len(units) and (
                stop == index or total + units[stop].tokens <= self.max_tokens
            ):
                total += units[stop].tokens
                stop += 1
            fits = self.count_slice(units[first], units[stop - 1]) <= self.max_tokens
            while not fits and (stop - 1 > index or first < index):
                # Give back new units first, then repeated ones.
                if stop - 1 > index:
                    stop -= 1
                else:
                    first += 1
                fits = self.count_slice(units[first], units[stop - 1]) <= self.max_tokens
            if not fits and not units[index].exact:
                # The estimate was too low for this sentence alone: split it and retry.
                units[index : index + 1] = self.split_long(units[index].start, units[index].end)
                continue
            # (A unit counted exactly is kept even when over budget: it is a single word piece
            # that tokenises to more than max_tokens on its own, which real tokenizers never do.)
            chunks.append(
                ChunkSpan(
                    self.text[units[first].start : units[stop - 1].end],
                    units[first].start,
                    units[stop - 1].end,
                )
            )
            previous_first = first
            index = stop
        return chunks


def chunk_document(
    text: str, *, tokenizer: Tokenizer, max_tokens: int, overlap_sentences: int = 0
) -> list[ChunkSpan]:
    """Pack the sentences of ``text`` (a cleaned document) into chunks of at most ``max_tokens``
    word pieces each, counted by ``tokenizer.count`` on the chunk's own text.

    Steps: split sentences; estimate each sentence's count by tokenising blocks of whole
    sentences; split a sentence over the budget at clause marks (，、, ；; ：:) and a piece still
    over it into windows of word pieces, so the model never truncates text silently; pack
    consecutive units greedily; verify each chunk with count() on its slice and give back units
    while it is over. With ``overlap_sentences`` = n, a chunk starts with the last n units
    (sentences, or pieces of a split one) of the previous chunk, as many of them as fit.

    Every chunk is non-empty, stripped, within the budget and equal to
    ``text[chunk.start:chunk.end]``; chunks are in document order and together cover every
    non-whitespace character of ``text``.
    """
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}, got {max_tokens}")
    if not 0 <= overlap_sentences <= MAX_OVERLAP_SENTENCES:
        raise ValueError(
            f"overlap_sentences must be between 0 and {MAX_OVERLAP_SENTENCES}, "
            f"got {overlap_sentences}"
        )
    chunker = _Chunker(text, tokenizer, max_tokens)
    return chunker.pack(chunker.sentence_units(), overlap_sentences)
