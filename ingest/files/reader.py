"""One file's bytes into documents, by the file's type."""

from __future__ import annotations

from pathlib import PurePosixPath

from ingest.files.base import ExtractedText, RowFields, UnreadableFile
from ingest.files.decode import decode_text
from ingest.files.markup import html_text, markdown_text
from ingest.files.office import docx_text, pdf_text
from ingest.files.rows import csv_documents, jsonl_documents
from retrieval.catalog import DocumentInput

DOCUMENT_TYPES = (".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
ROW_TYPES = (".csv", ".tsv", ".jsonl", ".ndjson")
SUPPORTED_TYPES = DOCUMENT_TYPES + ROW_TYPES


def read_file(
    name: str, data: bytes, *, fields: RowFields | None = None, max_bytes: int | None = None
) -> list[DocumentInput]:
    """The documents in a file: one for a text, Markdown, HTML, PDF or Word file (its id is
    `name`, the path relative to the folder given), one per row of a CSV or JSON Lines file.

    UnreadableFile says why a file yields nothing: unsupported type, empty, too big, binary,
    corrupt, or rows without text.
    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in SUPPORTED_TYPES:
        raise UnreadableFile(
            f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(SUPPORTED_TYPES)}"
        )
    if max_bytes is not None and len(data) > max_bytes:
        raise UnreadableFile(
            f"{len(data)} bytes, more than the limit of {max_bytes} "
            "(SEMSEARCH_LIMITS__MAX_FILE_BYTES)"
        )
    if not data.strip():
        raise UnreadableFile("the file is empty")
    if suffix in ROW_TYPES:
        return _row_documents(name, suffix, decode_text(data), fields or RowFields())
    extracted = _extract(suffix, data)
    text = extracted.text.replace("\x00", "")  # PDF text layers hold NULs no database stores
    if not text.strip():
        raise UnreadableFile("the file holds no text")
    return [
        DocumentInput(
            id=name,
            text=text,
            title=extracted.title or PurePosixPath(name).stem,
            source=name,
        )
    ]


def _extract(suffix: str, data: bytes) -> ExtractedText:
    if suffix == ".pdf":
        return pdf_text(data)
    if suffix == ".docx":
        return docx_text(data)
    text = decode_text(data)
    if suffix in (".md", ".markdown"):
        return markdown_text(text)
    if suffix in (".html", ".htm"):
        return html_text(text)
    return ExtractedText(text=text)


def _row_documents(name: str, suffix: str, text: str, fields: RowFields) -> list[DocumentInput]:
    if suffix in (".jsonl", ".ndjson"):
        return jsonl_documents(text, name=name, fields=fields)
    return csv_documents(
        text, name=name, fields=fields, delimiter="\t" if suffix == ".tsv" else ","
    )
