"""Text cleaning: Unicode normalisation, invisible and control characters, whitespace."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_line", "clean_query", "clean_text"]

_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")

# Control characters that Python (str.splitlines) treats as line boundaries become line breaks
# instead of vanishing, so "a\rb" or "a\x85b" stays two lines rather than one glued word.
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")

_WHITESPACE_RUN = re.compile(r"\s+")

# Stripped from the end of a query, repeatedly. After NFKC "！？．" are "!?.", "｡" is "。" and
# "…" is "...", so the ASCII forms cover most of them; the rest are listed for raw input.
_TERMINAL_PUNCTUATION = "。！？!?.…．｡"


class _CleaningTable(dict[int, str | None]):
    """A str.translate table filled on first sight of each code point.

    Classifying every code point up front costs about 0.2 s at import; a text holds a few
    thousand distinct characters at most, so each is classified once, when first met.
    """

    def __missing__(self, codepoint: int) -> str | None:
        char = chr(codepoint)
        replacement: str | None
        if char in _ZERO_WIDTH:
            replacement = None
        elif char in _LINE_BREAKS:
            replacement = "\n"
        elif char == "\t":
            replacement = "\t"
        else:
            category = unicodedata.category(char)
            if category == "Cc":
                # \x1f (unit separator) is whitespace to Python; others are plain noise.
                replacement = " " if char.isspace() else None
            elif category == "Cf":
                replacement = None
            else:
                replacement = char
        self[codepoint] = replacement
        return replacement


_CLEANING_TABLE = _CleaningTable()


def _normalise(text: str) -> str:
    """NFKC, zero-width/format/control characters removed, line separators as "\\n"."""
    return unicodedata.normalize("NFKC", text).translate(_CLEANING_TABLE)


def _collapse_keeping_line_breaks(match: re.Match[str]) -> str:
    return "\n" if "\n" in match.group() else " "


def clean_text(text: str) -> str:
    """Clean a document: every whitespace run becomes one "\\n" if it holds a line break, else one
    space; the splitter splits on those line breaks.

    Steps: NFKC (full-width letters, digits, punctuation and spaces become ASCII); zero-width
    characters, BOM, format characters (Unicode Cf) and control characters (Cc) removed, except
    tab and the line-breaking ones ("\\r", "\\v", "\\f", NEL, U+2028, U+2029), which become
    "\\n"; whitespace runs collapsed; leading and trailing whitespace stripped.
    """
    return _WHITESPACE_RUN.sub(_collapse_keeping_line_breaks, _normalise(text)).strip()


def clean_line(text: str) -> str:
    """Clean like clean_text, but every whitespace run, line breaks included, becomes one space.

    This is the normal form of short texts: queries and the terms of a term map.
    """
    return _WHITESPACE_RUN.sub(" ", _normalise(text)).strip()


def clean_query(text: str) -> str:
    """Clean a search query: clean_line, then strip sentence-final punctuation from the end.

    The rule is deliberately simple: while the text ends with one of "。！？!?.…．｡" (or
    whitespace left behind by removing one), that character is removed. So "what is RAG?!" and
    "什么是RAG。。。" lose their endings, inner punctuation ("a, b. c") is kept, and a final "."
    goes even where it belongs to an abbreviation ("etc." -> "etc") or ends a number ("3." ->
    "3"): for matching a query the difference does not matter.
    """
    return clean_line(text).rstrip(_TERMINAL_PUNCTUATION + " ")
