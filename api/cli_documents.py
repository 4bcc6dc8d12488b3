"""Documents of a collection on a running service: list, show, delete.

Examples:

\b
    semsearch documents list faq
    semsearch documents list faq --offset 50 --limit 50
    semsearch documents show faq guides/reset-password.md
    semsearch documents delete faq guides/reset-password.md
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from api.cli_output import console, plain, print_json, say
from api.cli_remote import (
    DEFAULT_URL,
    ApiKeyOption,
    CollectionArgument,
    JsonFlag,
    UrlOption,
    connect,
)
from api.schemas import MAX_DOCUMENTS_PAGE, DocumentPublic

documents_cli = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode=None)

DocumentArgument = Annotated[
    str, typer.Argument(metavar="DOCUMENT_ID", help="The document's id ('/' allowed).")
]


@documents_cli.command("list")
def list_documents(
    collection: CollectionArgument,
    *,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many documents (by id).")] = 0,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_DOCUMENTS_PAGE, help="Documents on this page.")
    ] = 50,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """One page of a collection's documents, ordered by id, with their status and chunks.

    Examples:

    \b
        semsearch documents list faq
        semsearch documents list faq --offset 50 --limit 50
        semsearch documents list faq --json | jq -r '.documents[].id'
    """
    with connect(url, api_key) as client:
        page = client.list_documents(collection, offset=offset, limit=limit)
    if as_json:
        print_json(page)
        return
    if not page.documents:
        beyond = f" after the first {offset} ({page.count} in all)" if offset else ""
        say(f"no documents in {collection}{beyond}")
        return
    table = Table()
    table.add_column("id", no_wrap=True)
    for column in ("title", "status", "chunks", "updated"):
        table.add_column(column)
    for document in page.documents:
        table.add_row(
            plain(document.id),
            plain(document.title or ""),
            document.status,
            str(document.chunk_count),
            f"{document.updated_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)
    last = offset + len(page.documents)
    more = f"; the next page: --offset {last}" if last < page.count else ""
    say(f"documents {offset + 1}-{last} of {page.count}{more}")


@documents_cli.command("show")
def show_document(
    collection: CollectionArgument,
    document_id: DocumentArgument,
    *,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """A document's title, source, metadata, status and chunk count.

    Examples:

    \b
        semsearch documents show faq guides/reset-password.md
        semsearch documents show faq pwd --json | jq .metadata
    """
    with connect(url, api_key) as client:
        document = client.get_document(collection, document_id)
    if as_json:
        print_json(document)
        return
    console.print(document_table(document))


@documents_cli.command("delete")
def delete_document(
    collection: CollectionArgument,
    document_id: DocumentArgument,
    *,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete a document and every chunk of it from the collection.

    Examples:

    \b
        semsearch documents delete faq guides/reset-password.md
    """
    with connect(url, api_key) as client:
        client.delete_document(collection, document_id)
    say(f"deleted {document_id} from {collection}")


def document_table(document: DocumentPublic) -> Table:
    table = Table(title=plain(f"{document.collection}/{document.id}"), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("title", plain(document.title or ""))
    table.add_row("source", plain(document.source or ""))
    table.add_row("status", document.status)
    table.add_row("chunks", str(document.chunk_count))
    table.add_row("metadata", plain(json.dumps(document.metadata, ensure_ascii=False)))
    if document.error:
        table.add_row("error", plain(document.error))
    table.add_row("content hash", document.content_hash)
    table.add_row("created", f"{document.created_at:%Y-%m-%d %H:%M:%S}")
    table.add_row("updated", f"{document.updated_at:%Y-%m-%d %H:%M:%S}")
    return table
