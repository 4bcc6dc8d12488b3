"""What a search returns, a passage or a whole document: its own module so that the CLI can
name the choice without importing the read path (and torch with it)."""

from __future__ import annotations

from enum import StrEnum


class SearchUnit(StrEnum):
    """What a hit is: a passage (a chunk) or a whole document (its mean vector)."""

    PASSAGE = "passage"
    DOCUMENT = "document"
