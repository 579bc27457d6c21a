"""Host contention: how much one CPU rank slows down when the host's other ranks compute too.

GPUs are separate devices; CPU "devices" (ranks of `threads_per_rank` threads) share one
host's caches, memory bandwidth, matrix units and power budget. This benchmark runs a kernel
in one process alone and then in `n` processes at once, started together at a barrier, and
reports

    factor = t(alone) / t(all n busy)    (1.0 = no contention, 0.5 = half speed)

for two kernels, because they contend for different things: the GEMMs of a small layer in
each dtype (matrix units; on this VM two ranks' bf16 AMX GEMMs ran at 0.41-0.56 of their
speed alone in five of six standalone trials and at 0.99 in one, while fp32 AVX-512 GEMMs
kept 0.98-1.01, 2026-11-29), and an optimizer-like fp32 streaming pass (memory bandwidth,
caches). The models scale a device's GEMM peak per dtype and
its memory and copy rates by them when a job keeps more than one device of a node busy
(`HostProfile.contention`, `memory_contention`; `hwprofiles.host`). An earlier version timed one
mix of both, whose bf16 figure (0.95) was set by the streaming pass and hid the GEMMs' 0.5.

The `n` ranks are started once per kernel and kept; the alone and busy windows then alternate,
`rounds` pairs, and the factor is the median over the pairs of each pair's ratio: a shared
VM's speed drifts over seconds to minutes (one alone-then-busy pair on 2026-11-29 read 1.0
for fp32, a busy run faster than the alone one, while the validation runs of the same hour
showed 3-18 % contention), and a pair's two windows, a fraction of a second apart, see the
same drift. Until 2026-12-03 every window started fresh processes (torch imported each
time, three pairs): the fp32 factor of five quick calibrations in one morning read 0.76-1.00.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from typing import Any

from hwprofiles.calibration.device import torch_dtype

TOKENS, HIDDEN, VOCAB = 512, 256, 8192
"""Shapes of the kernels: a layer's MLP GEMMs (tokens x hidden, 4x MLP) and a logits GEMM
whose weight (hidden x vocab) outgrows a core's L2 cache, in the dtype measured; and an
optimizer-like pass over 4 M fp32 values (`stream`). `TOKENS` is the most rows a GEMM step
uses; on a CPU whose 16-bit GEMMs have no matrix unit the rows shrink (`_sized`)."""
STREAM_ELEMENTS = 4 * 2**20
STEP_TARGET_S = 0.05
"""Aimed time of one GEMM step (s): rows are cut until a step takes about this long. On an
AMD EPYC (Zen 3) VM without AMX or AVX-512 BF16 (2026-12-02) a bf16 step of 512 rows took
5-14 s, about 100x the fp32 one, and the fixed-size benchmark overran its 120 s timeout."""
WINDOW_S = 0.25
"""Aimed length of one timed window (s): repetitions are chosen from a probe to fill it (a
choice: short enough that a pair's two windows see the same host speed, long enough that a
window holds several steps)."""
PROBE_ROWS = 16
CONTENTION_COLUMNS = (
    "kernel", "dtype", "ranks", "threads_per_rank", "tokens", "reps", "rounds", "alone_s",
    "busy_s", "factor",
)  # fmt: skip


def _gemm_step(dtype_key: str, rows: int) -> Any:
    import torch

    dt = torch_dtype(dtype_key)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, HIDDEN, generator=g).to(dt)
    w1 = torch.randn(HIDDEN, 4 * HIDDEN, generator=g).to(dt)
    w2 = torch.randn(4 * HIDDEN, HIDDEN, generator=g).to(dt)
    wv = torch.randn(HIDDEN, VOCAB, generator=g).to(dt)

    def step() -> Any:
        return ((x @ w1) @ w2) @ wv

    return step


def _step_of(kernel: str, dtype_key: str, rows: int) -> Any:
    import torch

    if kernel == "gemm":
        return _gemm_step(dtype_key, rows)
    g = torch.Generator().manual_seed(0)
    state = torch.zeros(STREAM_ELEMENTS)
    grad = torch.randn(STREAM_ELEMENTS, generator=g)

    def step() -> Any:  # streams 80 MiB (32 + 48), like an AdamW moment
        return state.mul_(0.9).add_(grad, alpha=0.1)

    return step


def _worker(
    kernel: str, dtype_key: str, threads: int, reps: int, rows: int, orders: Any, barrier: Any,
    out: Any,
) -> None:  # fmt: skip
    """One rank of `measure_contention` (`serve` of its kernel's step)."""
    import torch

    torch.set_num_threads(threads)
    step = _step_of(kernel, dtype_key, rows)
    with torch.no_grad():
        serve(step, reps, orders, barrier, out)


def serve(step: Any, reps: int, orders: Any, barrier: Any, out: Any) -> None:
    """One rank, kept for every window, after a few untimed `step`s: on "alone" it times
    `reps` steps by itself, on "busy" after a barrier with the other ranks, on None it
    returns (`alternate` gives the orders)."""
    for _ in range(min(3, reps)):
        step()
    while (order := orders.get()) is not None:
        if order == "busy":
            barrier.wait()
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        out.put(time.perf_counter() - t0)


def _sized(kernel: str, dtype_key: str, threads: int, max_reps: int) -> tuple[int, int]:
    """(rows, reps) for one case: a probe of `PROBE_ROWS` rows in this process sets the rows
    so that a step takes about `STEP_TARGET_S` (at most `TOKENS`), and the repetitions so
    that a window lasts about `WINDOW_S` (1 to `max_reps`). The stream pass keeps its size."""
    import torch

    from hwprofiles.calibration.device import torch_threads

    if kernel != "gemm":
        return 0, max_reps
    with torch_threads(threads), torch.no_grad():
        step = _gemm_step(dtype_key, PROBE_ROWS)
        step()
        t0 = time.perf_counter()
        step()
        per_row = max(time.perf_counter() - t0, 1e-9) / PROBE_ROWS
    rows = int(min(TOKENS, max(PROBE_ROWS, STEP_TARGET_S / per_row)))
    reps = int(min(max_reps, max(1, WINDOW_S / (rows * per_row))))
    return rows, reps


def alternate(
    n: int, target: Any, args: tuple, rounds: int, timeout_s: float
) -> tuple[list[float], list[float]]:
    """(alone, busy) window times of `rounds` alternating pairs: `n` ranks started once,
    each ``target(*args, orders, barrier, out)`` (a top-level function that `serve`s)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    barrier = ctx.Barrier(n)
    orders = [ctx.Queue() for _ in range(n)]
    procs = [ctx.Process(target=target, args=(*args, q, barrier, out)) for q in orders]
    for p in procs:
        p.start()
    alone, busy = [], []
    try:
        for _ in range(rounds):
            orders[0].put("alone")
            alone.append(out.get(timeout=timeout_s))
            for q in orders:
                q.put("busy")
            busy.append(statistics.median(out.get(timeout=timeout_s) for _ in procs))
    finally:
        for q in orders:
            q.put(None)
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
    return alone, busy


def measure_contention(
    dtypes: tuple[str, ...],
    threads_per_rank: int,
    n: int,
    reps: int = 40,
    timeout_s: float = 120,
    rounds: int = 3,
) -> list[dict[str, Any]]:
    """One row per GEMM dtype and one for the fp32 streaming pass: median window time alone
    and with `n` ranks busy over `rounds` alternating pairs, and the throughput factor, the
    median of the pairs' ratios (at most 1)."""
    cases = [("gemm", d) for d in dtypes if d != "tf32"] + [("stream", "fp32")]
    rows = []
    for kernel, dt in cases:
        tokens, k_reps = _sized(kernel, dt, threads_per_rank, reps)
        args = (kernel, dt, threads_per_rank, k_reps, tokens)
        alone_s, busy_s = alternate(n, _worker, args, rounds, timeout_s)
        alone, busy = statistics.median(alone_s), statistics.median(busy_s)
        ratio = statistics.median(a / b for a, b in zip(alone_s, busy_s, strict=True))
        rows.append(
            {
                "kernel": kernel,
                "dtype": dt,
                "ranks": n,
                "threads_per_rank": threads_per_rank,
                "tokens": tokens,
                "reps": k_reps,
                "rounds": rounds,
                "alone_s": alone,
                "busy_s": busy,
                "factor": min(1.0, ratio),
            }
        )
    return rows
