"""`semsearch keys create|list|revoke`: API keys, written straight into the catalog.

These commands run where the service's settings are (the same SEMSEARCH_* variables), so the
first key can be made before any key exists to call the API with.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from rich.table import Table

from api.cli_output import console, errors, fail, load_settings
from retrieval.access import Scope, issue_key
from retrieval.catalog import Catalog, utc_now
from retrieval.config import Settings
from retrieval.errors import ConfigurationError, SemsearchError

keys_cli = typer.Typer(
    help="API keys: once one exists, every request needs a key.", no_args_is_help=True
)

LOOPBACK_NAMES = {"localhost"}


def open_catalog(settings: Settings) -> Catalog:
    """The service's catalog, migrated to the newest schema."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog.from_url(settings.catalog_url)
    try:
        catalog.upgrade_schema()
    except BaseException:
        catalog.close()
        raise
    return catalog


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_keys_before_exposing(settings: Settings, host: str) -> None:
    """Refuse to serve a non-loopback address while the service would run open."""
    if is_loopback(host):
        return
    catalog = open_catalog(settings)
    try:
        if catalog.any_api_key_created():
            return
    finally:
        catalog.close()
    raise ConfigurationError(
        f"refusing to serve {host} without an API key: anyone who can reach it could read and "
        "change every collection. Create a key first (`semsearch keys create admin --scope "
        "admin`), or pass --insecure to serve it open."
    )


def _catalog() -> Catalog:
    settings = load_settings()
    try:
        return open_catalog(settings)
    except SemsearchError as exc:
        raise fail(str(exc)) from exc


@keys_cli.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. faq-bot.")],
    scope: Annotated[
        list[Scope],
        typer.Option(help="read, write or admin; repeat for several (admin includes all)."),
    ],
    collection: Annotated[
        list[str] | None,
        typer.Option(help="Limit the key to this collection; repeat for several."),
    ] = None,
) -> None:
    """Create a key and print its token (shown this once; only its hash is kept)."""
    catalog = _catalog()
    try:
        issued = issue_key(name=name, scopes=scope, collections=collection, now=utc_now())
        catalog.add_api_key(issued)
    except SemsearchError as exc:
        raise fail(str(exc)) from exc
    finally:
        catalog.close()
    errors.print(f"created key {issued.record.key_id} ({name}); its token, shown only now:")
    console.print(issued.token, highlight=False, soft_wrap=True)


@keys_cli.command("list")
def list_keys() -> None:
    """Every key with its scopes and collections; never the tokens."""
    catalog = _catalog()
    try:
        records = catalog.list_api_keys()
    except SemsearchError as exc:
        raise fail(str(exc)) from exc
    finally:
        catalog.close()
    table = Table()
    for column in ("key id", "name", "scopes", "collections", "created", "revoked"):
        table.add_column(column)
    for record in records:
        table.add_row(
            record.key_id,
            record.name,
            ", ".join(sorted(record.scopes)),
            "all" if record.collections is None else ", ".join(record.collections),
            f"{record.created_at:%Y-%m-%d %H:%M}",
            "" if record.revoked_at is None else f"{record.revoked_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@keys_cli.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key id from `keys list`.")]) -> None:
    """Revoke a key; requests with it are refused from now on."""
    catalog = _catalog()
    try:
        record = catalog.revoke_api_key(key_id)
    except SemsearchError as exc:
        raise fail(str(exc)) from exc
    finally:
        catalog.close()
    console.print(f"revoked key {record.key_id} ({record.name})")
