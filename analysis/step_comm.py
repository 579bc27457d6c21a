"""Step-level collectives of the typed step plan (`simulator.plan.step`), priced for the closed
form over arrays of layouts: data-parallel buckets (`sum_buckets`), ZeRO-3 units
(`zero3_per_microbatch`), and the machinery that prices many (size, ranks, stride) calls of
`group_collective_time` at once, each distinct one once (`priced`, `grouped_times`).
`analysis.closed_form` and `analysis.pipeline_pools` read them; every function is exact
(bit-identical to pricing each layout alone)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulator.costmodel.network import collective_latency, group_collective_time


def _shape(*xs):
    """The shape `xs` broadcast to (`np.broadcast_shapes`, quicker when they agree)."""
    shapes = {np.shape(x) for x in xs}
    shapes.discard(())
    if len(shapes) <= 1:
        return shapes.pop() if shapes else ()
    return np.broadcast_shapes(*shapes)


def _bcast(x, shape):
    """`x` broadcast to `shape` (read only; `x` itself where it has that shape already)."""
    if isinstance(x, np.ndarray) and x.shape == shape:
        return x
    return np.broadcast_to(x, shape)


def where_needed(need, fn, *args):
    """`fn(*args)` on the layouts where `need`, 0 elsewhere (arrays broadcast to `need`)."""
    need = np.asarray(need, dtype=bool)
    if need.all():
        return fn(*args)
    out = np.zeros(need.shape)
    if need.any():
        out[need] = fn(*(np.broadcast_to(a, need.shape)[need] for a in args))
    return out


def priced_where(hw, requests):
    """`where_needed` of `group_collective_time` for several (kind, need, size, ranks, stride)
    at once: each kind's calls in one `priced` call; a list of arrays over `need`'s shape, 0
    where not needed."""
    calls, spots = {}, []
    for kind, need, *args in requests:
        need = np.asarray(need, dtype=bool)
        if need.all():
            picked = args
        elif need.any():
            picked = [_bcast(a, need.shape)[need] for a in args]
        else:
            spots.append((None, need))
            continue
        calls.setdefault(kind, []).append(picked)
        spots.append((kind, need))
    times = {kind: iter(priced(hw, kind, c)) for kind, c in calls.items()}
    out = []
    for kind, need in spots:
        t = None if kind is None else next(times[kind])
        if kind is not None and need.all():
            out.append(t)
            continue
        full = np.zeros(need.shape)
        if t is not None:
            full[need] = t
        out.append(full)
    return out


def zero3_per_microbatch(hw, units, grp=None, where=None):
    """ZeRO-3 seconds per micro-batch over the plan's units (two gathers and a reduce-scatter
    each, every one paying its own latency); the gathers nothing hides, per micro-batch (the
    forward's first unit, the embedding or a layer, and the backward's first, the head or a
    layer: nothing computes before them); the gathers past the prefetch limit
    (`Zero3Unit.ahead`: issued when the unit computes, in a collective of their own, the
    compute waiting for them); and the backward's last reduce-scatter (after the last compute
    of the step). `where`: the layouts that run ZeRO-3 (None: all); elsewhere every term is 0."""
    return price_together(hw, zero3_gen(hw, units, grp, where))[0]


def zero3_gen(hw, units, grp=None, where=None):
    """`zero3_per_microbatch` as a pricing generator (`price_together`)."""
    units = list(units)
    if where is not None and np.ndim(where):
        return (yield from _on_some(hw, units, grp, np.asarray(where, dtype=bool)))
    total = first = waited = shared = reduce = latency = 0.0
    ahead_of, rs_of = {}, {}
    rows = yield from _zero3_rows(hw, units, grp)
    for i, u in enumerate(units):
        per_unit, rest, rs, link_shared, lat, ahead = rows[6 * i : 6 * i + 6]
        total = total + u.count * per_unit
        waited = waited + u.count * (1 + u.regather) * rest
        reduce = reduce + u.count * rs
        shared = shared + u.count * link_shared
        latency = latency + u.count * lat
        ahead_of[u.name] = (ahead, u.count, u.regather)
        rs_of[u.name] = rs
    head, has_head, head_k = ahead_of.get("head", (0.0, 0.0, 1.0))
    emb, has_emb, _ = ahead_of.get("embedding", (0.0, 0.0, 1.0))
    layer = ahead_of.get("layer", (0.0, 0.0, 1.0))[0]
    # the backward's last reduce-scatter: the embedding's on the first stage, else a layer's
    tail = np.where(np.asarray(has_emb) > 0, rs_of.get("embedding", 0.0), rs_of.get("layer", 0.0))
    # each pass's first unit: forward, the embedding on the first stage, else a layer;
    # backward, the head on the last stage (nothing if it stays gathered: its backward hides
    # the next unit's gather), else a layer
    fwd_first = np.where(np.asarray(has_emb) > 0, emb, layer)
    first = fwd_first + np.where(np.asarray(has_head) > 0, head_k * head, layer)
    # the link's time per micro-batch: the two streams' bytes share it, their latency terms
    # run side by side, and each stream is serial (its gathers, its reduce-scatters)
    link = np.maximum(np.maximum(total - latency, total - reduce), reduce)
    return total, first, waited, tail, reduce, fwd_first, shared, link


def _on_some(hw, units, grp, where):
    """`zero3_gen` priced on the layouts `where` only, 0 on the others."""
    sel = np.flatnonzero(where)
    if sel.size == where.size:
        return (yield from zero3_gen(hw, units, grp))
    if sel.size == 0:
        return tuple(np.zeros(where.shape) for _ in range(8))  # the eight terms
    n, taken = where.size, {}  # an array the units share is taken once (one object)
    fields = ("params", "count", "gather", "reduce", "group", "stride", "ahead", "regather")
    sub = [
        replace(u, **{f: take_on(getattr(u, f), sel, n, taken) for f in fields}) for u in units
    ]  # fmt: skip
    terms = yield from zero3_gen(hw, sub, None if grp is None else grp.restrict(where))
    out = []
    for t in terms:
        full = np.zeros(where.shape)
        full[sel] = t
        out.append(full)
    return tuple(out)


def take_on(x, sel, n, taken):
    """`x` on the layouts `sel` (of `n`); a scalar as is. `taken`: id -> (array, its take)."""
    if np.shape(x) != (n,):
        return x
    hit = taken.get(id(x))
    if hit is None or hit[0] is not x:
        hit = taken[id(x)] = (x, np.asarray(x)[sel])
    return hit[1]


def _zero3_rows(hw, units, grp=None):
    """Per unit, six rows: (two gathers and the reduce-scatter together, the gather past the
    prefetch limit, the reduce-scatter, the backward's bytes shared on the link by that gather
    and the reduce-scatter issued with it, the unit's latency terms, its gather ahead of use).
    Each gather is 0 where the unit has none of that share. Latency terms (which do not
    occupy the link) by rule "latency part" (`collective_latency`). Every gather of every
    unit in one call, the reduce-scatters in another, once per group of layouts with equal
    units (`grp`). A pricing generator (`price_together`) of a flat tuple, six per unit."""
    fields = ("ahead", "gather", "reduce", "group", "stride", "regather")

    def fn(*a):
        cols = [a[i : i + 6] for i in range(0, len(a), 6)]
        shares = [(a_, g, n, st) for a_, g, _, n, st, _ in cols]
        gathers = _common([
            (share * g, n, st) for a_, g, n, st in shares for share in (a_, 1 - a_)
        ])  # fmt: skip
        reduces = _common([(r, n, st) for _, _, r, n, st, _ in cols])
        times = yield {"all_gather": gathers, "reduce_scatter": reduces}
        gathers, reduces = times["all_gather"], times["reduce_scatter"]
        out = []
        for i, (x, g, r, n, st, k) in enumerate(cols):
            # a unit of no bytes (a tied output head) issues no collective, as in the SimPy
            # engine (`des.collectives.for_group`): no latency either
            on_a, on_r = (x > 0) & (g > 0), (x < 1) & (g > 0)
            ahead, rest = gathers[2 * i], gathers[2 * i + 1]
            ahead, rest = np.where(on_a, ahead, 0.0), np.where(on_r, rest, 0.0)
            # the latency terms (rule "latency part", as the SimPy engine splits them)
            lat_a = np.where(on_a, collective_latency(hw, "all_gather", n, st, ahead), 0.0)
            lat_r = np.where(on_r, collective_latency(hw, "all_gather", n, st, rest), 0.0)
            rs = np.where(r > 0, reduces[i], 0.0)
            lat_rs = np.where(r > 0, collective_latency(hw, "reduce_scatter", n, st, rs), 0.0)
            # backward: the gather past the limit and the unit after's reduce-scatter start
            # together on the group's link ("one group, one link"); their bytes share it
            bw_rest = np.maximum(rest - np.where(rest > 0, lat_r, 0.0), 0.0)
            link_shared = np.minimum(bw_rest, np.maximum(rs - lat_rs, 0.0))
            lat_g = np.where(ahead > 0, lat_a, 0.0) + np.where(rest > 0, lat_r, 0.0)
            # the forward's gather, and the backward's unless the unit stays gathered (k = 0)
            gathers_k = 1 + k
            out += [
                gathers_k * (ahead + rest) + rs, rest, rs, k * link_shared,
                gathers_k * lat_g + lat_rs, ahead,
            ]  # fmt: skip
        shape = _shape(*out)
        return np.array([_bcast(t, shape) for t in out])

    if not units:
        return ()
    args = [getattr(u, f) for u in units for f in fields]
    return tuple((yield from (fn(*args) if grp is None else grp.defer(fn, *args))))


def sum_buckets(hw, entries, grp=None):
    """Seconds of the plan's bucketed collectives, one after the other on the data-parallel
    stream: full buckets and one remainder each, on the layouts that run them."""
    entries = list(entries)
    if grp is not None and entries:  # the planner's arrays: every entry at once
        return price_together(hw, sum_buckets_gen(hw, entries, grp))[0]
    total = 0.0
    for b in entries:
        args = (b.total, b.bucket, b.group, b.stride)
        total = total + where_needed(b.where, lambda *a, b=b: _bucketed(hw, b, *a), *args)
    return total


def sum_buckets_gen(hw, entries, grp):
    """`sum_buckets` over the groups of `grp`, as a pricing generator (`price_together`)."""
    entries = list(entries)
    if not entries:
        return 0.0
    args = [x for b in entries for x in (b.where, b.total, b.bucket, b.group, b.stride)]
    return (yield from grp.defer(lambda *a: _buckets_at_once(hw, entries, a), *args))


def _buckets_at_once(hw, entries, args):
    """`sum_buckets` of `entries` with their (where, total, bucket, group, stride) in `args`
    (arrays over the layouts): each kind's full and remainder buckets in one call, priced on
    the layouts that run them. A pricing generator."""
    rows = [args[i : i + 5] for i in range(0, len(args), 5)]
    shape = _shape(*(x for r in rows for x in r))
    if shape == ():
        fields = ("where", "total", "bucket", "group", "stride")
        pairs = zip(entries, rows, strict=True)
        return sum_buckets(hw, [replace(b, **dict(zip(fields, r, strict=True))) for b, r in pairs])
    picked = []  # (kind, where, the entry on those layouts, group, stride)
    for b, (where, *cols) in zip(entries, rows, strict=True):
        need = _bcast(np.asarray(where, dtype=bool), shape)
        tot, bucket, group, stride = (_bcast(x, shape)[need] for x in cols)
        picked.append((b.kind, need, replace(b, total=tot, bucket=bucket), group, stride))
    calls = {}
    for kind in dict.fromkeys(p[0] for p in picked):
        calls[kind] = [c for k, _, e, g, st in picked if k == kind
                       for c in ((e.full(), g, st), (e.remainder(), g, st))]  # fmt: skip
    times = {kind: iter(t) for kind, t in (yield calls).items()}
    total = np.zeros(shape)
    for kind, need, e, _, _ in picked:
        full, rest = next(times[kind]), next(times[kind])
        out = np.zeros(shape)
        out[need] = (e.count() - 1) * full + rest
        total = total + out
    return total


def grouped_times(grp, hw, kind, *calls):
    """`group_collective_time` of each (size, ranks, stride) of `calls`, all in one call,
    once per group of layouts with equal arguments (`grp`); a tuple, one per call."""
    return price_together(hw, grouped_times_gen(grp, hw, kind, *calls))[0]


def grouped_times_gen(grp, hw, kind, *calls):
    """`grouped_times` as a pricing generator (`price_together`)."""
    args = [x for c in calls for x in c]

    def fn(*a):
        return (yield {kind: _common([a[i : i + 3] for i in range(0, len(a), 3)])})[kind]

    return tuple((yield from (fn(*args) if grp is None else grp.defer(fn, *args))))


def _common(calls):
    """Each (size, ranks, stride) of `calls` broadcast to the shape common to all of them."""
    shape = _shape(*(x for c in calls for x in c))
    return [[_bcast(x, shape) for x in c] for c in calls]


def price_together(hw, *gens):
    """Run pricing generators side by side; their return values, in order.

    A pricing generator yields ``{kind: [(size, ranks, stride), ...]}`` (the collectives it
    needs priced), receives ``{kind: [seconds, ...]}`` back in the same order, and in the end
    returns its result. Each round, every kind's calls from all the generators go to one
    `priced` call (each distinct (size, ranks, stride) priced once; the function is
    elementwise, so what else is in the call changes no number): one `group_collective_time`
    per kind instead of one per generator and kind."""
    out: list = [None] * len(gens)
    live = {}
    for i, g in enumerate(gens):
        _advance(g, None, i, live, out)
    while live:
        merged: dict = {}
        for req in live.values():
            for kind, calls in req.items():
                merged.setdefault(kind, []).extend(calls)
        times = {kind: iter(priced(hw, kind, calls)) for kind, calls in merged.items()}
        step, live = live, {}
        for i, req in step.items():
            reply = {kind: [next(times[kind]) for _ in calls] for kind, calls in req.items()}
            _advance(gens[i], reply, i, live, out)
    return out


def _advance(gen, reply, i, live, out):
    """Send `reply` to pricing generator `i`: its next request into `live`, or its result."""
    try:
        live[i] = gen.send(reply)
    except StopIteration as done:
        out[i] = done.value


def priced(hw, kind, calls):
    """`group_collective_time` of several (size, ranks, stride), a list of arrays, from one
    call over their distinct values laid end to end (the function is elementwise)."""
    shapes = [_shape(*c) for c in calls]
    if all(sh == () for sh in shapes):
        return [np.asarray(group_collective_time(hw, kind, *c), dtype=float) for c in calls]
    cols = [
        np.concatenate([_bcast(c[j], sh).reshape(-1) for c, sh in zip(calls, shapes, strict=True)])
        for j in range(3)
    ]
    first, index = distinct_values(*cols)  # the same (size, n, stride) priced once
    t = np.asarray(group_collective_time(hw, kind, *(c[first] for c in cols)), dtype=float)
    t, out, at = t[index], [], 0
    for sh in shapes:
        size = int(np.prod(sh))
        out.append(t[at : at + size].reshape(sh))
        at += size
    return out


def distinct_values(*cols):
    """(the first position of each distinct row of equal-length 1-D `cols`, each position's
    row among those): a sort over the columns, exact equality."""
    order = np.lexsort(cols[::-1])
    new = np.zeros(order.size, dtype=bool)
    new[:1] = True
    for c in cols:
        c = c[order]
        new[1:] |= c[1:] != c[:-1]
    inverse = np.empty(order.size, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def _bucketed(hw, b, total, bucket, group, stride):
    """(count - 1) full buckets and the remainder of entry `b` (its sizes on some layouts)."""
    b = replace(b, total=total, bucket=bucket)
    full, rest = priced(hw, b.kind, [(b.full(), group, stride), (b.remainder(), group, stride)])
    return (b.count() - 1) * full + rest
