"""What the readers share: the failure they raise and the fields that make a row a document."""

from __future__ import annotations

from dataclasses import dataclass


class UnreadableFile(Exception):
    """A file that yields no document: `reason` says why, in words for the person sending it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RowFields:
    """Which columns (CSV) or fields (JSON Lines) of a row make the document.

    The id defaults to the file's name and the row's line when the id column is absent; the
    metadata is every other column unless `metadata` names some.
    """

    id: str = "id"
    text: str = "text"
    title: str = "title"
    metadata: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ExtractedText:
    """The readable text of one file and the title it gives itself, if any."""

    text: str
    title: str | None = None
