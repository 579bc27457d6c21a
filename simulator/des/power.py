"""Power and energy of each simulated device, from its recorded activities.

A device is in one state at a time, by priority: *computing* (a compute kernel runs: full
activity, as the closed form counts compute), *memory-bound* (the optimizer step), *communicating*
(only communication kernels run) or *idle* (waiting for a peer, a transfer or the step's end).
Power per state is the profile's `PowerModel`: ``idle + (tdp - idle) * activity``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hwprofiles.profile import PowerModel
from simulator.des.engine import Row

STATES = ("idle", "communicating", "memory_bound", "computing")


def state_of(category: str) -> int:
    """Index in `STATES` of a recorded category."""
    if category in ("compute", "recompute"):
        return 3
    if category == "optimizer":
        return 2
    return 1


def activities(pm: PowerModel) -> np.ndarray:
    """Power (W) per state, in `STATES` order."""
    act = [0.0, pm.comm_activity, pm.memory_bound_activity, 1.0]
    return np.array([float(pm.power(a)) for a in act])


def device_power(rows: Iterable[Row], horizon_s: float, pm: PowerModel) -> dict[str, object]:
    """Time and energy per state of one device over [0, horizon_s], and its power log.

    Returns ``{"time_s": {state: s}, "energy_j": J, "log": [(t, watts), ...]}``; the log has an
    entry at each change of power.
    """
    by_state: list[list[tuple[float, float]]] = [[] for _ in STATES]
    for r in rows:
        if r.end > r.start:
            by_state[state_of(r.category)].append((r.start, r.end))
    bounds = {0.0, horizon_s}
    for spans in by_state:
        for a, b in spans:
            bounds.add(a)
            bounds.add(b)
    edges = np.array(sorted(t for t in bounds if 0.0 <= t <= horizon_s))
    state = np.zeros(max(len(edges) - 1, 0), dtype=int)
    for level in range(1, len(STATES)):
        spans = by_state[level]
        if not spans:
            continue
        arr = np.array(spans)
        cnt = np.zeros(len(edges) + 1)
        np.add.at(cnt, np.searchsorted(edges, arr[:, 0]), 1)
        np.add.at(cnt, np.searchsorted(edges, arr[:, 1]), -1)
        covered = np.cumsum(cnt)[: len(edges) - 1] > 0
        state = np.where(covered, np.maximum(state, level), state)
    watts = activities(pm)
    dt = np.diff(edges)
    time_s = {s: float(dt[state == k].sum()) for k, s in enumerate(STATES)}
    energy = float((dt * watts[state]).sum())
    log: list[tuple[float, float]] = []
    for t, k in zip(edges[:-1], state, strict=True):
        w = float(watts[k])
        if not log or log[-1][1] != w:
            log.append((float(t), w))
    return {"time_s": time_s, "energy_j": energy, "log": log}
