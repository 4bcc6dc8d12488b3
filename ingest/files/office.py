"""Text of PDF (pypdf) and Word .docx (python-docx) files."""

from __future__ import annotations

import io
import zipfile

import docx
import pypdf
from docx.opc.exceptions import PackageNotFoundError
from pypdf.errors import PdfReadError

from ingest.files.base import ExtractedText, UnreadableFile


def pdf_text(data: bytes) -> ExtractedText:
    """The text layer of every page, pages separated by a blank line; the title from the
    document's properties."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableFile("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableFile(f"not a readable PDF ({exc})") from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise UnreadableFile("the PDF has no text layer (a scanned PDF needs OCR first)")
    return ExtractedText(text=text, title=title or None)


def docx_text(data: bytes) -> ExtractedText:
    """The paragraphs, then the tables' cells row by row; the title from the properties."""
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableFile(f"not a readable .docx file ({exc})") from exc
    lines = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    text = "\n".join(line for line in lines if line.strip())
    if not text:
        raise UnreadableFile("the .docx file holds no text")
    return ExtractedText(text=text, title=document.core_properties.title or None)
