"""The C runtime set-up of `semsearch serve` and `worker`, observed in real child processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ARENAS_AFTER_THREADS = """
import ctypes, sys, threading
from api.process_setup import cap_malloc_arenas
if sys.argv[1] == "capped":
    cap_malloc_arenas()
all_allocated = threading.Barrier(8)
def allocate():
    kept = [bytearray(50_000) for _ in range(20)]  # below the mmap threshold: from an arena
    all_allocated.wait()  # none exits (giving its arena back) before all have one
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def run_child(
    script: str, *arguments: str, unset: str = "", **environment: str
) -> subprocess.CompletedProcess[str]:
    """`script` in a Python child process, with `unset` taken out of this environment and
    `environment` added."""
    return subprocess.run(
        [sys.executable, "-c", script, *arguments],
        env={
            **{key: value for key, value in os.environ.items() if key != unset},
            **environment,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def arenas(mode: str, **environment: str) -> int:
    finished = run_child(ARENAS_AFTER_THREADS, mode, unset="MALLOC_ARENA_MAX", **environment)
    return sum(line.startswith("Arena ") for line in finished.stderr.splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_malloc_keeps_two_arenas_unless_the_environment_chose() -> None:
    assert arenas("default") > 2  # glibc's own: an arena per thread, up to 8 per core
    assert arenas("capped") == 2
    assert 2 < arenas("capped", MALLOC_ARENA_MAX="4") <= 4


LIBC_AND_RSS = """
import ctypes, sys
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss_kib():
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0])
"""
"""The start of the child programs below: glibc's malloc and free, and the resident size."""

FREED_IN_THE_MIDDLE = f"""{LIBC_AND_RSS}
from retrieval.heap import release_free_heap
blocks = [libc.malloc(1_000) for _ in range(200_000)]  # about 200 MB, below mmap's threshold
for block in blocks:
    ctypes.memset(block, 1, 1_000)  # touched: resident
pinned = libc.malloc(1_000)  # above them: the heap's top stays in use, as after a model load
for block in blocks:
    libc.free(block)
freed = rss_kib()
release_free_heap()
print(freed, rss_kib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_heap_in_the_middle_goes_back_to_the_system() -> None:
    finished = run_child(FREED_IN_THE_MIDDLE)
    freed_kib, released_kib = (int(value) for value in finished.stdout.split())
    assert freed_kib - released_kib > 150_000  # most of the 200 MB freed is no longer resident


LARGE_BLOCKS_FREED = f"""{LIBC_AND_RSS}
from api.process_setup import fix_mmap_threshold
if sys.argv[1] == "fixed":
    fix_mmap_threshold()
SIZE = 2 << 20  # an activation buffer of a shared query batch, say
first = libc.malloc(SIZE)
libc.free(first)  # glibc's own rule raises its threshold above SIZE here
blocks, pins = [], []
for _ in range(50):  # about 100 MB, each block followed by a small one that stays in use
    blocks.append(libc.malloc(SIZE))
    ctypes.memset(blocks[-1], 1, SIZE)
    pins.append(libc.malloc(1_000))
before = rss_kib()
for block in blocks:
    libc.free(block)
print(before, rss_kib())
"""


def resident_after_free(mode: str, **environment: str) -> int:
    finished = run_child(LARGE_BLOCKS_FREED, mode, unset="MALLOC_MMAP_THRESHOLD_", **environment)
    before_kib, after_kib = (int(value) for value in finished.stdout.split())
    return after_kib - (before_kib - 100_000)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_large_blocks_go_back_to_the_system_when_freed_unless_the_environment_chose() -> None:
    assert resident_after_free("default") > 80_000  # glibc's own: kept in the heap
    assert resident_after_free("fixed") < 20_000
    assert resident_after_free("fixed", MALLOC_MMAP_THRESHOLD_="67108864") > 80_000
