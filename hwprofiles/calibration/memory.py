"""Memory bandwidth: a copy and a STREAM-style triad over array sizes (fp32), and a copy into
a newly allocated buffer ("fresh_copy": what a framework pays when it frees its buffers after
each use and allocates them again; without a caching allocator fresh pages fault on first
touch).

Bytes counted as STREAM does (McCalpin, "STREAM: Sustainable Memory Bandwidth"): copy moves
2 arrays (read a, write b), triad ``a = b + s * c`` moves 3. Write-allocate traffic is not
counted, so the figure is what a streaming kernel achieves, comparable across machines.
Arrays smaller than the last-level cache measure the cache, not DRAM; the profile's memory
bandwidth is taken at the largest size.
"""

from __future__ import annotations

from collections.abc import Callable

from hwprofiles.calibration.device import synchronizer
from hwprofiles.calibration.plan import Plan
from hwprofiles.calibration.timing import Repeats, time_op

MEMORY_COLUMNS = (
    "op", "array_bytes", "bytes", "median_s", "min_s", "max_s", "count", "noisy",
    "bytes_per_s",
)  # fmt: skip
TRIAD_SCALAR = 3.0  # STREAM's scalar; any value works
MEMORY_OPS = ("copy", "triad", "fresh_copy")


def bench_memory(op: str, array_bytes: int, device: str, repeats: Repeats) -> dict[str, object]:
    """Time one copy or triad over fp32 arrays of `array_bytes` each (bytes/s by STREAM rules)."""
    import torch

    n = max(1, array_bytes // 4)
    a = torch.zeros(n, device=device)
    b = torch.ones(n, device=device)
    c = torch.full((n,), 2.0, device=device)
    if op == "copy":
        fn, moved = (lambda: b.copy_(a)), 2 * n * 4
    elif op == "fresh_copy":
        fn, moved = (lambda: torch.empty_like(a).copy_(a)), 2 * n * 4
    elif op == "triad":
        fn, moved = (lambda: torch.add(b, c, alpha=TRIAD_SCALAR, out=a)), 3 * n * 4
    else:
        raise ValueError(f"memory op: {op!r} is not one of {', '.join(MEMORY_OPS)}")
    with torch.inference_mode():
        timing = time_op(fn, repeats, synchronizer(device))
    return {
        "op": op,
        "array_bytes": n * 4,
        "bytes": moved,
        **timing.as_row(),
        "bytes_per_s": moved / timing.median_s,
    }


def run_memory(plan: Plan, device: str, tick: Callable[[str], None]) -> list[dict[str, object]]:
    """Copy and triad rows for every array size of `plan`."""
    rows = []
    for size in plan.memory_bytes:
        for op in MEMORY_OPS:
            rows.append(bench_memory(op, size, device, plan.repeats))
            tick(f"memory {op} {size / 2**20:g} MiB")
    return rows
