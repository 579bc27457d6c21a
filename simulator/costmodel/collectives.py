"""Collective communication: nccl-tests bus-bandwidth factors and alpha-beta times.

Sizes follow nccl-tests (PERFORMANCE.md): `size` is the buffer each rank holds for all-reduce
and broadcast, and the *total* (gathered) buffer for all-gather and reduce-scatter.
``algbw = size / time`` and ``busbw = algbw * factor`` with factor 2(n-1)/n for all-reduce,
(n-1)/n for all-gather and reduce-scatter, 1 for broadcast and send/recv. The bus bandwidth is
what a link of that bandwidth per direction sustains, so the time on a ring of per-rank
bandwidth `bw` (bytes/s per direction) and per-step latency `alpha` is

    t = steps * alpha + size * factor / bw

with steps = 2(n-1) for a ring all-reduce and n-1 for all-gather / reduce-scatter.
A double-binary-tree all-reduce (NCCL's choice at scale) takes 2*ceil(log2(n)) latency steps
and moves 2*size per rank at bandwidth bw; the all-reduce time is the faster of ring and tree.
`ring_time` and `tree_time` are the two forms, the only place either formula is written;
`collective_time` is the cost model's pick and the SimPy engine builds the one it picks.
"""

from __future__ import annotations

import numpy as np

from simulator.costmodel.ops import Num

COLLECTIVES = (
    "all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv", "all_to_all"
)  # fmt: skip


def bus_factor(collective: str, n: Num) -> Num:
    """nccl-tests' busbw / algbw factor for `collective` over `n` ranks."""
    n = np.asarray(n, dtype=float)
    if collective == "all_reduce":
        return np.where(n > 1, 2 * (n - 1) / np.maximum(n, 1), 0.0)
    if collective in ("all_gather", "reduce_scatter", "all_to_all"):
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
    if collective in ("send_recv", "all_to_all"):
        return np.where(n > 1, 1.0, 0.0)
    raise ValueError(f"collective: {collective!r} must be one of {COLLECTIVES}")


def ring_time(collective: str, size_bytes: Num, n: Num, bw_bytes_per_s: Num, alpha_s: Num) -> Num:
    """Alpha-beta time of the ring form of `collective` (s); 0 for a group of one rank.

    ``steps * alpha + size * factor / bw`` with nccl-tests' steps and bus factor (broadcast
    and send/recv: their one-hop/pipelined form). `bw_bytes_per_s` is the bus bandwidth per
    rank per direction the group can sustain, `alpha_s` the latency per step.
    """
    n_arr = np.asarray(n, dtype=float)
    return (
        latency_steps(collective, n_arr) * alpha_s
        + size_bytes * bus_factor(collective, n_arr) / bw_bytes_per_s
    )


def tree_latency_steps(n: Num) -> Num:
    """Latency steps of a pipelined double-binary-tree all-reduce: 2 ceil(log2 n), 0 for n <= 1."""
    n = np.asarray(n, dtype=float)
    return np.where(n > 1, 2 * np.ceil(np.log2(np.maximum(n, 2))), 0.0)


TREE_BYTES_FACTOR = 2.0
"""Bytes a rank moves in a double-binary-tree all-reduce per byte of buffer (dimensionless):
the reduce up and the broadcast down each move the whole buffer (NCCL's tree, pipelined)."""


def tree_time(collective: str, size_bytes: Num, n: Num, bw_bytes_per_s: Num, alpha_s: Num) -> Num:
    """Alpha-beta time of a double-binary-tree all-reduce (s); 0 for a group of one rank.

    ``2 ceil(log2 n) * alpha + 2 * size / bw``; arguments as in `ring_time`. Only all-reduce
    has a tree form here.
    """
    if collective != "all_reduce":
        raise ValueError(f"collective: {collective!r} has no tree form (only all_reduce)")
    n_arr = np.asarray(n, dtype=float)
    tree = tree_latency_steps(n_arr) * alpha_s + TREE_BYTES_FACTOR * size_bytes / bw_bytes_per_s
    return np.where(n_arr > 1, tree, 0.0)


def collective_time(
    collective: str, size_bytes: Num, n: Num, bw_bytes_per_s: Num, alpha_s: Num
) -> Num:
    """Alpha-beta time of one collective (s); 0 for a group of one rank.

    The ring form (`ring_time`); for all-reduce the faster of ring and tree (`tree_time`), as
    NCCL's tuner picks. `bw_bytes_per_s` is the bus bandwidth per rank per direction the group
    can sustain.
    """
    t = ring_time(collective, size_bytes, n, bw_bytes_per_s, alpha_s)
    if collective == "all_reduce":
        t = np.minimum(t, tree_time(collective, size_bytes, n, bw_bytes_per_s, alpha_s))
    return t


def fitted_time(alpha_s: float, beta_s_per_byte: float, size_bytes: Num) -> Num:
    """A measured alpha-beta fit: ``t = alpha + size * beta``."""
    return alpha_s + size_bytes * beta_s_per_byte


def algbw(size_bytes: float, time_s: float) -> float:
    """nccl-tests algorithm bandwidth (bytes/s)."""
    return size_bytes / time_s


def busbw(collective: str, size_bytes: float, time_s: float, n: int) -> float:
    """nccl-tests bus bandwidth (bytes/s)."""
    return float(algbw(size_bytes, time_s) * bus_factor(collective, n))
