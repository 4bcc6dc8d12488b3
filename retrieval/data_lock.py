"""One process per embedded data folder: an exclusive lock on a file inside it.

Qdrant Edge shards admit one process; a second `semsearch serve` on the same folder used to
start, report healthy and then fail every request. The lock (flock, released by the kernel
when the process dies, so a crash leaves nothing stale) makes the second one stop at
start-up with a message naming the folder and the process that holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from retrieval.errors import ConfigurationError

LOCK_FILE = "semsearch.lock"


class DataDirLock:
    """Held from `acquire` until `release` (or the process's end)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the folder; ConfigurationError when another process has it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = (self.folder / LOCK_FILE).open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigurationError(
                f"the data folder {self.folder} is in use by {holder}: an embedded data folder "
                "belongs to one process. Stop that process, or give this one a folder of its "
                "own with SEMSEARCH_DATA_DIR."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    @classmethod
    def check(cls, folder: Path) -> None:
        """Fail now, with the message, if another process holds the folder (start-up check)."""
        lock = cls(folder)
        lock.acquire()
        lock.release()
