"""Files into checked documents, for the upload route and `semsearch ingest` alike.

A file that yields nothing, or a document of it that the API would refuse, becomes a
`FileFailure` with its reason; everything else goes on, in batches the API accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from api.schemas import MAX_SOURCE_CHARS, MAX_TITLE_CHARS, DocumentIn
from ingest.files.base import RowFields, UnreadableFile
from ingest.files.reader import read_file
from retrieval.catalog import DocumentInput
from retrieval.errors import InvalidInput
from retrieval.limits import InputLimits


@dataclass(frozen=True, slots=True)
class FileFailure:
    name: str
    """The file, or `file (document id)` for one row of a bulk file."""
    reason: str


@dataclass(slots=True)
class FilesRead:
    files: int = 0
    documents: list[DocumentInput] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)

    def batches(self, size: int) -> Iterator[list[DocumentInput]]:
        for start in range(0, len(self.documents), size):
            yield self.documents[start : start + size]


def read_files(
    files: Iterable[tuple[str, bytes]], *, limits: InputLimits, fields: RowFields
) -> FilesRead:
    """The documents of (name, content) pairs; an id met twice keeps its first document."""
    result = FilesRead()
    first_source: dict[str, str] = {}
    for name, data in files:
        result.files += 1
        try:
            documents = read_file(name, data, fields=fields, max_bytes=limits.max_file_bytes)
        except UnreadableFile as exc:
            result.failures.append(FileFailure(name=name, reason=exc.reason))
            continue
        for read in documents:
            document = _fitted(read)
            where = name if document.id == name else f"{name} ({document.id})"
            reason = _refusal(document, limits)
            if reason is None and document.id in first_source:
                reason = f"the id {document.id!r} was already taken by {first_source[document.id]}"
            if reason is not None:
                result.failures.append(FileFailure(name=where, reason=reason))
                continue
            first_source[document.id] = name
            result.documents.append(document)
    return result


def upload_name(filename: str | None) -> str:
    """An uploaded file's name as a document id: the relative path the client sent, with
    POSIX slashes and no leading slash or './' (the validation refuses '..' later)."""
    name = (filename or "").replace("\\", "/").lstrip("/")
    while name.startswith("./"):
        name = name[2:]
    return name


def _fitted(document: DocumentInput) -> DocumentInput:
    """The document with a title and source cut to what the API stores (a PDF's title
    property can be any length)."""
    return replace(
        document,
        title=_clip(document.title, MAX_TITLE_CHARS),
        source=_clip(document.source, MAX_SOURCE_CHARS),
    )


def _refusal(document: DocumentInput, limits: InputLimits) -> str | None:
    """Why the API would refuse this document, or None."""
    try:
        DocumentIn.from_input(document)
        limits.check_documents([(document.id, document.text, document.metadata)])
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}"
    except InvalidInput as exc:
        return str(exc).removeprefix("documents.0.")
    return None


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None


def summarize_failures(failures: Sequence[FileFailure], *, shown: int = 5) -> str:
    """The first failures in one line, for a message when nothing could be read."""
    listed = "; ".join(f"{failure.name}: {failure.reason}" for failure in failures[:shown])
    more = f"; and {len(failures) - shown} more" if len(failures) > shown else ""
    return listed + more
