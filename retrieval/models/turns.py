"""Turns at a model: one encode at a time, and a waiting query goes before passages."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class QueryFirstTurns:
    """A lock with one rule more: while a query waits, no passage batch starts.

    Ingestion encodes passages in small slices, taking a turn per slice, so a search that
    arrives during a big import waits for at most one slice instead of a whole batch.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = False
        self._queries_waiting = 0

    @contextmanager
    def turn(self, *, query: bool, unless: Callable[[], bool] | None = None) -> Iterator[bool]:
        """Wait for the model and hold it; yields True once held.

        With `unless`, the wait ends without the turn (yielding False) as soon as `unless()`
        is true: checked whenever a turn ends, so another thread's turn can answer for this one.
        """
        taken = False
        with self._changed:
            self._queries_waiting += query
            try:
                while unless is None or not unless():
                    if not self._busy and (query or not self._queries_waiting):
                        self._busy = taken = True
                        break
                    self._changed.wait()
            finally:
                self._queries_waiting -= query
                if query and not taken:
                    # Passages may be waiting only because this query was: wake them.
                    self._changed.notify_all()
        if not taken:
            yield False
            return
        try:
            yield True
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
