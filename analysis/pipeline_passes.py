"""The closed form's pipeline by the pass recursion (`simulator.plan.makespan`), where the
`bubble` rule's single busiest stage cannot stand for the schedule.

Interleaved layouts whose chunks hold different layer counts (80 layers on 8 x 8 virtual
stages: chunks of 1 and 2 layers) make a different rank critical in each phase of the
schedule; for them the pipeline's end is the recursion's, over every virtual stage's
forward and backward pass time. Layouts sharing (pp, vpp, pinned layers, micro-batches up to
the recursion's cut) are evaluated together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from analysis.layouts import Layouts, group_index
from simulator.pipeline_split import stage_layers
from simulator.plan.makespan import (
    STEADY_GROUPS,
    Ends,
    bound,
    drain_work,
    ends_of,
    extend,
    pass_graph,
    recursions,
)
from simulator.plan.rules import drain_stretch, reduction_per_rank


def uneven_chunks(layers: int, L: Layouts) -> np.ndarray:
    """Interleaved layouts (vpp > 1) whose virtual stages do not all hold the same layers."""
    first, last = pins(L)
    pinned = (first != 0) | (last != 0)
    # the default split is even exactly when pp * vpp divides the layers (pp > 1)
    out = (L.vpp > 1) & (L.pp > 1) & ~pinned & (layers % (L.pp * L.vpp) != 0)
    inter = (L.vpp > 1) & pinned
    if inter.any():
        cols = [np.asarray(c, dtype=np.int64)[inter] for c in (L.pp, L.vpp, first, last)]
        uniq, inverse = _distinct(cols)
        flags = np.array([len(set(_split(layers, *k))) > 1 for k in uniq])
        out[inter] = flags[inverse]
    return out


def _distinct(cols: list[np.ndarray]) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """The distinct rows of integer columns and each row's index among them."""
    first, index = group_index(cols)
    return [tuple(int(c[i]) for c in cols) for i in first], index


@dataclass(frozen=True)
class PassTimes:
    """The pipeline by the pass recursion and each rank's gradient reduction, per layout
    (0 on the layouts not asked for)."""

    end: np.ndarray
    """The last rank's end of its passes (s), its drain slowed by its reduction."""
    reduced: np.ndarray
    """When the last rank's gradient reduction ends (s, `rules.reduction_per_rank`)."""
    slow: np.ndarray
    """The bottleneck rank's compute slowdown by its reduction beside it (s)."""
    sends: np.ndarray
    """Blocking sends only: how many lie on the longest path to the last rank's end."""


def pass_times(
    layers: int,
    L: Layouts,
    m: np.ndarray,
    t: Mapping[str, np.ndarray],
    per_layer: np.ndarray,
    send: np.ndarray,
    blocking: bool,
    where: np.ndarray,
    grads: Grads,
    lower: bool = False,
) -> PassTimes:
    """`PassTimes` of the layouts `where`: chunk passes of ``n_v`` layers at `per_layer`
    each (its forward share `t["fwd_pass"]`), the embedding's and head's passes on the first
    and last virtual stage, one `send` per hop; `grads` the busiest stage's gradient
    reduction.

    Each rank's drain is first stretched by its own reduction beside it
    (`rules.drain_stretch`, from the drain's compute, `drain_work`); layouts of a group
    with the same pass times share one evaluation; the recursion's ends are held at or above
    `makespan.bound` (where the recursion's cut falls short of the whole schedule).
    `lower`: lower bounds of `end` and `reduced` instead, from `makespan.bound` (paths of
    the pass graph that need no recursion: the planner's first pass, `planner.bounds`),
    the reduction's queue no earlier than the rank's last chunk's last backward starts plus
    its whole reduction; `slow` and `sends` 0 (the unclipped bubble of
    `step_compose.by_recursion` cancels `slow`)."""
    shape = L.pp.shape
    out = PassTimes(*(np.zeros(shape) for _ in range(4)))
    idx = np.flatnonzero(where)
    if idx.size == 0:
        return out
    first, last = pins(L)
    mi = np.asarray(m, dtype=np.int64)
    cut = np.where(mi >= STEADY_GROUPS * L.pp, 0, mi)  # past the cut: one group for all m
    keys = (L.pp, L.vpp, first, last) if lower else (L.pp, L.vpp, first, last, cut)
    uniq, inverse = _distinct([np.asarray(c, dtype=np.int64)[idx] for c in keys])
    f_layer = _at(t["fwd_pass"], shape)
    b_layer = _at(per_layer, shape) - f_layer
    emb, head = _at(t["emb"], shape), _at(t["head"], shape)
    emb_f, head_f = _at(t["emb_f"], shape), _at(t["head_f"], shape)
    send = _at(send, shape)
    grads = grads.spread()
    groups = []
    for g, (pp, vpp, fi, la, *_) in enumerate(uniq):
        rows = idx[inverse == g]
        split = _split(layers, pp, vpp, fi, la)
        n = np.array(split, dtype=float)[:, None]  # (V, 1)
        fwd, bwd = n * f_layer[rows], n * b_layer[rows]
        fwd[0] += emb_f[rows]
        bwd[0] += emb[rows] - emb_f[rows]
        fwd[-1] += head_f[rows]
        bwd[-1] += head[rows] - head_f[rows]
        chunk = _Chunks(split, pp, b_layer[rows], head[rows] - head_f[rows], bwd, grads.at(rows))
        work = drain_work(pp, vpp, bwd)
        stretch = None
        if grads.overlapped:
            stretch = drain_stretch(*chunk.reduction(), work, grads.phi, chunk.dp, chunk.share())
        args = (pp, vpp, mi[rows], fwd, bwd, send[rows], blocking, stretch)
        todo = None if lower else _Distinct(*args)
        groups.append((rows, chunk, work, args, todo))
    if not lower:  # every group's recursions in one sweep (`makespan.recursions`)
        _evaluate([d for *_, d in groups if d is not None and d.todo], blocking)
    for rows, chunk, work, args, todo in groups:
        pp, vpp, m_, fwd, bwd, _, _, stretch = args
        own = chunk.share() * chunk.g.sync
        if todo is None:
            e = bound(*args)
            queue = e.final[(vpp - 1) * pp :] + own if grads.overlapped else None
        else:
            e = todo.ends()
            if m_.max() > STEADY_GROUPS * pp:  # cut: held at or above the bound
                low = bound(*args)
                e = Ends(
                    np.maximum(e.end, low.end), np.maximum(e.final, low.final), e.period, e.sends
                )
            queue = chunk.queue(e.final) if grads.overlapped else None
        done = reduction_per_rank(e.end, queue, own, chunk.g.tail, chunk.dp)
        out.end[rows] = e.end.max(axis=0)
        out.reduced[rows] = done.max(axis=0)
        if lower:
            continue
        if e.sends is not None:
            top = np.argmax(e.end, axis=0)[None]
            out.sends[rows] = np.take_along_axis(e.sends, top, axis=0)[0]
        if stretch is not None:  # the rank with the most compute, as the engines count it
            total = (fwd + bwd).reshape(vpp, pp, -1).sum(axis=0) * m_
            slowed = (stretch - 1.0) * work
            out.slow[rows] = np.take_along_axis(
                slowed, np.argmax(total + slowed, axis=0)[None], axis=0
            )[0]
    return out


_CACHE: dict[tuple, tuple[np.ndarray, ...]] = {}
"""`makespan` per (pp, vpp, m0, blocking, pass times) already evaluated: the planner prices
the same chunks' times again in every chunk of layouts and every candidate."""
CACHE_ROWS = 10_000
"""At most this many distinct results are kept, cleared when full: each holds its key (the
pass times, ~(2 V + pp) floats) and its ends (~(2 pp + V) floats), about 1.5-5 kB for
V = 16-128 virtual stages, so at most ~15-50 MB. A Llama-3-70B `plan()` over 4 hardware x 5
cluster sizes x 2 precisions evaluates 5,549 (2026-12-03)."""


class _Distinct:
    """One group's `makespan`, once per distinct (pass times, stretch): many layouts of a
    group differ only in what the pipeline does not see (data parallelism, ZeRO, batch), and
    the results are kept (`_CACHE`)."""

    def __init__(self, pp, vpp, m, fwd, bwd, send, blocking, stretch) -> None:
        cols = [fwd, bwd, send[None]] + ([] if stretch is None else [stretch])
        theta = np.ascontiguousarray(np.concatenate(cols, axis=0).T)  # (n, features)
        row = theta.view(np.dtype((np.void, theta.dtype.itemsize * theta.shape[1]))).ravel()
        _, first, self.inv = np.unique(row, return_index=True, return_inverse=True)
        self.m, self.m0 = m, min(int(m.min()), STEADY_GROUPS * pp)
        self.keys = [(pp, vpp, self.m0, blocking, row[i].tobytes()) for i in first]
        # what is already known is held here: the cache may be cleared before `ends`
        self.known = {k: _CACHE[k] for k in self.keys if k in _CACHE}
        self.todo = [j for j, k in enumerate(self.keys) if k not in self.known]
        c = first[self.todo]
        self.item = None if not self.todo else (
            pass_graph(pp, vpp, self.m0), fwd[:, c], bwd[:, c], send[c],
            None if stretch is None else stretch[:, c],
        )  # fmt: skip

    def store(self, e: Ends) -> None:
        for k, j in enumerate(self.todo):
            if len(_CACHE) >= CACHE_ROWS:
                _CACHE.clear()
            self.known[self.keys[j]] = _CACHE[self.keys[j]] = (
                e.end[:, k], e.final[:, k], e.period[k],
                None if e.sends is None else e.sends[:, k],
                None if e.sends_per_mb is None else e.sends_per_mb[k],
            )  # fmt: skip

    def ends(self) -> Ends:
        got = [self.known[k] for k in self.keys]
        inv = self.inv.reshape(-1)
        col = lambda i: np.stack([x[i] for x in got], axis=-1)[..., inv]  # noqa: E731
        spread = Ends(
            col(0), col(1), col(2), *((None, None) if got[0][3] is None else (col(3), col(4)))
        )
        return extend(spread, self.m, self.m0)


def _evaluate(groups: list[_Distinct], blocking: bool) -> None:
    """The recursions the groups still need, all in one sweep (`makespan.recursions`)."""
    items = [d.item for d in groups]
    for d, it, (free, hops) in zip(groups, items, recursions(items, blocking), strict=True):
        g, fwd, bwd, send, slow = it
        d.store(ends_of(g, free, hops, fwd, bwd, send, slow))


@dataclass(frozen=True)
class Grads:
    """The busiest stage's gradient reduction, per layout (`rules.grad_exposed`'s inputs),
    and the shares of one layer's and of the embedding's (or output matrix's) parameters
    in its parameters."""

    sync: np.ndarray
    tail: np.ndarray
    dp: np.ndarray
    layer_share: np.ndarray
    end_share: np.ndarray
    phi: float
    overlapped: bool

    def at(self, rows: np.ndarray) -> Grads:
        """These layouts' (`rows`) reductions (cheaper on a `spread` one: no broadcast)."""
        pick = lambda x: np.broadcast_to(np.asarray(x, dtype=float), self.dp.shape)[rows]  # noqa: E731
        return Grads(
            pick(self.sync), pick(self.tail), pick(self.dp), pick(self.layer_share),
            pick(self.end_share), self.phi, self.overlapped,
        )  # fmt: skip

    def spread(self) -> Grads:
        """The same, every field an array over all layouts (once, before many `at`)."""
        full = lambda x: np.broadcast_to(np.asarray(x, dtype=float), self.dp.shape)  # noqa: E731
        return Grads(
            full(self.sync), full(self.tail), full(self.dp), full(self.layer_share),
            full(self.end_share), self.phi, self.overlapped,
        )  # fmt: skip


class _Chunks:
    """One group's chunks: when each rank's gradient pieces become final, and their shares."""

    def __init__(self, split, pp, b_layer, head_b, bwd, grads: Grads) -> None:
        self.split, self.pp, self.b_layer, self.head_b = split, pp, b_layer, head_b
        self.bwd = bwd
        self.g = grads
        self.dp = grads.dp
        self._share: np.ndarray | None = None

    def queue(self, final: np.ndarray) -> np.ndarray:
        """When each rank's gradient reduction queue would end, ``max_k (arrive_k + rest_k
        sync)`` over its pieces (`rules.reduction_per_rank`), shape ``(pp, n)``: in the last
        micro-batch's backward, chunk by chunk (last chunk first), the output matrix first
        (last rank), then the layers one by one, the embedding last (first rank). Within a
        chunk the term is linear in the layer's index, so its first and last layer bound
        it."""
        V, pp, g = len(self.split), self.pp, self.g
        vpp = V // pp
        ls, es, b = g.layer_share * g.sync, g.end_share * g.sync, self.b_layer
        nv = np.array(self.split, dtype=float).reshape(vpp, pp)[:, :, None]
        t0 = final.reshape(vpp, pp, -1).copy()
        t0[-1, -1] += self.head_b  # the head's backward comes first in its chunk
        # what the rank still reduces after a chunk's pieces: the chunks after it, the
        # embedding (first rank)
        after = (np.cumsum(nv, axis=0) - nv) * ls + es * (np.arange(pp) == 0)[None, :, None]
        q = (np.maximum(t0 + b + nv * ls, t0 + nv * b + ls) + after).max(axis=0)
        q[-1] = np.maximum(q[-1], t0[-1, -1] + es + nv[-1, -1] * ls + after[-1, -1])
        q[0] = np.maximum(q[0], final[0] + self.bwd[0] + es)
        return q

    def reduction(self) -> tuple[np.ndarray, np.ndarray]:
        return self.g.sync, self.g.tail

    def share(self) -> np.ndarray:
        """Each rank's parameters over the busiest stage's, shape ``(pp, n)``."""
        if self._share is None:
            pp, g = self.pp, self.g
            layers = np.array([sum(self.split[r::pp]) for r in range(pp)], dtype=float)[:, None]
            ends = np.zeros((pp, 1))
            ends[[0, -1]] = 1.0  # the embedding; the output matrix (pp > 1 with interleaving)
            self._share = layers * g.layer_share + ends * g.end_share
        return self._share


def _split(layers: int, pp: int, vpp: int, first: int, last: int) -> tuple[int, ...]:
    return stage_layers(layers, pp, vpp, first or None, last or None)


def pins(L: Layouts) -> tuple[np.ndarray, np.ndarray]:
    """Layers pinned to the first and last pipeline stage per layout (0: not pinned)."""
    zero = np.zeros(L.pp.shape, dtype=np.int64)
    first = zero if L.first is None else np.broadcast_to(L.first, L.pp.shape)
    last = zero if L.last is None else np.broadcast_to(L.last, L.pp.shape)
    return first, last


def _at(v, shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, dtype=float), shape)
