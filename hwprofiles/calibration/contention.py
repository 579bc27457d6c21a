"""Host contention: how much one CPU rank slows down when the host's other ranks compute too.

GPUs are separate devices; CPU "devices" (ranks of `threads_per_rank` threads) share one
host's caches, memory bandwidth and power budget. This benchmark runs the same small
transformer-like kernel mix (GEMMs, GELU, LayerNorm, residual add) in one process alone and
then in `n` processes at once, started together at a barrier, and reports per dtype

    factor = t(alone) / t(all n busy)    (1.0 = no contention, 0.5 = half speed)

which the models apply to a device's compute and memory throughput when a job keeps more
than one device of a node busy (`HardwareProfile.host_contention`).

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
"""Shape of the kernel mix: a small layer (tokens x hidden, 4x MLP), a logits GEMM whose
weight (hidden x vocab) outgrows a core's L2 cache, and an optimizer-like pass over 4 M
fp32 values: the parts of a step that share a host's caches and memory bandwidth."""
CONTENTION_COLUMNS = (
    "dtype", "ranks", "threads_per_rank", "reps", "rounds", "alone_s", "busy_s", "factor",
)  # fmt: skip


def _mix(dtype_key: str, threads: int, reps: int, barrier: Any, out: Any) -> None:
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    dt = torch_dtype(dtype_key)
    x = torch.randn(TOKENS, HIDDEN, generator=g).to(dt)
    w1 = torch.randn(HIDDEN, 4 * HIDDEN, generator=g).to(dt)
    w2 = torch.randn(4 * HIDDEN, HIDDEN, generator=g).to(dt)
    wv = torch.randn(HIDDEN, VOCAB, generator=g).to(dt)
    ln = torch.nn.LayerNorm(HIDDEN).to(dt)
    state = torch.zeros(4 * 2**20)
    grad = torch.randn(4 * 2**20, generator=g)

    def step() -> Any:
        y = torch.nn.functional.gelu(x @ w1) @ w2
        logits = ln(y + x) @ wv
        state.mul_(0.9).add_(grad, alpha=0.1)  # streams 80 MiB (32 + 48), like an AdamW moment
        return logits

    with torch.no_grad():
        for _ in range(3):
            step()
        if barrier is not None:
            barrier.wait()
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        out.put(time.perf_counter() - t0)


def _run(n: int, dtype_key: str, threads: int, reps: int, timeout_s: float) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    barrier = ctx.Barrier(n) if n > 1 else None
    procs = [
        ctx.Process(target=_mix, args=(dtype_key, threads, reps, barrier, q)) for _ in range(n)
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
    """One row per dtype: median time alone and with `n` ranks busy over `rounds` alternating
    pairs of runs, and the throughput factor."""
    rows = []
    for dt in dtypes:
        if dt == "tf32":
            continue
        alone_s, busy_s = [], []
        for _ in range(rounds):
            alone_s.append(_run(1, dt, threads_per_rank, reps, timeout_s))
            busy_s.append(_run(n, dt, threads_per_rank, reps, timeout_s))
        alone, busy = statistics.median(alone_s), statistics.median(busy_s)
        rows.append(
            {
                "dtype": dt,
                "ranks": n,
                "threads_per_rank": threads_per_rank,
                "reps": reps,
                "rounds": rounds,
                "alone_s": alone,
                "busy_s": busy,
                "factor": min(1.0, alone / busy),
            }
        )
    return rows
