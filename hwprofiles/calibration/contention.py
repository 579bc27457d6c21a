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
(`HardwareProfile.host_contention`, `host_memory_contention`). An earlier version timed one
mix of both, whose bf16 figure (0.95) was set by the streaming pass and hid the GEMMs' 0.5.

The alone and busy runs alternate, `rounds` times each, and the factor is the ratio of their
medians: a shared VM's speed drifts over tens of seconds (one alone-then-busy pair on
2026-11-29 read 1.0 for fp32, a busy run faster than the alone one, while the validation
runs of the same hour showed 3-18 % contention), and alternating spreads the drift over both.
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
optimizer-like pass over 4 M fp32 values (`stream`)."""
STREAM_ELEMENTS = 4 * 2**20
SIXTEEN_BIT_REPS = 4
"""Repetitions of 16-bit GEMMs per fp32 repetition: the calibrated bf16 GEMM peak of this VM
(AMX, 1.29-1.33 TFLOP/s) is about 8x the fp32 one (0.157-0.16 TFLOP/s; profiles of
2026-11-29), and the kernel reached about 5.5x; 4x keeps the bf16 window at 0.5-0.9 s, of
the fp32 one's order (about 1 s)."""
CONTENTION_COLUMNS = (
    "kernel", "dtype", "ranks", "threads_per_rank", "reps", "rounds", "alone_s", "busy_s",
    "factor",
)  # fmt: skip


def _kernel(kernel: str, dtype_key: str, threads: int, reps: int, barrier: Any, out: Any) -> None:
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    dt = torch_dtype(dtype_key)
    if kernel == "gemm":
        x = torch.randn(TOKENS, HIDDEN, generator=g).to(dt)
        w1 = torch.randn(HIDDEN, 4 * HIDDEN, generator=g).to(dt)
        w2 = torch.randn(4 * HIDDEN, HIDDEN, generator=g).to(dt)
        wv = torch.randn(HIDDEN, VOCAB, generator=g).to(dt)

        def step() -> Any:
            return ((x @ w1) @ w2) @ wv

    else:
        state = torch.zeros(STREAM_ELEMENTS)
        grad = torch.randn(STREAM_ELEMENTS, generator=g)

        def step() -> Any:  # streams 80 MiB (32 + 48), like an AdamW moment
            return state.mul_(0.9).add_(grad, alpha=0.1)

    with torch.no_grad():
        for _ in range(3):
            step()
        if barrier is not None:
            barrier.wait()
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        out.put(time.perf_counter() - t0)


def _run(n: int, kernel: str, dtype_key: str, threads: int, reps: int, timeout_s: float) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    barrier = ctx.Barrier(n) if n > 1 else None
    procs = [
        ctx.Process(target=_kernel, args=(kernel, dtype_key, threads, reps, barrier, q))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    try:
        times = [q.get(timeout=timeout_s) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
    return statistics.median(times)


def measure_contention(
    dtypes: tuple[str, ...],
    threads_per_rank: int,
    n: int,
    reps: int = 40,
    timeout_s: float = 120,
    rounds: int = 3,
) -> list[dict[str, Any]]:
    """One row per GEMM dtype and one for the fp32 streaming pass: median time alone and with
    `n` ranks busy over `rounds` alternating pairs of runs, and the throughput factor."""
    cases = [("gemm", d) for d in dtypes if d != "tf32"] + [("stream", "fp32")]
    rows = []
    for kernel, dt in cases:
        k_reps = reps * (SIXTEEN_BIT_REPS if kernel == "gemm" and dt in ("bf16", "fp16") else 1)
        alone_s, busy_s = [], []
        for _ in range(rounds):
            alone_s.append(_run(1, kernel, dt, threads_per_rank, k_reps, timeout_s))
            busy_s.append(_run(n, kernel, dt, threads_per_rank, k_reps, timeout_s))
        alone, busy = statistics.median(alone_s), statistics.median(busy_s)
        rows.append(
            {
                "kernel": kernel,
                "dtype": dt,
                "ranks": n,
                "threads_per_rank": threads_per_rank,
                "reps": k_reps,
                "rounds": rounds,
                "alone_s": alone,
                "busy_s": busy,
                "factor": min(1.0, alone / busy),
            }
        )
    return rows
