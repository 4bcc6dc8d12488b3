"""Bytes to text without being told the encoding (charset-normalizer, wrapped here alone)."""

from __future__ import annotations

from charset_normalizer import from_bytes

from ingest.files.base import UnreadableFile

PREFERRED_ENCODINGS = ("utf_8", "utf_16", "utf_32", "gb18030", "big5")
"""Among encodings that read a text equally well, the first of these wins.

Short texts are ambiguous: the GBK bytes of "CTP保证金是什么" read without a single error as
Korean cp949 too. Chinese is what this service's users write most after English, so a tie
goes to the Chinese reading.
"""


NOT_TEXT = "not text: binary data, or an encoding that could not be recognised"


def decode_text(data: bytes) -> str:
    """The text of `data`: UTF-8 (with or without BOM), UTF-16/32 with BOM, GBK/GB18030 and
    the other encodings charset-normalizer knows; UnreadableFile for binary data."""
    text = _decode(data)
    if "\x00" in text:
        raise UnreadableFile(NOT_TEXT)
    return text


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    matches = list(from_bytes(data))
    if not matches:
        raise UnreadableFile(NOT_TEXT)
    best = min((match.chaos, -match.coherence) for match in matches)
    tied = [match for match in matches if (match.chaos, -match.coherence) == best]
    return str(min(tied, key=lambda match: _preference(match.encoding)))


def _preference(encoding: str) -> int:
    try:
        return PREFERRED_ENCODINGS.index(encoding)
    except ValueError:
        return len(PREFERRED_ENCODINGS)
