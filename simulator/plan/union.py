"""The pass recursion of several pass graphs in one sweep (`recursions`).

`makespan.recursion` takes one numpy step per level of its graph, whatever the number of
layouts: a few microseconds each, over 100-700 levels. The planner evaluates several graphs
per call (one per (pp, vpp, micro-batches) among its layouts, a few layouts each), so the
graphs are laid side by side in one flat array, level by level: level ``l`` of every graph is
one contiguous slice, and a sweep costs one step per level of the deepest graph instead of
one per level of each.

Layout: the elements (graph k, pass i, layout j) are ordered by (level of i, k, i, j); one
last element reads 0 (no previous pass, no input).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simulator.plan.makespan import PassGraph, durations, recursion

Item = tuple[PassGraph, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]
"""(graph, fwd, bwd, send, slow) as `makespan.recursion` takes them."""


def _positions(items: Sequence[Item]) -> tuple[list[np.ndarray], list[tuple[int, int]], int]:
    """Each graph's flat position of every (pass, layout), shape ``(P, n)``; the slices of
    the levels; the number of elements (the slot that reads 0 comes after them)."""
    depth = max(len(it[0].widths) for it in items)
    count = np.zeros((depth, len(items)), dtype=np.int64)
    for k, (g, fwd, *_) in enumerate(items):
        count[: len(g.widths), k] = g.widths * fwd.shape[1]
    start = (np.cumsum(count.ravel()) - count.ravel()).reshape(count.shape)
    pos = []
    for k, (g, fwd, *_) in enumerate(items):
        n = fwd.shape[1]
        first = start[g.level_of, k] + g.at_level * n
        pos.append(first[:, None] + np.arange(n))
    ends = np.cumsum(count.sum(axis=1))
    return pos, list(zip([0, *ends[:-1].tolist()], ends.tolist(), strict=True)), int(ends[-1])


def recursions(items: Sequence[Item], blocking: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """`makespan.recursion` of each item, the same values, evaluated in one sweep."""
    if len(items) <= 1:
        if not items:
            return []
        g, fwd, bwd, send, slow = items[0]
        return [recursion(g, fwd, bwd, send, blocking, slow)]
    pos, levels, N = _positions(items)
    dep, prev = np.full(N + 1, N), np.full(N + 1, N)
    dur, arrive = np.zeros(N + 1), np.zeros(N + 1)
    has_dep, hold, own = np.zeros(N + 1), np.zeros(N + 1), np.zeros(N + 1)
    for (g, fwd, bwd, send, slow), p in zip(items, pos, strict=True):
        P = g.v.shape[0]
        ext = np.vstack([p, np.full((1, p.shape[1]), N)])  # the graph's slot P reads 0
        dep[p], prev[p] = ext[g.dep], ext[g.prev]
        d = durations(g, fwd, bwd, slow)
        dep_here = (g.dep < P)[:, None]
        dur[p], arrive[p], has_dep[p] = d, np.where(dep_here, send, 0.0), dep_here
        if blocking:
            hold[p] = d + g.sends[:, None] * send
            own[p] = np.append(g.sends, False)[g.prev][:, None]  # the previous pass sends
    end = np.zeros(N + 1)
    if not blocking:
        for lo, hi in levels:
            start = end[dep[lo:hi]]
            start += arrive[lo:hi]
            np.maximum(start, end[prev[lo:hi]], out=start)
            np.add(start, dur[lo:hi], out=end[lo:hi])
        return [(end[p], None) for p in pos]
    free, hops = np.zeros(N + 1), np.zeros(N + 1)
    for lo, hi in levels:
        pv, dp = prev[lo:hi], dep[lo:hi]
        ready, came = free[pv], end[dp] + arrive[lo:hi]
        start = np.maximum(ready, came)
        hops[lo:hi] = np.where(came > ready, hops[dp] + has_dep[lo:hi], hops[pv] + own[lo:hi])
        end[lo:hi] = start + dur[lo:hi]
        free[lo:hi] = start + hold[lo:hi]
    return [(free[p], hops[p] + g.sends[:, None]) for (g, *_), p in zip(items, pos, strict=True)]
