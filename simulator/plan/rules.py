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
