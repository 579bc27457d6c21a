"""Collective communication: nccl-tests bus-bandwidth factors and alpha-beta times.

Sizes follow nccl-tests (PERFORMANCE.md): `size` is the buffer each rank holds for all-reduce
and broadcast, and the *total* (gathered) buffer for all-gather and reduce-scatter.
``algbw = size / time`` and ``busbw = algbw * factor`` with factor 2(n-1)/n for all-reduce,
(n-1)/n for all-gather and reduce-scatter, 1 for broadcast and send/recv. The bus bandwidth is
what a link of that bandwidth per direction sustains, so the time on a ring of per-rank
bandwidth `bw` (bytes/s per direction) and per-step latency `alpha` is

    t = steps * alpha + size * factor / bw

with steps = 2(n-1) for a ring all-reduce and n-1 for all-gather / reduce-scatter.
A double-binary-tree all-reduce (NCCL's choice at scale) takes 2*log2(n) latency steps and
moves 2*size per rank at bandwidth bw; the all-reduce time is the faster of ring and tree.
"""

from __future__ import annotations

import numpy as np

from simulator.costmodel.ops import Num

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv")


def bus_factor(collective: str, n: Num) -> Num:
    """nccl-tests' busbw / algbw factor for `collective` over `n` ranks."""
    n = np.asarray(n, dtype=float)
    if collective == "all_reduce":
        return np.where(n > 1, 2 * (n - 1) / np.maximum(n, 1), 0.0)
    if collective in ("all_gather", "reduce_scatter"):
        return np.where(n > 1, (n - 1) / np.maximum(n, 1), 0.0)
    if collective in ("broadcast", "send_recv"):
        return np.where(n > 1, 1.0, 0.0)
    raise ValueError(f"collective: {collective!r} must be one of {COLLECTIVES}")


def latency_steps(collective: str, n: Num) -> Num:
    n = np.asarray(n, dtype=float)
    if collective == "all_reduce":
        return np.where(n > 1, 2 * (n - 1), 0.0)
    if collective in ("all_gather", "reduce_scatter"):
        return np.where(n > 1, n - 1, 0.0)
    if collective == "broadcast":
        return np.where(n > 1, np.ceil(np.log2(np.maximum(n, 2))), 0.0)
    if collective == "send_recv":
        return np.where(n > 1, 1.0, 0.0)
    raise ValueError(f"collective: {collective!r} must be one of {COLLECTIVES}")


def collective_time(
    collective: str, size_bytes: Num, n: Num, bw_bytes_per_s: Num, alpha_s: Num
) -> Num:
    """Alpha-beta time of one collective (s); 0 for a group of one rank.

    `bw_bytes_per_s` is the bus bandwidth per rank per direction the group can sustain.
    """
    n_arr = np.asarray(n, dtype=float)
    ring = (
        latency_steps(collective, n_arr) * alpha_s
        + size_bytes * bus_factor(collective, n_arr) / bw_bytes_per_s
    )
    if collective == "all_reduce":
        tree = (
            2 * np.ceil(np.log2(np.maximum(n_arr, 2))) * alpha_s + 2 * size_bytes / bw_bytes_per_s
        )
        ring = np.where(n_arr > 1, np.minimum(ring, tree), 0.0)
    return ring


def fitted_time(alpha_s: float, beta_s_per_byte: float, size_bytes: Num) -> Num:
    """A measured alpha-beta fit: ``t = alpha + size * beta``."""
    return alpha_s + size_bytes * beta_s_per_byte


def algbw(size_bytes: float, time_s: float) -> float:
    """nccl-tests algorithm bandwidth (bytes/s)."""
    return size_bytes / time_s


def busbw(collective: str, size_bytes: float, time_s: float, n: int) -> float:
    """nccl-tests bus bandwidth (bytes/s)."""
    return float(algbw(size_bytes, time_s) * bus_factor(collective, n))
