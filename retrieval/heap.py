"""The C heap under the process: glibc's malloc, reached through ctypes; elsewhere (musl,
macOS) these calls do nothing."""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """glibc, or None where the process runs on another C library."""
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_free_heap() -> None:
    """Hand the free pages inside malloc's heap back to the system (malloc_trim).

    glibc keeps what a program frees for its next allocations, and releases it on its own only
    from the top of the heap. Loading a model frees hundreds of MiB of temporaries in the middle
    of it (multilingual-e5-small: its tokenizer is built and then copied, about 250 MiB), which
    would otherwise stay in the process's RSS for good.
    """
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)
