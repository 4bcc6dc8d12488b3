"""Per-collection term mapping: replace known terms in a query, longest match first."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from retrieval.errors import InvalidInput
from retrieval.text import clean_line

__all__ = ["MAX_ENTRIES", "MAX_REPLACEMENT_CHARS", "MAX_TERM_CHARS", "TermMap"]

MAX_TERM_CHARS = 100
MAX_REPLACEMENT_CHARS = 500
MAX_ENTRIES = 10_000


class _CaseFoldTable(dict[int, str]):
    """A str.translate table that lower-cases one character at a time, filled on demand.

    Per character, so that folding never changes a text's length (str.lower turns "İ" into two
    characters and lower-cases a Greek sigma by context): offsets found in the folded text are
    offsets in the original.
    """

    def __missing__(self, codepoint: int) -> str:
        char = chr(codepoint)
        lowered = char.lower()
        folded = lowered if len(lowered) == 1 else char
        self[codepoint] = folded
        return folded


_CASE_FOLD = _CaseFoldTable()


@lru_cache(maxsize=4096)
def _is_latin_alnum(char: str) -> bool:
    """Whether a character is a Latin letter or an ASCII digit (a "word" character for
    boundaries: CJK characters are not, so "CTP" matches in "用CTP保证金")."""
    if char.isascii():
        return char.isalnum()
    return char.isalpha() and unicodedata.name(char, "").startswith("LATIN ")


class _TrieNode:
    __slots__ = ("children", "replacement")

    def __init__(self) -> None:
        self.children: dict[str, _TrieNode] = {}
        self.replacement: str | None = None


class TermMap:
    """Replaces terms with their replacements, e.g. a product's jargon with plain words.

    Matching rules:
    - Leftmost-longest, in one left-to-right pass: at each position the longest term wins, its
      replacement is copied to the output and never scanned again ({"A": "B", "B": "C"} maps
      "A" to "B").
    - Case-insensitive: characters are compared lower-cased (CJK has no case).
    - A term that starts with a Latin letter or digit matches only where the character before
      it is not one; likewise at its end. So "AI" leaves "MAIL" alone while "CTP保证金" matches
      inside "用CTP保证金怎么算": CJK neighbours are not word characters.
    - Terms and replacements are normalised with ``clean_line`` (NFKC, invisible characters,
      whitespace), so a full-width key matches the cleaned query. ``apply`` expects text that
      was cleaned the same way (``clean_query`` does it).

    Lookup walks a trie from each candidate position, so the cost per character does not grow
    with the number of terms.
    """

    def __init__(self, terms: Mapping[str, str]) -> None:
        """Validate and index ``terms`` (term -> replacement).

        Raises InvalidInput for more than MAX_ENTRIES entries, a term that is blank after
        cleaning or longer than MAX_TERM_CHARS, a replacement longer than
        MAX_REPLACEMENT_CHARS, or two terms that are the same after cleaning and case folding
        but have different replacements.
        """
        if len(terms) > MAX_ENTRIES:
            raise InvalidInput(
                f"term map has {len(terms)} entries; the limit is {MAX_ENTRIES}: "
                "split it or drop rarely used terms"
            )
        self._terms: dict[str, str] = {}
        self._root = _TrieNode()
        folded_keys: dict[str, str] = {}
        for raw_term, raw_replacement in terms.items():
            term = clean_line(raw_term)
            replacement = clean_line(raw_replacement)
            if not term:
                raise InvalidInput(
                    f"term map has an empty term ({raw_term!r}): every term needs at least one "
                    "visible character"
                )
            if len(term) > MAX_TERM_CHARS:
                raise InvalidInput(
                    f"term {term[:30]!r}... is {len(term)} characters long; "
                    f"the limit is {MAX_TERM_CHARS}"
                )
            if len(replacement) > MAX_REPLACEMENT_CHARS:
                raise InvalidInput(
                    f"the replacement of term {term!r} is {len(replacement)} characters long; "
                    f"the limit is {MAX_REPLACEMENT_CHARS}"
                )
            folded = term.translate(_CASE_FOLD)
            if folded in folded_keys:
                earlier = folded_keys[folded]
                if self._terms[earlier] != replacement:
                    raise InvalidInput(
                        f"terms {earlier!r} and {raw_term!r} are the same term after cleaning "
                        "and case folding but have different replacements: keep one"
                    )
                continue
            folded_keys[folded] = term
            self._terms[term] = replacement
            self._insert(folded, replacement)
        first_chars = "".join(sorted(self._root.children))
        # Jumps to the next position where some term could start, at C speed.
        self._candidate = re.compile(f"[{re.escape(first_chars)}]") if first_chars else None

    def _insert(self, folded_term: str, replacement: str) -> None:
        node = self._root
        for char in folded_term:
            node = node.children.setdefault(char, _TrieNode())
        node.replacement = replacement

    def apply(self, text: str) -> str:
        """Return ``text`` with every matched term replaced (see the class docstring)."""
        if self._candidate is None:
            return text
        folded = text.translate(_CASE_FOLD)
        length = len(text)
        pieces: list[str] = []
        copied = 0
        position = 0
        while True:
            candidate = self._candidate.search(folded, position)
            if candidate is None:
                break
            start = candidate.start()
            match = self._longest_match(text, folded, start, length)
            if match is None:
                position = start + 1
                continue
            end, replacement = match
            pieces.append(text[copied:start])
            pieces.append(replacement)
            copied = position = end
        pieces.append(text[copied:])
        return "".join(pieces)

    def _longest_match(
        self, text: str, folded: str, start: int, length: int
    ) -> tuple[int, str] | None:
        """The end and replacement of the longest term that matches at ``start``, if any."""
        if start > 0 and _is_latin_alnum(text[start]) and _is_latin_alnum(text[start - 1]):
            return None
        best: tuple[int, str] | None = None
        node = self._root
        index = start
        while index < length:
            next_node = node.children.get(folded[index])
            if next_node is None:
                break
            node = next_node
            index += 1
            if node.replacement is not None and not (
                index < length and _is_latin_alnum(text[index - 1]) and _is_latin_alnum(text[index])
            ):
                best = (index, node.replacement)
        return best

    def as_dict(self) -> dict[str, str]:
        """The cleaned terms and replacements, in the order given (a copy)."""
        return dict(self._terms)

    def __len__(self) -> int:
        return len(self._terms)

    def __repr__(self) -> str:
        return f"TermMap({len(self)} terms)"
