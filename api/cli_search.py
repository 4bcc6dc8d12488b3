"""`semsearch search`, `similarity` and `models`: ask a running service."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli_output import console, fail, plain, print_json, say, warn
from api.cli_remote import (
    DEFAULT_URL,
    ApiKeyOption,
    CollectionArgument,
    JsonFlag,
    UrlOption,
    connect,
)
from api.schemas import SearchResponse
from retrieval.catalog import CollectionMode
from retrieval.errors import SemsearchError
from retrieval.filters import parse_filter
from retrieval.units import SearchUnit

HIT_TEXT_CHARS = 160
"""Characters of a hit's chunk the table shows; --json has it whole."""


def search(
    collection: CollectionArgument,
    query: Annotated[str, typer.Argument(metavar="QUERY")],
    *,
    top_k: Annotated[int | None, typer.Option(min=1, help="Hits at most.")] = None,
    threshold: Annotated[
        float | None,
        typer.Option(min=-1.0, max=1.0, help="Override the collection's threshold."),
    ] = None,
    mode: Annotated[
        CollectionMode | None, typer.Option(help="Override the collection's search mode.")
    ] = None,
    metadata_filter: Annotated[
        str | None,
        typer.Option(
            "--filter",
            metavar="JSON",
            help='Metadata filter as JSON: {"field": value, ...} for equality, or Qdrant-style '
            '{"must": [...], "should": [...], "must_not": [...]} of conditions such as '
            '{"key": "price", "range": {"gte": 10}}.',
        ),
    ] = None,
    per_document: Annotated[
        bool,
        typer.Option(
            "--per-document", help="The best chunk of each document; --top-k counts documents."
        ),
    ] = False,
    unit: Annotated[
        SearchUnit,
        typer.Option(
            help="passage: chunks; document: whole documents ranked by their mean chunk vector."
        ),
    ] = SearchUnit.PASSAGE,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Search a collection: the chunks that score at or above its threshold, best first.

    Examples:

    \b
        semsearch search faq "how do I reset my password?"
        semsearch search faq "refund" --top-k 3 --threshold 0.4
        semsearch search kb "保证金" --filter '{"lang": "zh"}' --mode hybrid
        semsearch search kb "laptop" --filter '{"must": [{"key": "price", "range": {"lt": 900}}]}'
        semsearch search papers "gene expression in T cells" --unit document
        semsearch search faq "refund" --json | jq '.hits[0].document_id'
    """
    parsed_filter = _filter(metadata_filter) if metadata_filter is not None else None
    with connect(url, api_key) as client:
        result = client.search(
            collection,
            query,
            top_k=top_k,
            threshold=threshold,
            metadata_filter=parsed_filter,
            mode=mode.value if mode else None,
            group_by="document" if per_document else None,
            unit=unit.value,
        )
    if as_json:
        print_json(result)
        return
    if result.warning:
        warn(result.warning)
    if not result.hits:
        say(
            f"no hit: nothing in {result.collection} scored at or above the threshold "
            f"{result.threshold:g} ({result.mode} search, model {result.model}); "
            "try a lower --threshold"
        )
        return
    console.print(hits_table(result))


def similarity(
    text: Annotated[str, typer.Argument(metavar="A", help="Embedded as a query.")],
    others: Annotated[
        list[str],
        typer.Argument(metavar="B...", help="One or more texts, each embedded as a chunk."),
    ],
    *,
    model: Annotated[
        str | None,
        typer.Option(help="A model from `semsearch models`. Default: the service's default."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """How similar A is to each B: the cosine a collection on that model compares with its
    threshold (A as a query, B as a stored chunk), one line per B.

    Examples:

    \b
        semsearch similarity "reset my password" "How to change the login password"
        semsearch similarity "如何重置密码？" "怎么修改登录密码" "今天天气很好" \\
            --model multilingual-e5-small
        semsearch similarity "refund" "money back" --json
    """
    with connect(url, api_key) as client:
        scores = client.similarity(text, others, model=model)
    if as_json:
        print_json(scores)
        return
    for score, other in zip(scores, others, strict=True):
        say(f"{score:.4f}  {other}")


def models(
    *,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The embedding models the service offers: what each reads, its default threshold.

    Examples:

    \b
        semsearch models
        semsearch models --json | jq -r '.models[] | select(.default) | .name'
    """
    with connect(url, api_key) as client:
        listed = client.list_models()
    if as_json:
        print_json(listed)
        return
    table = Table()
    table.add_column("name", no_wrap=True)
    for column in ("default", "dimension", "max tokens", "threshold", "reads"):
        table.add_column(column)
    for spec in listed.models:
        table.add_row(
            plain(spec.name),
            "yes" if spec.default else "",
            str(spec.dimension),
            str(spec.max_tokens),
            f"{spec.default_threshold:g}",
            plain(spec.languages),
        )
    console.print(table)


def hits_table(result: SearchResponse) -> Table:
    table = Table(
        title=plain(
            f"{result.collection}: {result.query!r} ({result.mode}, threshold "
            f"{result.threshold:g}{', whole documents' if result.unit == 'document' else ''})"
        )
    )
    for column in ("score", "document", "chunk", "text"):
        table.add_column(column)
    for hit in result.hits:
        text = hit.text if len(hit.text) <= HIT_TEXT_CHARS else hit.text[:HIT_TEXT_CHARS] + "…"
        table.add_row(f"{hit.score:.3f}", plain(hit.document_id), str(hit.chunk_index), plain(text))
    return table


def _filter(text: str) -> dict[str, Any]:
    """--filter's JSON, checked here as the service checks it: one line naming the mistake."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"--filter is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise fail('--filter must be a JSON object, e.g. --filter \'{"lang": "en"}\'')
    try:
        parse_filter(data, path="--filter")
    except SemsearchError as exc:
        raise fail(str(exc)) from exc
    return data
