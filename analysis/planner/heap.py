"""Keep freed heap memory in the process while the planner searches (glibc only).

`evaluate` allocates and frees a few hundred temporary arrays per chunk of layouts (128-256 KiB
each at `search.CHUNK` or `search.CHUNK_HEAP_KEPT` float64 values). glibc's malloc serves
arrays of that size with fresh `mmap` pages, or hands the top of the heap back to the
operating system as soon as it is free, so each chunk's arrays fault their pages in again.
Two `mallopt` settings reuse those pages instead: padding kept at the top of the heap
(``M_TOP_PAD``, as the ``MALLOC_TOP_PAD_`` environment variable), and arrays under 32 MiB
served from the heap (``M_MMAP_THRESHOLD``: setting the padding freezes glibc's own
threshold, which otherwise grows to that ceiling).
Results are unchanged (only where the arrays live changes); the process keeps up to
`TOP_PAD_BYTES` more memory.

Who calls it: the `llmcap` command, once, at its entry point (`analysis.cli.main.main`); the
library never does, since a process-wide allocator setting is the application's choice, not a
function's. A program that searches many layouts through the library can call
`keep_freed_heap()` itself, or start Python with ``MALLOC_TOP_PAD_=67108864
MALLOC_MMAP_THRESHOLD_=33554432`` (the same two settings).

Measured (2026-12-03, 2-core machine, load ~3-4, CPU time of
`evaluate_chunked` over Llama-3-70B's 33,048 layouts on 1,024 H100): 37-39 ms without either
setting at 16,384 layouts a chunk; 30-32 ms with 16 MiB of padding; 27 ms with 64 MiB and
the threshold at 32,768 layouts a chunk. Again after the third pass (2026-12-03 07:00 UTC, load
~2.5, same search): without the settings 29-30 ms at 16,384 layouts a chunk and 31-34 ms at
32,768; with them 27 ms and 24 ms. Hence two chunk sizes (`search.evaluate_chunked`).
"""

from __future__ import annotations

import ctypes
import functools
import os

M_TOP_PAD = -2
"""glibc's `mallopt` parameter number for the top padding (glibc malloc/malloc.h)."""

M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameter number for the size above which a block gets its own mmap."""

MMAP_THRESHOLD_BYTES = 32 * 2**20
"""Blocks under this come from the heap: glibc's own ceiling for its growing threshold
(DEFAULT_MMAP_THRESHOLD_MAX on 64-bit, glibc malloc/malloc.c)."""

TOP_PAD_BYTES = 64 * 2**20
"""Bytes malloc keeps at the top of the heap: above one chunk's temporaries that are freed
together (a tuning choice: with 16 MiB, 32,768 layouts a chunk measured slower than 16,384)."""


_kept = False


@functools.cache
def keep_freed_heap() -> bool:
    """Set the top padding and the mmap threshold once per process; False where the C
    library has no `mallopt` (not glibc) or refuses them."""
    global _kept
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    pad = mallopt(M_TOP_PAD, TOP_PAD_BYTES) == 1
    _kept = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and pad
    return _kept


def heap_kept() -> bool:
    """Whether this process keeps freed heap pages: `keep_freed_heap` succeeded, or the
    environment set glibc's top padding (``MALLOC_TOP_PAD_``). The planner's chunk size
    follows it (`search.evaluate_chunked`)."""
    return _kept or "MALLOC_TOP_PAD_" in os.environ
