"""Bulk files where each row is a document: CSV/TSV (a header row) and JSON Lines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ingest.files.base import RowFields, UnreadableFile
from retrieval.catalog import DocumentInput


def csv_documents(
    text: str, *, name: str, fields: RowFields, delimiter: str = ","
) -> list[DocumentInput]:
    """One document per row under the header row."""
    # A stream, not lines: a quoted cell may hold line breaks, which must stay in its text.
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = reader.fieldnames or []
    _require_text_column(columns, fields, name)
    try:
        rows = [(reader.line_num, dict(row)) for row in reader]
    except csv.Error as exc:
        raise UnreadableFile(f"not a readable CSV file ({exc})") from exc
    return _documents(rows, name=name, fields=fields)


def jsonl_documents(text: str, *, name: str, fields: RowFields) -> list[DocumentInput]:
    """One document per line holding a JSON object; blank lines are skipped."""
    return _documents(_json_lines(text), name=name, fields=fields)


def _json_lines(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UnreadableFile(f"line {line_number} is not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise UnreadableFile(f"line {line_number} is not a JSON object")
        yield line_number, row


def _require_text_column(columns: Sequence[str], fields: RowFields, name: str) -> None:
    if fields.text not in columns:
        shown = ", ".join(columns[:20]) or "none"
        raise UnreadableFile(
            f"{name} has no column {fields.text!r} for the text (its columns: {shown}); "
            "name the text column"
        )


def _documents(
    rows: Iterable[tuple[int, dict[str, Any]]],
    *,
    name: str,
    fields: RowFields,
) -> list[DocumentInput]:
    documents = []
    for line_number, row in rows:
        text = row.get(fields.text)
        if text is None:
            raise UnreadableFile(f"line {line_number} has no field {fields.text!r} for the text")
        if not str(text).strip():
            continue
        row_id = row.get(fields.id)
        title = row.get(fields.title)
        documents.append(
            DocumentInput(
                id=str(row_id) if row_id not in (None, "") else f"{name}#{line_number}",
                text=str(text),
                title=str(title) if title not in (None, "") else None,
                source=name,
                metadata=_metadata(row, fields),
            )
        )
    if not documents:
        raise UnreadableFile(f"{name} has no row with text")
    return documents


def _metadata(row: Mapping[str, Any], fields: RowFields) -> dict[str, Any]:
    if fields.metadata is not None:
        return {key: row[key] for key in fields.metadata if key in row}
    taken = {fields.id, fields.text, fields.title}
    return {key: value for key, value in row.items() if key not in taken and key}
