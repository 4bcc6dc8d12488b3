"""Readable text of Markdown (markdown-it-py) and HTML (trafilatura), titles kept."""

from __future__ import annotations

import trafilatura
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingest.files.base import ExtractedText, UnreadableFile

_BLOCK_TEXT = ("fence", "code_block")
_PAGE_FURNITURE = ["//nav", "//footer", "//aside", "//*[@role='navigation']"]
"""Dropped before extraction: on short pages trafilatura's fallbacks would keep menus."""
_INLINE_TEXT = ("text", "code_inline")
_LINE_BREAKS = ("softbreak", "hardbreak")


def markdown_text(source: str) -> ExtractedText:
    """The words of a Markdown document without its markup: one line per block, the first
    heading as the title. Raw HTML blocks are dropped."""
    lines: list[str] = []
    title: str | None = None
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    for position, token in enumerate(tokens):
        if token.type == "inline":
            line = _inline_text(token)
            if line:
                lines.append(line)
                if title is None and position and tokens[position - 1].type == "heading_open":
                    title = line
        elif token.type in _BLOCK_TEXT:
            lines.append(token.content.rstrip("\n"))
    return ExtractedText(text="\n".join(lines), title=title)


def _inline_text(token: Token) -> str:
    parts = [
        child.content if child.type in _INLINE_TEXT else "\n"
        for child in token.children or []
        if child.type in _INLINE_TEXT or child.type in _LINE_BREAKS
    ]
    return "".join(parts).strip()


def html_text(source: str) -> ExtractedText:
    """The readable text of a web page: title, headings and body text, without scripts,
    styles, navigation or footers (trafilatura's main-content extraction)."""
    text = trafilatura.extract(
        source,
        output_format="txt",
        include_comments=False,
        include_tables=True,
        favor_recall=True,
        prune_xpath=_PAGE_FURNITURE,
    )
    if not text:
        raise UnreadableFile("no readable text in this HTML page")
    metadata = trafilatura.extract_metadata(source)
    return ExtractedText(text=text, title=metadata.title if metadata else None)
