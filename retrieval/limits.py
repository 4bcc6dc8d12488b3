"""How much one request may ask for: configurable limits under fixed ceilings.

The ceilings are what the parts underneath can take (Qdrant reads payloads nested at most
8 levels, the catalog keeps ids of at most 256 characters) and what the published API schema
states. The limits are the operator's choice at or below them (SEMSEARCH_LIMITS__<NAME>, or
SEMSEARCH_LIMITS as JSON); a request over one is refused naming the field, the limit and the
setting that raises it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from retrieval.errors import InvalidInput
from retrieval.filters import MAX_FILTER_DEPTH

CEILING_DOCUMENTS_PER_REQUEST = 10_000
CEILING_DOCUMENT_CHARS = 10_000_000
CEILING_QUERY_CHARS = 20_000
CEILING_TOP_K = 1_000
CEILING_FILTER_DEPTH = 10
CEILING_METADATA_DEPTH = 8
CEILING_METADATA_BYTES = 1024 * 1024
CEILING_TERM_MAP_ENTRIES = 100_000
CEILING_ID_CHARS = 256
CEILING_FILE_BYTES = 1024 * 1024 * 1024

_SETTING = "SEMSEARCH_LIMITS__"


def nesting_depth(value: Any) -> int:
    """How many objects and lists are nested in `value` (0 for a plain value)."""
    depth, level = 0, [value]
    while level:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            break
        depth += 1
        level = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    return depth


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


class InputLimits(BaseModel):
    """The limits on one request's input; every one at or below its ceiling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_documents_per_request: int = Field(default=1_000, ge=1, le=CEILING_DOCUMENTS_PER_REQUEST)
    max_document_chars: int = Field(default=1_000_000, ge=1, le=CEILING_DOCUMENT_CHARS)
    max_query_chars: int = Field(default=2_000, ge=1, le=CEILING_QUERY_CHARS)
    max_top_k: int = Field(default=100, ge=1, le=CEILING_TOP_K)
    max_filter_depth: int = Field(default=MAX_FILTER_DEPTH, ge=1, le=CEILING_FILTER_DEPTH)
    max_metadata_depth: int = Field(default=8, ge=1, le=CEILING_METADATA_DEPTH)
    max_metadata_bytes: int = Field(default=64 * 1024, ge=2, le=CEILING_METADATA_BYTES)
    max_term_map_entries: int = Field(default=10_000, ge=0, le=CEILING_TERM_MAP_ENTRIES)
    max_id_chars: int = Field(default=256, ge=1, le=CEILING_ID_CHARS)
    max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1, le=CEILING_FILE_BYTES)
    """One file of an upload or of `semsearch ingest`; an upload's whole body is also bound
    by SEMSEARCH_MAX_REQUEST_BYTES."""

    def _over(self, where: str, what: str, limit: str) -> InvalidInput:
        value = getattr(self, limit)
        return InvalidInput(
            f"{where}: {what}, more than the limit of {value} ({_SETTING}{limit.upper()})"
        )

    def check_documents(self, documents: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """(id, text, metadata) of each document of an ingest request."""
        if len(documents) > self.max_documents_per_request:
            raise self._over(
                "documents", f"{len(documents)} documents", "max_documents_per_request"
            )
        for position, (document_id, text, metadata) in enumerate(documents):
            where = f"documents.{position}"
            if len(document_id) > self.max_id_chars:
                raise self._over(f"{where}.id", f"{len(document_id)} characters", "max_id_chars")
            if len(text) > self.max_document_chars:
                raise self._over(f"{where}.text", f"{len(text)} characters", "max_document_chars")
            depth = nesting_depth(metadata)
            if depth > self.max_metadata_depth:
                raise self._over(
                    f"{where}.metadata", f"nested {depth} levels", "max_metadata_depth"
                )
            size = json_bytes(metadata)
            if size > self.max_metadata_bytes:
                raise self._over(f"{where}.metadata", f"{size} bytes as JSON", "max_metadata_bytes")

    def check_texts(self, texts: Sequence[str], *, labels: Sequence[str]) -> None:
        """Texts to embed (the embedding endpoints): as many and as long as documents may be.
        `labels` names each text in a message (``input.3``); the first names the list too."""
        field = labels[0].split(".")[0] if labels else "input"
        if len(texts) > self.max_documents_per_request:
            raise self._over(field, f"{len(texts)} texts", "max_documents_per_request")
        for label, text in zip(labels, texts, strict=True):
            if len(text) > self.max_document_chars:
                raise self._over(label, f"{len(text)} characters", "max_document_chars")

    def check_query(self, query: str, *, top_k: int | None, where: str = "query") -> None:
        if len(query) > self.max_query_chars:
            raise self._over(where, f"{len(query)} characters", "max_query_chars")
        self.check_top_k(top_k)

    def check_top_k(self, top_k: int | None) -> None:
        if top_k is not None and top_k > self.max_top_k:
            raise self._over("top_k", f"{top_k} hits", "max_top_k")

    def check_term_map(self, term_map: Mapping[str, str] | None) -> None:
        if term_map is not None and len(term_map) > self.max_term_map_entries:
            raise self._over("term_map", f"{len(term_map)} entries", "max_term_map_entries")
