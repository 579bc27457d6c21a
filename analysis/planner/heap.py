"""Keep freed heap memory in the process while the planner searches (glibc only).

`evaluate` allocates and frees a few hundred temporary arrays per chunk of layouts (~128 KiB
each at `search.CHUNK` float64 values). glibc's malloc hands the top of the heap back to the
operating system as soon as it is free, so each chunk's arrays land on fresh pages and fault
them in again. Asking malloc to keep some padding at the top of the heap (``M_TOP_PAD``, the
same setting as the ``MALLOC_TOP_PAD_`` environment variable) reuses those pages instead.
Results are unchanged (only where the arrays live changes); the process keeps up to
`TOP_PAD_BYTES` more memory. Measured (this repository, 2026-12-03, 2-core machine, load ~4):
`evaluate_chunked` over Llama-3-70B's 33,048 layouts on 1,024 H100 took 29.5-31.7 ms of CPU
with the padding against 37.3-39.0 ms without (`benchmarks/vs_commit.py` for the rate).
"""

from __future__ import annotations

import ctypes
import functools

M_TOP_PAD = -2
"""glibc's `mallopt` parameter number for the top padding (glibc malloc/malloc.h)."""

TOP_PAD_BYTES = 16 * 2**20
"""Bytes malloc keeps at the top of the heap: above one chunk's temporaries that are freed
together (a planning choice; 16 MiB measured as fast as 64 MiB)."""


@functools.cache
def keep_freed_heap() -> bool:
    """Set the top padding once per process; False where the C library has no `mallopt`
    (not glibc) or refuses it."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_TOP_PAD, TOP_PAD_BYTES) == 1
