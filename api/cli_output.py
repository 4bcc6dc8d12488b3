"""What every `semsearch` command prints with: the consoles, JSON for scripts, one-line errors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import BaseModel, TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer.core import TyperGroup

from retrieval.config import Settings

console = Console()
errors = Console(stderr=True)
_JSON_LIST: TypeAdapter[list[Any]] = TypeAdapter(list[Any])


def say(message: str) -> None:
    """One line of plain text on stdout: no markup, no highlighting, not wrapped."""
    console.print(message, markup=False, highlight=False, soft_wrap=True)


def plain(value: str) -> Text:
    """Text from the service (ids, titles, chunks) for a table cell: '[draft]' stays text."""
    return Text(value)


def fail(message: str) -> typer.Exit:
    """Print `message` as one line on stderr; raise the result to exit with status 2."""
    one_line = escape(" ".join(message.split()))
    errors.print(f"[red]error:[/red] {one_line}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def warn(message: str) -> None:
    """One line on stderr that does not stop the command."""
    one_line = escape(" ".join(message.split()))
    errors.print(f"[yellow]warning:[/yellow] {one_line}", highlight=False, soft_wrap=True)


def validation_message(error: ValidationError, *, env_prefix: str = "") -> str:
    """Every problem of `error` as 'field: rule', in one line; with `env_prefix`, fields are
    named as the environment variables that set them (SEMSEARCH_PORT, SEMSEARCH_LIMITS__...)."""
    problems = []
    for problem in error.errors():
        parts = [str(part) for part in problem["loc"]]
        where = env_prefix + "__".join(parts).upper() if env_prefix else ".".join(parts)
        problems.append(f"{where}: {problem['msg']}" if where else problem["msg"])
    return "; ".join(problems)


def load_settings() -> Settings:
    """The settings, or one line naming what is wrong with them."""
    try:
        return Settings()
    except ValidationError as exc:
        raise fail(f"invalid settings: {validation_message(exc, env_prefix='SEMSEARCH_')}") from exc
    except ValueError as exc:
        raise fail(f"invalid settings: {exc}") from exc


def print_json(value: BaseModel | Sequence[Any]) -> None:
    """`value` as indented JSON on stdout, nothing else: what --json prints for scripts."""
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(indent=2))
    else:
        typer.echo(_JSON_LIST.dump_json(list(value), indent=2).decode())


_USAGE_ERROR: type[Exception] = typer.BadParameter.__mro__[1]
"""click's UsageError: typer's BadParameter derives from it, whether typer vendors click
(typer._click, 0.2x) or uses the click package."""


class OneLineUsageErrors(TyperGroup):
    """The root group: a usage error (unknown option, bad value, missing argument) prints one
    line on stderr and exits with 2, as click does, without click's usage block."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        with _one_line_usage_errors():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except _USAGE_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            raise  # a group without a command: click prints its help
        context = getattr(exc, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        raise fail(f"{getattr(exc, 'format_message', exc.__str__)()}{hint}") from exc
