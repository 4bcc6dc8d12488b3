"""Labelled samples for calibration read from a file: JSON Lines or CSV, either shape.

JSON Lines: one object per line, ``{"query": "...", "relevant": ["doc-id", ...]}`` or
``{"a": "...", "b": "...", "match": true}``. CSV with a header: ``query,relevant`` (relevant
ids separated by ``|``, empty for an out-of-scope query) or ``a,b,match`` (match 1/0,
true/false, yes/no). The shape is read from the first record.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from api.schemas import PairSampleIn, QuerySampleIn

RELEVANT_SEPARATOR = "|"
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}

Samples = list[QuerySampleIn] | list[PairSampleIn]
SampleT = TypeVar("SampleT", QuerySampleIn, PairSampleIn)


def read_samples(path: Path) -> Samples:
    """The file's samples, all of one shape; ValueError naming the line that is wrong."""
    records = _csv_records(path) if path.suffix.lower() == ".csv" else _jsonl_records(path)
    if not records:
        raise ValueError(f"{path}: no samples in it")
    first_line, first = records[0]
    if "query" in first:
        return _validated(path, records, QuerySampleIn)
    if {"a", "b"} <= first.keys():
        return _validated(path, records, PairSampleIn)
    raise ValueError(
        f"{path}:{first_line}: a sample needs query and relevant, or a, b and match; "
        f"found {sorted(first)}"
    )


def _validated(
    path: Path, records: list[tuple[int, dict[str, Any]]], shape: type[SampleT]
) -> list[SampleT]:
    samples: list[SampleT] = []
    for line, record in records:
        try:
            samples.append(shape.model_validate(record))
        except ValidationError as exc:
            problem = exc.errors()[0]
            field = ".".join(str(part) for part in problem["loc"]) or "sample"
            raise ValueError(f"{path}:{line}: {field}: {problem['msg']}") from exc
    return samples


def _jsonl_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.args[0]})") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: a sample is a JSON object")
            records.append((number, record))
    return records


def _csv_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), 2):
            record: dict[str, Any] = {key.strip().lower(): value for key, value in row.items()}
            if "relevant" in record:
                ids = (record["relevant"] or "").split(RELEVANT_SEPARATOR)
                record["relevant"] = [doc.strip() for doc in ids if doc.strip()]
            if "match" in record:
                record["match"] = _boolean(record["match"], f"{path}:{number}")
            records.append((number, record))
    return records


def _boolean(value: str | None, where: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{where}: match {value!r} is not 1/0, true/false or yes/no")
