"""Collections of a running service: list, show, create, update, delete.

Examples:

\b
    semsearch collection create faq --threshold 0.6 --term-map terms.csv
    semsearch collection create kb --model multilingual-e5-small --mode hybrid \\
        --filterable team=keyword --filterable price=float
    semsearch collection list
    semsearch collection show faq --json
    semsearch collection update faq --threshold 0.65
    semsearch collection update faq --term-map terms.json --wait
    semsearch collection delete faq --yes
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.table import Table

from api.cli_jobs import ensure_succeeded, follow_job_by_id
from api.cli_output import console, errors, fail, plain, print_json, say, warn
from api.cli_remote import (
    DEFAULT_URL,
    ApiKeyOption,
    CollectionArgument,
    JsonFlag,
    UrlOption,
    connect,
)
from api.schemas import Chunking, CollectionCreate, CollectionPublic, CollectionUpdate, FieldKind
from retrieval.catalog import CollectionMode

collection_cli = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode=None)

TERM_MAP_HEADER = ("term", "replacement")
TERM_MAP_SHOWN = 20
"""Entries of a term map `collection show` prints; --json prints them all."""
FIELD_KINDS: tuple[str, ...] = get_args(FieldKind)

ModelOption = Annotated[
    str | None,
    typer.Option(
        help="Embedding model: a name from `semsearch models` (e.g. multilingual-e5-small, "
        "which reads Chinese)."
    ),
]
ModeOption = Annotated[
    CollectionMode | None,
    typer.Option(
        help="dense (the model's embeddings), lexical (BM25), hybrid (both fused), or auto: "
        "hybrid when the model cannot read most of the text, dense otherwise."
    ),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option(
        min=-1.0, max=1.0, help="Cosine similarity a hit must reach (score >= threshold)."
    ),
]
TopKOption = Annotated[int | None, typer.Option(min=1, help="Hits per query by default.")]
TermMapOption = Annotated[
    Path | None,
    typer.Option(
        exists=True,
        dir_okay=False,
        help="Query and document rewrites, longest match first: a .json file holding an "
        'object {"term": "replacement", ...}, or a .csv / .tsv file of two columns, term '
        "and replacement (an optional first row 'term,replacement' is skipped).",
    ),
]
FilterableOption = Annotated[
    list[str] | None,
    typer.Option(
        metavar="FIELD=KIND",
        help=f"A metadata field to index for --filter, with its type ({', '.join(FIELD_KINDS)})"
        "; repeat for several.",
    ),
]
ChunkTokensOption = Annotated[
    int | None,
    typer.Option(min=16, help="Tokens per chunk at most (the model's limit at most)."),
]
ChunkOverlapOption = Annotated[
    int | None,
    typer.Option(min=0, max=3, help="Sentences repeated from the end of the previous chunk."),
]


@collection_cli.command("list")
def list_collections(
    *,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The collections, with their model, mode, threshold and document count.

    Examples:

    \b
        semsearch collection list
        semsearch collection list --json | jq -r '.collections[].name'
    """
    with connect(url, api_key) as client:
        listed = client.list_collections()
    if as_json:
        print_json(listed)
        return
    if not listed.collections:
        say("no collections yet: `semsearch collection create NAME`")
        return
    table = Table()
    table.add_column("name", no_wrap=True)
    for column in ("model", "mode", "threshold", "top_k", "documents"):
        table.add_column(column)
    for collection in listed.collections:
        table.add_row(
            collection.name,
            collection.model,
            _mode(collection),
            f"{collection.threshold:g}",
            str(collection.top_k),
            str(collection.document_count),
        )
    console.print(table)


@collection_cli.command("show")
def show_collection(
    name: CollectionArgument,
    *,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Every setting of a collection, its term map and a re-index under way.

    Examples:

    \b
        semsearch collection show faq
        semsearch collection show faq --json | jq '.term_map'
    """
    with connect(url, api_key) as client:
        collection = client.get_collection(name)
    if as_json:
        print_json(collection)
        return
    console.print(collection_table(collection))
    if collection.language.warning:
        warn(collection.language.warning)


@collection_cli.command("create")
def create_collection(
    name: CollectionArgument,
    *,
    model: ModelOption = None,
    mode: ModeOption = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=-1.0,
            max=1.0,
            help="Cosine similarity a hit must reach (score >= threshold). Default: the "
            "model's default (`semsearch models`).",
        ),
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Hits per query by default.")] = 10,
    term_map: TermMapOption = None,
    filterable: FilterableOption = None,
    chunk_tokens: ChunkTokensOption = None,
    chunk_overlap: ChunkOverlapOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a collection: its model, search mode, threshold, term map and filter fields.

    Examples:

    \b
        semsearch collection create faq
        semsearch collection create faq --threshold 0.6 --top-k 5 --term-map terms.csv
        semsearch collection create kb --model multilingual-e5-small --mode auto \\
            --filterable team=keyword --filterable year=integer --chunk-tokens 200
    """
    terms = read_term_map(term_map) if term_map is not None else {}
    fields = parse_filterable(filterable or [])
    with connect(url, api_key) as client:
        created = client.create_collection(
            CollectionCreate(
                name=name,
                model=model,
                threshold=threshold,
                top_k=top_k,
                term_map=terms,
                chunking=_chunking(Chunking(), chunk_tokens, chunk_overlap),
                mode=mode.value if mode else "auto",
                filterable=fields,
            )
        )
    if as_json:
        print_json(created)
        return
    say(
        f"created {created.name}: model {created.model}, mode {_mode(created)}, threshold "
        f"{created.threshold:g}, top_k {created.top_k}, {_terms(created.term_map)}"
    )


@collection_cli.command("update")
def update_collection(
    name: CollectionArgument,
    *,
    threshold: ThresholdOption = None,
    top_k: TopKOption = None,
    mode: ModeOption = None,
    filterable: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FIELD=KIND",
            help=f"Index one more metadata field for --filter ({', '.join(FIELD_KINDS)}); "
            "repeat for several.",
        ),
    ] = None,
    model: ModelOption = None,
    term_map: TermMapOption = None,
    chunk_tokens: ChunkTokensOption = None,
    chunk_overlap: ChunkOverlapOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the re-index job, if one starts, to its end.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a collection. Threshold, top_k, mode and filter fields apply at once; a new model,
    term map or chunking re-embeds the collection from its stored text in a job, and searches
    use the current vectors until it completes.

    Examples:

    \b
        semsearch collection update faq --threshold 0.65 --top-k 3
        semsearch collection update faq --term-map terms.json --wait
        semsearch collection update faq --model multilingual-e5-small
        semsearch collection update faq --filterable lang=keyword
    """
    terms = read_term_map(term_map) if term_map is not None else None
    fields = parse_filterable(filterable) if filterable else None
    with connect(url, api_key) as client:
        chunking = (
            _chunking(client.get_collection(name).chunking, chunk_tokens, chunk_overlap)
            if chunk_tokens is not None or chunk_overlap is not None
            else None
        )
        change = CollectionUpdate(
            threshold=threshold,
            top_k=top_k,
            mode=mode.value if mode else None,
            filterable=fields,
            model=model,
            term_map=terms,
            chunking=chunking,
        )
        if not change.model_dump(exclude_none=True):
            raise fail("nothing to change: give at least one option (see --help)")
        updated = client.update_collection(name, change)
        reindex_job = updated.reindex.job_id if updated.reindex is not None else None
        if wait and reindex_job is not None:
            ensure_succeeded(follow_job_by_id(client, reindex_job, quiet=as_json))
            updated = client.get_collection(name)
    if as_json:
        print_json(updated)
        return
    say(
        f"updated {updated.name}: threshold {updated.threshold:g}, top_k {updated.top_k}, "
        f"mode {_mode(updated)}, model {updated.model}, {_terms(updated.term_map)}"
    )
    if updated.reindex is not None:
        say(
            f"re-indexing in job {updated.reindex.job_id}; searches use the current vectors "
            f"until it completes (`semsearch jobs wait {updated.reindex.job_id}`)"
        )
    elif reindex_job is not None:
        say(f"re-indexed in job {reindex_job}")


@collection_cli.command("delete")
def delete_collection(
    name: CollectionArgument,
    *,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete a collection with its documents and vectors; asks first unless --yes.

    Examples:

    \b
        semsearch collection delete faq
        semsearch collection delete faq --yes
    """
    with connect(url, api_key) as client:
        collection = client.get_collection(name)
        question = (
            f"Delete collection {collection.name} and its {collection.document_count} documents?"
        )
        if not yes and not typer.confirm(question, default=False, err=True):
            errors.print(f"kept {collection.name}", markup=False, highlight=False)
            raise typer.Exit(code=1)
        client.delete_collection(name)
    say(f"deleted {collection.name}")


def collection_table(collection: CollectionPublic) -> Table:
    table = Table(title=collection.name, show_header=False)
    table.add_column("setting", style="bold")
    table.add_column("value")
    table.add_row("model", f"{collection.model} ({collection.dimension} dimensions)")
    table.add_row("mode", _mode(collection))
    table.add_row("threshold", f"{collection.threshold:g}")
    table.add_row("top_k", str(collection.top_k))
    table.add_row(
        "chunking",
        f"{collection.chunking.max_tokens} tokens, overlap "
        f"{collection.chunking.overlap_sentences} sentences",
    )
    table.add_row(
        "filterable",
        plain(
            ", ".join(f"{field}={kind}" for field, kind in sorted(collection.filterable.items()))
            or "none"
        ),
    )
    table.add_row("documents", str(collection.document_count))
    table.add_row("term map", plain(_term_map(collection.term_map)))
    if collection.reindex is not None:
        table.add_row(
            "re-index",
            f"job {collection.reindex.job_id} to model {collection.reindex.model}, "
            f"{_terms(collection.reindex.term_map)}",
        )
    table.add_row("created", f"{collection.created_at:%Y-%m-%d %H:%M:%S}")
    table.add_row("updated", f"{collection.updated_at:%Y-%m-%d %H:%M:%S}")
    return table


def read_term_map(path: Path) -> dict[str, str]:
    """A term map from a .json object or a two-column .csv / .tsv file; one line on stderr
    naming the file (and the line) for anything else."""
    try:
        if path.suffix.lower() == ".json":
            return _term_map_from_json(path)
        if path.suffix.lower() in (".csv", ".tsv"):
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            return _term_map_from_table(path, delimiter=delimiter)
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"--term-map: cannot read {path}: {exc}") from exc
    raise fail(f"--term-map: {path} is neither .json nor .csv / .tsv")


def _term_map_from_json(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise fail(f"--term-map: {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise fail(f'--term-map: {path} must hold one JSON object {{"term": "replacement"}}')
    not_text = [key for key, value in data.items() if not isinstance(value, str)]
    if not_text:
        raise fail(f"--term-map: {path}: the replacement of {not_text[0]!r} is not a string")
    return data


def _term_map_from_table(path: Path, *, delimiter: str) -> dict[str, str]:
    terms: dict[str, str] = {}
    with path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file, delimiter=delimiter)
        for row in reader:
            line = f"{path}:{reader.line_num}"
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2 or not row[0].strip():
                raise fail(f"--term-map: {line}: expected two columns, term and replacement")
            term, replacement = row[0].strip(), row[1].strip()
            if not terms and (term.lower(), replacement.lower()) == TERM_MAP_HEADER:
                continue
            if term in terms:
                raise fail(f"--term-map: {line}: {term!r} is mapped twice")
            terms[term] = replacement
    return terms


def parse_filterable(specs: list[str]) -> dict[str, str]:
    """FIELD=KIND options as the API's `filterable` object."""
    fields: dict[str, str] = {}
    for spec in specs:
        field, _, kind = spec.partition("=")
        if not field or kind not in FIELD_KINDS:
            raise fail(
                f"--filterable {spec!r}: expected FIELD=KIND with KIND one of "
                f"{', '.join(FIELD_KINDS)}, e.g. --filterable team=keyword"
            )
        fields[field] = kind
    return fields


def _chunking(current: Chunking, max_tokens: int | None, overlap: int | None) -> Chunking:
    """Chunking from the options given, and `current`'s values for those not given."""
    return Chunking(
        max_tokens=max_tokens if max_tokens is not None else current.max_tokens,
        overlap_sentences=overlap if overlap is not None else current.overlap_sentences,
    )


def _mode(collection: CollectionPublic) -> str:
    if collection.mode == collection.effective_mode:
        return collection.mode
    return f"{collection.mode} ({collection.effective_mode})"


def _terms(term_map: dict[str, str]) -> str:
    return "1 term" if len(term_map) == 1 else f"{len(term_map)} terms"


def _term_map(term_map: dict[str, str]) -> str:
    if not term_map:
        return "none"
    shown = [
        f"{term} -> {replacement}" for term, replacement in list(term_map.items())[:TERM_MAP_SHOWN]
    ]
    more = len(term_map) - len(shown)
    return "\n".join(shown) + (f"\n... and {more} more (--json shows all)" if more else "")
