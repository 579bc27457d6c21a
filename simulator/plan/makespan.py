"""Rule "pass recursion": the pipeline's fill and drain from the pass order itself.

Every pipeline rank runs its passes in `schedule`'s order (1F1B, or Megatron-LM's interleaved
1F1B). A pass starts when its rank is free and its input has arrived: the forward of virtual
stage ``v`` needs ``v - 1``'s forward of the same micro-batch and one send, the backward needs
``v + 1``'s backward and one send. So each pass ends at

    end(p) = max(free(previous pass of the rank), end(input pass) + send) + duration(p)

and ``free`` is ``end`` plus the send when sends block the rank (`Options.overlap_p2p` off).
That is a max-plus linear recursion over the pass graph, the schedule the SimPy engine
executes (`simulator.des.step`), evaluated here for many layouts at once: passes are taken
level by level (a level's passes depend only on earlier levels), each level one vectorised
step over (passes x layouts).

The closed form's `bubble` rule, ``(sum of the other stages) / vpp``, is this recursion's
value when every chunk takes the same time and sends are free. With uneven chunks (80 layers on 64
virtual stages: chunks of 1 and 2 layers) a different rank is critical in each phase of the
interleaved schedule, which no single-stage formula represents; there the closed form
evaluates this recursion (`analysis.closed_form`).

Long schedules are cut: once the schedule has settled into its steady state, each further
micro-batch adds one period, so the makespan of ``m`` micro-batches is that of
``m0 = STEADY_GROUPS * pp`` plus ``(m - m0)`` periods, the period read off the recursion
itself (`makespan`; tests/test_makespan.py checks the cut against the whole recursion,
tests/test_des_agreement_grid.py the closed form built on it against the SimPy engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simulator.plan.schedule import order_arrays

STEADY_GROUPS = 5
"""Groups of `pp` micro-batches evaluated before the recursion is cut (a choice: the
interleaved warm-up holds ``2 (pp - r - 1) + (vpp - 1) pp`` chunk passes, under two groups'
worth, so five leave the steady state three groups to settle). Checked against the whole
recursion in tests/test_makespan.py: exact to 1e-9 on chunks of whole layers (uneven splits,
a heavy head) with free sends, within 0.03 % with blocking sends, within 0.5 % on arbitrary
random chunk times (whose period can take several groups to repeat)."""
PROBE = (2, 4)
"""Groups whose first forwards on the first rank time the steady state's period."""


@dataclass(frozen=True)
class PassGraph:
    """The passes of all ranks of one (pp, vpp, m): index arrays over passes, with one extra
    slot (index ``P``) that always reads 0, for "no previous pass" and "no input"."""

    pp: int
    vpp: int
    m: int
    v: np.ndarray  # virtual stage of each pass
    backward: np.ndarray  # bool: a backward pass
    prev: np.ndarray  # the rank's previous pass (P: none)
    dep: np.ndarray  # the pass whose output it needs (P: none)
    sends: np.ndarray  # bool: a send follows the pass
    last: np.ndarray  # each rank's last pass
    probe: tuple[int, int]  # rank 0's chunk-0 forwards of the `PROBE` micro-batches
    final: np.ndarray  # each virtual stage's backward of the last micro-batch
    rank: np.ndarray  # each pass's rank
    drain: np.ndarray  # bool: the rank's passes from its last chunk's final backward on
    levels: tuple[tuple[int, int], ...]  # passes are numbered level by level: each a slice
    kind: np.ndarray  # row of [fwd; bwd] each pass reads: v, or V + v for a backward
    drain_at: np.ndarray  # indices of the drain's passes
    widths: np.ndarray  # passes per level
    level_of: np.ndarray  # each pass's level (non-decreasing: passes are numbered by level)
    at_level: np.ndarray  # each pass's place within its level


@lru_cache(maxsize=512)
def pass_graph(pp: int, vpp: int, m: int) -> PassGraph:
    """The pass graph of `schedule(pp, vpp, m, rank)` over all ranks (cached)."""
    V = pp * vpp
    parts = [order_arrays(pp, vpp, m, r) for r in range(pp)]
    per = 2 * m * vpp  # passes per rank
    P = per * pp
    backward = np.concatenate([b for b, _, _ in parts])
    rank = np.repeat(np.arange(pp), per)
    v = np.concatenate([c for _, c, _ in parts]) * pp + rank
    mb = np.concatenate([x for _, _, x in parts])
    at = np.empty((2, V, m), dtype=np.int64)  # (backward, v, micro-batch) -> pass
    at[backward.astype(np.int64), v, mb] = np.arange(P)
    idx = np.arange(P)
    prev = np.where(idx % per == 0, -1, idx - 1)
    has_input = np.where(backward, v < V - 1, v > 0)
    src_v = np.clip(np.where(backward, v + 1, v - 1), 0, V - 1)
    dep = np.where(has_input, at[backward.astype(np.int64), src_v, mb], -1)
    # a rank's drain: its passes from its last chunk's final backward on
    start = at[1, (vpp - 1) * pp + np.arange(pp), m - 1]
    drain = idx >= start[rank]
    level = _levels(dep, per)
    # renumber the passes level by level: a level is then a slice, not a gather
    order = np.argsort(level, kind="stable")
    new = np.empty(P + 1, dtype=np.int64)
    new[order] = np.arange(P)
    new[P] = P  # the slot that reads 0 stays last
    slot = lambda a: new[np.where(np.asarray(a) < 0, P, a)]  # noqa: E731
    level_of = level[order]
    widths = np.bincount(level_of)  # levels are 0, 1, ... without gaps
    lo = np.cumsum(widths) - widths
    bounds = list(zip(lo.tolist(), (lo + widths).tolist(), strict=True))
    v, backward = v[order], backward[order]
    probe = [at[0, 0, min(k * pp, m - 1)] for k in PROBE]
    return PassGraph(
        pp, vpp, m, v, backward, slot(prev)[order], slot(dep)[order],
        np.where(backward, v > 0, v < V - 1), slot(idx[per - 1 :: per]),
        (int(new[probe[0]]), int(new[probe[1]])), slot(at[1, :, m - 1]),
        rank[order], drain[order], tuple(bounds),
        v + V * backward, np.flatnonzero(drain[order]), widths, level_of,
        np.arange(P) - lo[level_of],
    )  # fmt: skip


def _levels(dep: np.ndarray, per: int) -> np.ndarray:
    """Each pass's level: 0 without predecessors, else one more than theirs (its rank's
    previous pass and its input). Passes are numbered rank by rank, `per` each, in the
    rank's order; each rank is walked as far as its inputs are known, round after round."""
    P = len(dep)
    dep_l = dep.tolist()
    level = [-1] * P
    at = list(range(0, P, per))  # each rank's next pass
    done = 0
    while done < P:
        moved = 0
        for r, i in enumerate(at):
            lo, hi = r * per, (r + 1) * per
            last = level[i - 1] if i > lo else -1
            while i < hi:
                d = dep_l[i]
                if d >= 0:
                    if level[d] < 0:
                        break  # its input is not placed yet
                    last = max(last, level[d])
                level[i] = last = last + 1
                i += 1
            moved += i - at[r]
            at[r] = i
        if not moved:
            raise RuntimeError(f"pipeline schedule: the pass order deadlocks ({done} of {P})")
        done += moved
    return np.array(level)


def durations(
    g: PassGraph, fwd: np.ndarray, bwd: np.ndarray, slow: np.ndarray | None = None
) -> np.ndarray:
    """Every pass's duration, shape ``(P, n)``: its chunk's forward or backward (`fwd`,
    `bwd`, shape ``(V, n)``), the drain's passes stretched by `slow` (shape ``(pp, n)``,
    a factor per rank: its gradient reduction running beside them)."""
    dur = np.concatenate([fwd, bwd])[g.kind]
    if slow is not None:
        dur[g.drain_at] *= slow[g.rank[g.drain_at]]
    return dur


def recursion(
    g: PassGraph,
    fwd: np.ndarray,
    bwd: np.ndarray,
    send: np.ndarray,
    blocking: bool,
    slow: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(every pass's end, the rank free again: after its send when sends block; with
    blocking sends, how many sends lie on the longest path to it, else None), shape
    ``(P, n)`` in `g`'s pass order, for `n` layouts: `fwd`, `bwd` the chunk pass times per
    virtual stage, shape ``(V, n)``; `send` one send's time, shape ``(n,)``; `slow` as in
    `durations`. (`recursions` of this one graph.)"""
    return recursions([(g, fwd, bwd, send, slow)], blocking)[0]


Item = tuple[PassGraph, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]
"""(graph, fwd, bwd, send, slow) as `recursion` takes them."""


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
    """`recursion` of each item, evaluated in one sweep.

    A sweep takes one numpy step per level of its graph, whatever the number of layouts (5-25
    us each, over 100-700 levels; the planner's calls hold a few layouts per graph). So the
    graphs are laid side by side in one flat array, level by level: level ``l`` of every
    graph is one contiguous slice, and the sweep costs one step per level of the deepest
    graph, not one per level of each. Elements (graph k, pass i, layout j) are ordered by
    (level of i, k, i, j); one last element reads 0 (no previous pass, no input)."""
    if not items:
        return []
    pos, levels, N = _positions(items)
    dep, prev = np.full(N + 1, N), np.full(N + 1, N)
    dur, arrive = np.zeros(N + 1), np.zeros(N + 1)
    has_dep = np.zeros(N + 1)
    hold, own = (np.zeros(N + 1), np.zeros(N + 1)) if blocking else (None, None)
    for (g, fwd, bwd, send, slow), p in zip(items, pos, strict=True):
        P = g.v.shape[0]
        ext = np.vstack([p, np.full((1, p.shape[1]), N)])  # the graph's slot P reads 0
        dep[p], prev[p] = ext[g.dep], ext[g.prev]
        d = durations(g, fwd, bwd, slow)
        dep_here = (g.dep < P)[:, None]
        # a send before the input is here
        dur[p], arrive[p], has_dep[p] = d, np.where(dep_here, send, 0.0), dep_here
        if blocking:
            hold[p] = d + g.sends[:, None] * send
            own[p] = np.append(g.sends, False)[g.prev][:, None]  # the previous pass sends
    end = np.zeros(N + 1)
    if not blocking:  # free again at the pass's end
        for lo, hi in levels:
            start = end[dep[lo:hi]]
            start += arrive[lo:hi]
            np.maximum(start, end[prev[lo:hi]], out=start)
            np.add(start, dur[lo:hi], out=end[lo:hi])
        return [(end[p], None) for p in pos]
    free = np.zeros(N + 1)
    hops = np.zeros(N + 1)  # sends on the longest path to each pass's start
    for lo, hi in levels:
        pv, dp = prev[lo:hi], dep[lo:hi]
        ready, came = free[pv], end[dp] + arrive[lo:hi]
        start = np.maximum(ready, came)
        hops[lo:hi] = np.where(came > ready, hops[dp] + has_dep[lo:hi], hops[pv] + own[lo:hi])
        end[lo:hi] = start + dur[lo:hi]
        free[lo:hi] = start + hold[lo:hi]
    return [(free[p], hops[p] + g.sends[:, None]) for (g, *_), p in zip(items, pos, strict=True)]


@dataclass(frozen=True)
class Ends:
    """The recursion's result for `n` layouts, per pipeline rank (shape ``(pp, n)``)."""

    end: np.ndarray
    """The rank free again after its last pass (and its send, when sends block)."""
    final: np.ndarray
    """Start of each virtual stage's backward of the last micro-batch, shape ``(V, n)``:
    during it that chunk's gradients become final, layer by layer (when its rank's
    data-parallel reduction may take them)."""
    period: np.ndarray
    """The steady state's time per micro-batch, shape ``(n,)``; 0 when not reached."""
    sends: np.ndarray | None = None
    """With blocking sends: how many lie on the longest path to each rank's `end`."""
    sends_per_mb: np.ndarray | None = None
    """With blocking sends: how many the steady state adds per micro-batch, shape ``(n,)``."""


def makespan(
    pp: int,
    vpp: int,
    m: int,
    fwd: np.ndarray,
    bwd: np.ndarray,
    send: np.ndarray,
    blocking: bool,
    slow: np.ndarray | None = None,
) -> Ends:
    """The pipeline's `Ends` for ``min(m, STEADY_GROUPS pp)`` micro-batches, with the steady
    state's period when that is the cut (`extend` adds the rest); `slow` stretches each
    rank's drain (`durations`).

    The period is read off the recursion itself, as the time between the first rank's
    first-chunk forwards of the `PROBE` groups (with uneven chunks it can exceed the busiest
    rank's own work: the ring of virtual stages holds only so many micro-batches in
    flight)."""
    g = pass_graph(pp, vpp, min(m, STEADY_GROUPS * pp))
    return ends_of(g, *recursion(g, fwd, bwd, send, blocking, slow), fwd, bwd, send, slow)


def ends_of(
    g: PassGraph,
    free: np.ndarray,
    hops: np.ndarray | None,
    fwd: np.ndarray,
    bwd: np.ndarray,
    send: np.ndarray,
    slow: np.ndarray | None = None,
) -> Ends:
    """`makespan`'s `Ends` from the `recursion` of its graph `g` (``free``, ``hops``)."""
    pp, vpp, m0 = g.pp, g.vpp, g.m
    cut = STEADY_GROUPS * pp  # a multiple of pp, as interleaving needs
    blocking = hops is not None
    v = np.arange(pp * vpp)
    # every last-micro-batch backward is in its rank's drain
    final = free[g.final] - bwd * (1.0 if slow is None else np.tile(slow, (vpp, 1)))
    if blocking:
        final = final - send * (v > 0)[:, None]
    end = free[g.last]
    on_path = None if hops is None else hops[g.last]
    if m0 < cut:
        zero = np.zeros(send.shape)
        return Ends(end, final, zero, on_path, None if hops is None else zero)
    steps = (PROBE[1] - PROBE[0]) * pp
    # no faster than the busiest rank's work per micro-batch: the probe can fall short of it
    # while the schedule still takes up its ring's slack (126 layers on 8 x 2 chunks of 7-8:
    # 47.3 against 48 per micro-batch, settled only by the sixth group)
    probe = (free[g.probe[1]] - free[g.probe[0]]) / steps
    period = np.maximum(probe, busiest(pp, vpp, fwd, bwd, send, blocking))
    per_mb = None if hops is None else (hops[g.probe[1]] - hops[g.probe[0]]) / steps
    return Ends(end, final, period, on_path, per_mb)


def busiest(
    pp: int, vpp: int, fwd: np.ndarray, bwd: np.ndarray, send: np.ndarray, blocking: bool
) -> np.ndarray:
    """The busiest rank's passes per micro-batch (s, shape ``(n,)``), with its sends when
    they block: a floor under the steady state's period (every micro-batch passes every
    rank)."""
    V = pp * vpp
    v = np.arange(V)[:, None]
    work = fwd + bwd + (send * ((v < V - 1).astype(float) + (v > 0)) if blocking else 0.0)
    return work.reshape(vpp, pp, -1).sum(axis=0).max(axis=0)


def extend(e: Ends, m: np.ndarray, m0: int) -> Ends:
    """`e`, evaluated for `m0` micro-batches, for `m` (``m >= m0``, or all equal to it):
    every micro-batch past the cut adds one period (and its sends)."""
    more = m - m0
    sends = None if e.sends is None else e.sends + more * e.sends_per_mb
    return Ends(e.end + more * e.period, e.final + more * e.period, e.period, sends)


def drain_work(pp: int, vpp: int, bwd: np.ndarray) -> np.ndarray:
    """Each rank's compute in its drain (`PassGraph.drain`), shape ``(pp, n)``: its last
    chunk's final backward, then the last group's ``pp`` backwards of each other chunk
    (Megatron's interleaved order takes micro-batches in groups of pp; 1F1B: the last
    backward alone)."""
    per_rank = bwd.reshape(vpp, pp, -1)
    return per_rank[-1] + pp * per_rank[:-1].sum(axis=0)


WALK_GROUPS = 2
"""`bound` takes the walk of the last micro-batch (`_last_walk`) up to this many groups of `pp`
micro-batches: it is what bounds a single group's fill and drain, and past two groups the
ranks' own work bounds the step as closely (a speed choice: each new micro-batch count costs
the pass order of two ranks)."""


@lru_cache(maxsize=1024)
def _last_walk(pp: int, vpp: int, m: int) -> np.ndarray:
    """How many passes of each virtual stage's forward and backward (shape ``(2 V,)``: the
    forwards, then the backwards) run on rank 0 before the last micro-batch's first forward,
    and on rank ``pp - 1`` between that micro-batch's last forward and its backward: with
    the walk through every stage between them, a path to the last backward's start."""
    V = pp * vpp
    out = np.zeros(2 * V)
    for rank, first, last in ((0, 0, None), (pp - 1, vpp - 1, vpp - 1)):
        backward, chunk, micro = order_arrays(pp, vpp, m, rank)
        fwd_at = np.flatnonzero(~backward & (chunk == first) & (micro == m - 1))[0]
        lo, hi = (0, fwd_at) if last is None else (fwd_at + 1, None)
        if last is not None:
            hi = np.flatnonzero(backward & (chunk == last) & (micro == m - 1))[0]
        stage = chunk[lo:hi] * pp + rank + V * backward[lo:hi]
        np.add.at(out, stage, 1.0)
    return out


def bound(
    pp: int,
    vpp: int,
    m: np.ndarray,
    fwd: np.ndarray,
    bwd: np.ndarray,
    send: np.ndarray,
    blocking: bool,
    slow: np.ndarray | None = None,
) -> Ends:
    """A lower bound of `makespan`'s `Ends` (each of ``end`` and ``final`` at most the
    recursion's; ``period`` and ``sends`` 0), for `m` micro-batches per layout (shape
    ``(n,)``, multiples of `pp`), from paths of the pass graph that need no recursion
    (what the planner prices the uneven-chunk layouts by first, `analysis.planner.bounds`):

    - rank ``r`` starts no earlier than the first micro-batch's forward reaches it,
      ``a_r = sum_{s<r} (fwd_s + send)``, and then runs all its passes (``W_r``, its drain
      stretched by `slow`, its sends when they block);
    - the last micro-batch's backward of virtual stage ``v`` follows that of ``v + 1`` and a
      send, and starts no earlier than ``a_r + W_r`` less the passes after it: its own and
      the last group's ``pp`` backwards of each lower chunk (`drain_work`'s passes);
    - the last micro-batch's forward starts after rank 0's passes before it, walks up every
      virtual stage, and its backward of the last stage follows rank ``pp - 1``'s passes
      between the two (`_last_walk`: the fill and drain of a single group, m = pp).

    Exact when no rank waits once it has started: on chunks of equal time with sends, one
    interleaved group matched the recursion and more groups fell short by the steady state's
    send round trips (2026-12-03); tests/test_makespan.py checks that it never exceeds the
    recursion."""
    V, n = pp * vpp, send.shape[0]
    b3 = bwd.reshape(vpp, pp, n)
    bs = b3 if slow is None else b3 * slow  # the drain's backwards, stretched
    per_mb = (fwd.reshape(vpp, pp, n) + b3).sum(axis=0)
    tail = bs  # each rank's drain, last chunk first: the pass (and its held send)
    if blocking:  # every pass but the first stage's backward and the last's forward sends
        r = np.arange(pp)
        per_mb = per_mb + (2 * vpp - (r == 0) - (r == pp - 1))[:, None] * send
        tail = bs + send * (np.arange(V) > 0).reshape(vpp, pp, 1)
    work = m * per_mb  # W_r, (pp, n)
    if slow is not None:
        work = work + (slow - 1.0) * (b3[-1] + pp * b3[:-1].sum(axis=0))  # `drain_work`
    busy = work
    busy[1:] += np.cumsum(fwd[: pp - 1] + send, axis=0)  # the first forward reaches rank r
    after = pp * (np.cumsum(tail, axis=0) - tail)  # the lower chunks' last group
    final = (busy - tail - after).reshape(V, n)
    # the last micro-batch's forward walks up every stage after rank 0's passes before it,
    # and rank pp - 1's passes between its last forward and backward (`_last_walk`)
    # (a few groups at most: with more, the ranks' own work dominates and the walk adds little)
    mi = np.asarray(m, dtype=np.int64)
    if mi.min() <= WALK_GROUPS * pp:
        ms, at = np.unique(np.minimum(mi, WALK_GROUPS * pp), return_inverse=True)
        k = np.stack([_last_walk(pp, vpp, int(x)) for x in ms])[at.reshape(-1)]  # (n, 2 V)
        walk = (k.T * np.concatenate([fwd, bwd])).sum(axis=0) + fwd.sum(axis=0) + (V - 1) * send
        walk = np.where(mi <= WALK_GROUPS * pp, walk, 0.0)
        np.maximum(final[-1], walk, out=final[-1])
    # the last micro-batch's backward walks down the stages: final[u] >= final[w] + the
    # passes and sends from w down to u + 1, i.e. max over w >= u of (final[w] + c[w]) - c[u]
    c = np.cumsum(bs.reshape(V, n) + send, axis=0)
    final = np.maximum.accumulate((final + c)[::-1], axis=0)[::-1] - c
    end = np.maximum(busy, final[:pp] + tail[0])
    zero = np.zeros(n)
    sends = (np.zeros((pp, n)), zero) if blocking else (None, None)
    return Ends(end, final, zero, *sends)
