"""Scheduling policies, each a combination of four knobs (named as batch schedulers name them).

- ``fifo``: jobs start strictly in submission order; a job that does not fit blocks the queue.
- ``backfill``: EASY backfilling (Lifka 1995, "The ANL/IBM SP scheduling system"; Mu'alem &
  Feitelson 2001, IEEE TPDS 12(6)): the queue's head gets a reservation at the earliest time it
  can start; later jobs may start now if they do not delay that reservation.
- ``priority``: the queue is ordered by priority (then submission); a blocked head may preempt
  running preemptible jobs of lower priority (they lose the work since their last checkpoint and
  pay a restart), then EASY backfilling behind it.
- ``gang``: gang scheduling with time slicing (Ousterhout 1982, "Scheduling techniques for
  concurrent systems"): every quantum the jobs take turns round-robin for the pools; a job
  switched out saves its state (no work lost) and pays its restart when switched back in.

Every policy allocates gangs: all of a job's GPUs start together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwprofiles.errors import UserError

GANG_QUANTUM_S = 3600.0
"""Time slice of the gang policy (s). A policy choice: with restarts of minutes, a one-hour slice
keeps switching overhead to a few per cent."""


@dataclass(frozen=True)
class Policy:
    name: str
    order: str
    """"submit" (arrival order) or "priority" (priority, then arrival)."""
    backfill: bool = False
    preempt: bool = False
    quantum_s: float | None = None
    """Time slice for gang scheduling; None: jobs run to completion once started."""


POLICIES = {
    "fifo": Policy("fifo", "submit"),
    "backfill": Policy("backfill", "submit", backfill=True),
    "priority": Policy("priority", "priority", backfill=True, preempt=True),
    "gang": Policy("gang", "submit", quantum_s=GANG_QUANTUM_S),
}


def get_policy(name: str) -> Policy:
    """The named policy; unknown names raise ValueError listing the known ones."""
    if name not in POLICIES:
        raise UserError(f"policy: {name!r} is not a policy (known: {', '.join(POLICIES)})")
    return POLICIES[name]
