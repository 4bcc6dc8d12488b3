"""What the commands that talk to a running service share: --url, --api-key, --json, the
COLLECTION argument, and a client whose every error ends the command with one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import ValidationError

from api.cli_output import fail, validation_message
from api.client import DEFAULT_TIMEOUT_S, ApiError, SemsearchClient

DEFAULT_URL = "http://127.0.0.1:8000"

UrlOption = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="SEMSEARCH_URL",
        help="Base URL of a running semsearch API.",
        show_default=True,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="SEMSEARCH_API_KEY",
        help="API key, if the service requires one (made with `semsearch keys create`).",
        show_envvar=True,
    ),
]
CollectionArgument = Annotated[
    str, typer.Argument(metavar="COLLECTION", help="The collection's name.")
]
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the API's answer as JSON, for scripts.")
]


@contextmanager
def connect(
    url: str, api_key: str | None, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Iterator[SemsearchClient]:
    """A client of the service at `url`; an API error, an unreachable service or a request the
    API's schema refuses ends the command with one line on stderr."""
    if not url.startswith(("http://", "https://")):
        raise fail(f"--url must start with http:// or https://, e.g. {DEFAULT_URL}; not {url!r}")
    with SemsearchClient(base_url=url, api_key=api_key, timeout_s=timeout_s) as client:
        try:
            yield client
        except ApiError as exc:
            raise fail(_explained(exc)) from exc
        except ValidationError as exc:
            raise fail(validation_message(exc)) from exc


def _explained(error: ApiError) -> str:
    if error.status_code == 401:
        return f"{error.detail} (give the key with --api-key or SEMSEARCH_API_KEY)"
    return error.detail
