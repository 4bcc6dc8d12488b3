"""The files of the paths a user names: files as given, folders walked recursively."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from ingest.files.reader import SUPPORTED_TYPES


@dataclass(frozen=True, slots=True)
class FoundFile:
    path: Path
    name: str
    """The document id it gets: the path relative to the folder given (POSIX slashes); for a
    file given itself, its path as given when that is relative and stays below, else its name."""


def collect_files(
    paths: Sequence[Path], *, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[FoundFile]:
    """Every file under `paths`, sorted, hidden files and folders skipped in walked folders.

    In a folder, only supported types are taken unless `include` globs say otherwise; a file
    named itself is always taken (an unsupported one is then reported, not ignored). Globs
    match the relative name (`docs/*.md`) or the base name (`*.md`).
    """
    found: list[FoundFile] = []
    for root in paths:
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(root)
                if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                    continue
                name = relative.as_posix()
                wanted = _matches(name, include) if include else _supported(name)
                if wanted and not _matches(name, exclude):
                    found.append(FoundFile(path=path, name=name))
        elif not _matches(root.name, exclude):
            found.append(FoundFile(path=root, name=_given_name(root)))
    return found


def _given_name(path: Path) -> str:
    if path.is_absolute() or ".." in path.parts:
        return path.name
    return path.as_posix()


def _supported(name: str) -> bool:
    return name.lower().endswith(SUPPORTED_TYPES)


def _matches(name: str, globs: Sequence[str]) -> bool:
    base = name.rsplit("/", 1)[-1]
    return any(fnmatch(name, glob) or fnmatch(base, glob) for glob in globs)
