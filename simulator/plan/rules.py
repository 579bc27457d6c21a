"""Overlap rules, ZeRO sharding, and the closed form's named approximations of the schedule.

The SimPy engine executes the overlap (a collective beside a kernel slows that kernel by
`Options.comm_interference` while both run, `simulator.des.device`); the closed form prices
it with `exposed`. Both engines report the slowed kernel as compute and only the part of the
collective that outlasts its window as communication.
"""

from __future__ import annotations

import numpy as np

from simulator.costmodel.ops import Num


def beside(comm: Num, window: Num, phi: float) -> tuple[Num, Num]:
    """(exposed communication, compute slowdown) of a collective of `comm` seconds started
    with `window` seconds of compute beside it.

    The compute runs at ``1 - phi`` of its speed while the collective runs (SMs and HBM
    shared; `Options.comm_interference`), as `simulator.des.device` executes it: it ends at
    ``min(window + phi * comm, window / (1 - phi))``. The slowdown counts as compute (the
    kernel is running); only what the collective takes beyond the slowed kernel is exposed.
    """
    slowed = np.minimum(window + phi * comm, window / max(1.0 - phi, 1e-9))
    return np.maximum(0.0, comm - slowed), slowed - window


def shard_divisors(zero_stage: Num, dp: Num) -> tuple[Num, Num, Num]:
    """(weights, gradients, optimizer states) divisors per device under ZeRO stage
    `zero_stage` (Rajbhandari et al. 2020, "ZeRO", Sec. 5: stage 1 shards optimizer states,
    2 adds gradients, 3 adds parameters)."""
    one = np.ones_like(np.asarray(dp, dtype=float))
    z = np.asarray(zero_stage)
    w = np.where(z >= 3, dp, one)
    g = np.where(z >= 2, dp, one)
    o = np.where(z >= 1, dp, one)
    if np.ndim(w) == 0:
        return float(w), float(g), float(o)
    return w, g, o
