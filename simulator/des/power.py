"""Power and energy of each simulated device, from its recorded activities.

A device is in one state at a time, by priority: *computing* (a compute kernel runs: full
activity, as the closed form counts compute), *memory-bound* (the optimizer step), *communicating*
(only communication kernels run) or *idle* (waiting for a peer, a transfer or the step's end).
Power per state is the profile's `PowerModel`: ``idle + (tdp - idle) * activity``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from hwprofiles.profile import PowerModel
from simulator.des.engine import Row

STATES = ("idle", "communicating", "memory_bound", "computing")


_STATE_OF = {
    **dict.fromkeys(("compute", "recompute"), STATES.index("computing")),
    **dict.fromkeys(("optimizer", "copies", "hooks"), STATES.index("memory_bound")),
}
"""Index in `STATES` of the categories that are not communication."""
_COMMUNICATING = STATES.index("communicating")


def state_of(category: str) -> int:
    """Index in `STATES` of a recorded category."""
    return _STATE_OF.get(category, _COMMUNICATING)


def activities(pm: PowerModel) -> np.ndarray:
    """Power (W) per state, in `STATES` order."""
    act = [0.0, pm.comm_activity, pm.memory_bound_activity, 1.0]
    return np.array([float(pm.power(a)) for a in act])


def device_power(rows: Iterable[Row], horizon_s: float, pm: PowerModel) -> dict[str, Any]:
    """Time and energy per state of one device over [0, horizon_s], and its power log.

    Returns ``{"time_s": {state: s}, "energy_j": J, "log": [(t, watts), ...]}``; the log has an
    entry at each change of power.
    """
    state, comm = _STATE_OF.get, _COMMUNICATING
    spans = [(r.start, r.end, state(r.category, comm)) for r in rows if r.end > r.start]
    arr = np.array(spans, dtype=float).reshape(-1, 3)
    edges = np.unique(np.concatenate([[0.0, horizon_s], arr[:, 0], arr[:, 1]]))
    edges = edges[(edges >= 0.0) & (edges <= horizon_s)]
    state = np.zeros(max(len(edges) - 1, 0), dtype=int)
    for level in range(1, len(STATES)):
        sel = arr[arr[:, 2] == level]
        if not len(sel):
            continue
        cnt = np.zeros(len(edges) + 1)
        np.add.at(cnt, np.searchsorted(edges, sel[:, 0]), 1)
        np.add.at(cnt, np.searchsorted(edges, sel[:, 1]), -1)
        covered = np.cumsum(cnt)[: len(edges) - 1] > 0
        state = np.where(covered, np.maximum(state, level), state)
    watts = activities(pm)
    dt = np.diff(edges)
    time_s = {s: float(dt[state == k].sum()) for k, s in enumerate(STATES)}
    energy = float((dt * watts[state]).sum())
    change = np.ones(len(state), dtype=bool)
    change[1:] = watts[state[1:]] != watts[state[:-1]]
    log = [
        (float(t), float(w)) for t, w in zip(edges[:-1][change], watts[state][change], strict=True)
    ]
    return {"time_s": time_s, "energy_j": energy, "log": log}
