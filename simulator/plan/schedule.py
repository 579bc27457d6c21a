"""Pipeline schedules: the order in which one pipeline rank runs its forward and backward passes.

1F1B (PipeDream-Flush, Narayanan et al. 2021, Sec. 2.2.1): rank `r` of `pp` runs
``pp - r - 1`` warm-up forwards, then alternates one forward and one backward, then drains the
remaining backwards. Interleaved 1F1B (Sec. 2.2.2) gives each rank `vpp` model chunks; the
order below is Megatron-LM's `forward_backward_pipelining_with_interleaving`: warm-up of
``2 (pp - r - 1) + (vpp - 1) pp`` chunk-forwards, micro-batches taken in groups of `pp`.

A pass is ``(kind, chunk, microbatch)`` with kind "F" or "B"; the virtual stage of chunk `c` on
rank `r` is ``c * pp + r``. Forward of virtual stage v needs v-1's forward of the same
micro-batch; backward of v needs v+1's backward (and its own forward).
"""

from __future__ import annotations

import numpy as np

Pass = tuple[str, int, int]


def one_f_one_b(pp: int, m: int, rank: int) -> list[Pass]:
    """Non-interleaved 1F1B order of rank `rank` for `m` micro-batches."""
    return _passes(order_arrays(pp, 1, m, rank))


def interleaved(pp: int, vpp: int, m: int, rank: int) -> list[Pass]:
    """Interleaved 1F1B order (Megatron-LM); needs `m` to be a multiple of `pp`."""
    return _passes(order_arrays(pp, vpp, m, rank))


def _passes(arrays: tuple[np.ndarray, ...]) -> list[Pass]:
    backward, chunk, micro = (a.tolist() for a in arrays)
    return [("B" if b else "F", c, x) for b, c, x in zip(backward, chunk, micro, strict=True)]


def schedule(pp: int, vpp: int, m: int, rank: int) -> list[Pass]:
    """The pass order of `rank`: interleaved when `vpp` > 1, else 1F1B."""
    if vpp > 1:
        return interleaved(pp, vpp, m, rank)
    return one_f_one_b(pp, m, rank)


def order_arrays(pp: int, vpp: int, m: int, rank: int) -> tuple[np.ndarray, ...]:
    """The pass order of `rank` as arrays (backward: bool, chunk, micro-batch), the one
    definition both engines read (`schedule` lists it for the SimPy engine; the closed form's
    pass recursion, `simulator.plan.makespan`, takes the arrays): warm-up forwards, then one
    forward and one backward in turn, then the last backwards. Forward number k is chunk
    ``(k mod pp vpp) // pp`` of micro-batch ``(k // pp vpp) pp + k mod pp``; backward k the
    same micro-batch's chunk counted from the last."""
    if vpp > 1 and m % pp:
        raise ValueError(f"interleaved 1F1B: micro-batches {m} must be a multiple of pp = {pp}")
    total = m * vpp
    if vpp > 1:
        warmup = total if m == pp else min((pp - rank - 1) * 2 + (vpp - 1) * pp, total)
    else:
        warmup = min(pp - rank - 1, m)
    group = pp * vpp
    k = np.arange(total)
    mb = (k // group) * pp + k % pp
    c_f = (k % group) // pp
    pos_f = np.where(k < warmup, k, warmup + 2 * (k - warmup))
    pos_b = np.where(k < total - warmup, warmup + 2 * k + 1, total + k)
    backward = np.zeros(2 * total, dtype=bool)
    chunk = np.empty(2 * total, dtype=np.int64)
    micro = np.empty(2 * total, dtype=np.int64)
    chunk[pos_f], micro[pos_f] = c_f, mb
    backward[pos_b], chunk[pos_b], micro[pos_b] = True, vpp - 1 - c_f, mb
    return backward, chunk, micro
