"""The pass recursion (`simulator.plan.makespan`): textbook limits, the cut, the engines."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.plan.makespan import (
    STEADY_GROUPS,
    bound,
    drain_work,
    durations,
    extend,
    makespan,
    pass_graph,
    recursion,
    recursions,
)


def _full(pp, vpp, m, fwd, bwd, send, blocking):
    g = pass_graph(pp, vpp, m)
    return recursion(g, fwd, bwd, send, blocking)[0][g.last]


@pytest.mark.parametrize("pp,m", [(2, 4), (4, 8), (8, 32), (3, 7)])
def test_one_f_one_b_equal_stages_is_the_textbook_step(pp, m):
    """1F1B, equal stages, free sends: (m + pp - 1) x (forward + backward) (Narayanan et al.
    2021, Sec. 2.2.1)."""
    f, b = 0.3, 0.7
    fwd, bwd = np.full((pp, 1), f), np.full((pp, 1), b)
    ends = makespan(pp, 1, m, fwd, bwd, np.zeros(1), False).end
    assert ends.max() == pytest.approx((m + pp - 1) * (f + b))


@pytest.mark.parametrize("pp,vpp,m", [(2, 2, 4), (4, 2, 8), (4, 5, 16), (8, 8, 16)])
def test_interleaved_equal_chunks_divides_the_bubble_by_vpp(pp, vpp, m):
    """Interleaved 1F1B, equal chunks: the bubble is (pp - 1) chunk passes, 1/vpp of a
    stage's (Sec. 2.2.2), so the step is m vpp + pp - 1 chunk passes."""
    c = 1.0 / vpp  # one chunk's forward + backward; the stage's is 1
    fwd, bwd = np.full((pp * vpp, 1), c / 3), np.full((pp * vpp, 1), 2 * c / 3)
    ends = makespan(pp, vpp, m, fwd, bwd, np.zeros(1), False).end
    assert ends.max() == pytest.approx(m + (pp - 1) * c)


def test_sends_lengthen_and_blocking_sends_hold_the_rank():
    pp, m = 4, 8
    fwd, bwd = np.full((pp, 1), 1.0), np.full((pp, 1), 2.0)
    free = _full(pp, 1, m, fwd, bwd, np.zeros(1), False).max()
    sent = _full(pp, 1, m, fwd, bwd, np.full(1, 0.1), False).max()
    held = _full(pp, 1, m, fwd, bwd, np.full(1, 0.1), True).max()
    # the fill and drain cross 2 (pp - 1) sends, and in 1F1B's steady state a rank's
    # backward waits for the round trip through the next stage; blocking ones also hold
    # every rank
    assert sent >= free + 2 * (pp - 1) * 0.1 - 1e-9
    assert held > sent


def _chunks(layers, pp, vpp, per_layer_f, per_layer_b, head, n):
    from simulator.pipeline_split import stage_layers

    counts = np.array(stage_layers(layers, pp, vpp), dtype=float)[:, None]
    fwd, bwd = counts * per_layer_f, counts * per_layer_b
    fwd[-1] += head / 3
    bwd[-1] += 2 * head / 3
    return np.broadcast_to(fwd, (pp * vpp, n)).copy(), np.broadcast_to(bwd, (pp * vpp, n)).copy()


@pytest.mark.parametrize("layers,pp,vpp", [(80, 8, 8), (80, 8, 4), (126, 16, 3), (40, 3, 2)])
def test_the_cut_is_exact_on_layer_chunks(layers, pp, vpp):
    """Chunks of whole layers (uneven splits), a heavy head: cutting the recursion after
    `STEADY_GROUPS` groups and adding the period loses (almost) nothing: exact but with
    blocking sends on 80 layers over 8 x 4 (0.02 %)."""
    fwd, bwd = _chunks(layers, pp, vpp, 0.01, 0.02, 0.05, 3)
    send = np.array([0.0, 0.001, 0.004])
    m = np.array([12 * pp] * 3)
    for blocking in (False, True):
        cut = extend(makespan(pp, vpp, 12 * pp, fwd, bwd, send, blocking), m, STEADY_GROUPS * pp)
        assert (cut.period > 0).all()
        full = _full(pp, vpp, 12 * pp, fwd, bwd, send, blocking)
        np.testing.assert_allclose(cut.end, full, 1e-9 if not blocking else 5e-4)
        g = pass_graph(pp, vpp, 12 * pp)
        free = recursion(g, fwd, bwd, send, blocking)[0]
        v = np.arange(pp * vpp)
        held = bwd + (send * (v > 0)[:, None] if blocking else 0.0)
        np.testing.assert_allclose(cut.final, free[g.final] - held, 1e-9 if not blocking else 5e-4)
        assert (cut.final[v % pp == 0] + bwd[v % pp == 0] <= cut.end[0] + 1e-12).all()


def test_the_cut_is_close_on_random_chunks():
    """Arbitrary chunk times may settle into a period over several groups: within 0.5 %."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for pp, vpp in [(2, 5), (4, 2), (4, 8), (8, 3), (8, 8)]:
        V, m = pp * vpp, 9 * pp
        fwd = rng.uniform(0.5, 2, (V, 4))
        bwd = fwd * rng.uniform(1.5, 3, (V, 4))
        send = rng.uniform(0, 0.3, 4)
        full = _full(pp, vpp, m, fwd, bwd, send, False).max(axis=0)
        e = makespan(pp, vpp, m, fwd, bwd, send, False)
        cut = extend(e, np.full(4, m), STEADY_GROUPS * pp).end.max(axis=0)
        worst = max(worst, float(np.abs(cut / full - 1).max()))
    assert worst < 0.005


def test_the_period_is_no_shorter_than_the_busiest_rank():
    """126 layers on 8 x 2 chunks of 7-8 layers settle only by the sixth group: the probe
    between groups 2 and 4 read 47.3 against 48 per micro-batch and the cut fell 1 % short
    at 16 groups; the busiest rank's work floors the period."""
    pp, vpp, m = 8, 2, 16 * 8
    fwd, bwd = _chunks(126, pp, vpp, 1.0, 2.0, 2.3, 1)
    fwd[0] += 0.3
    bwd[0] += 0.5
    send = np.array([0.05])
    full = _full(pp, vpp, m, fwd, bwd, send, False).max()
    cut = extend(makespan(pp, vpp, m, fwd, bwd, send, False), np.array([m]), STEADY_GROUPS * pp)
    assert cut.period[0] >= ((fwd + bwd).reshape(vpp, pp).sum(axis=0).max() - 1e-12)
    assert cut.end.max() == pytest.approx(full, rel=5e-3)


@pytest.mark.parametrize("blocking", [False, True])
def test_the_bound_never_exceeds_the_recursion(blocking):
    """`bound` (the planner's first price, `analysis.planner.bounds`) against the whole
    recursion: random chunk times, a stretched drain, one to six groups of micro-batches."""
    rng = np.random.default_rng(7)
    gaps = []
    for pp, vpp in [(2, 3), (4, 2), (4, 7), (8, 3), (8, 8)]:
        V = pp * vpp
        for groups in (1, 2, 6):
            m = groups * pp
            fwd = rng.uniform(0.5, 2, (V, 3))
            bwd = fwd * rng.uniform(1.5, 3, (V, 3))
            send, slow = rng.uniform(0, 0.3, 3), rng.uniform(1, 1.4, (pp, 3))
            g = pass_graph(pp, vpp, m)
            free = recursion(g, fwd, bwd, send, blocking, slow)[0]
            low = bound(pp, vpp, np.full(3, m), fwd, bwd, send, blocking, slow)
            assert (low.end <= free[g.last] * (1 + 1e-12)).all()
            held = bwd * np.tile(slow, (vpp, 1)) + send * (np.arange(V) > 0)[:, None] * blocking
            assert (low.final <= (free[g.final] - held) * (1 + 1e-12) + 1e-12).all()
            gaps.append(float((1 - low.end.max(axis=0) / free[g.last].max(axis=0)).max()))
    assert max(gaps) < 0.35 and np.median(gaps) < 0.25  # and it bounds something


@pytest.mark.parametrize("pp,vpp,m", [(2, 1, 6), (4, 2, 8), (8, 8, 16), (3, 5, 9)])
def test_drain_work_is_the_drain_passes_of_the_graph(pp, vpp, m):
    """`drain_work`'s formula against the passes `PassGraph.drain` flags."""
    rng = np.random.default_rng(pp * vpp)
    fwd, bwd = rng.uniform(1, 2, (pp * vpp, 2)), rng.uniform(2, 4, (pp * vpp, 2))
    g = pass_graph(pp, vpp, m)
    dur = durations(g, fwd, bwd)
    flagged = np.zeros((pp, 2))
    np.add.at(flagged, g.rank[g.drain], dur[g.drain])
    np.testing.assert_allclose(drain_work(pp, vpp, bwd), flagged)


@pytest.mark.parametrize("pp,vpp,m", [(1, 1, 3), (2, 1, 1), (3, 4, 6), (8, 8, 8), (5, 2, 15)])
def test_every_pass_is_reached(pp, vpp, m):
    g = pass_graph(pp, vpp, m)
    assert g.v.shape[0] == 2 * pp * vpp * m
    assert sum(hi - lo for lo, hi in g.levels) == g.v.shape[0]


@pytest.mark.parametrize("pp,vpp", [(1, 1), (3, 1), (8, 1), (2, 2), (4, 3), (8, 8)])
def test_order_arrays_is_the_engines_schedule(pp, vpp):
    """The recursion's pass order is the SimPy engine's (`schedule`), rank by rank."""
    from simulator.plan.schedule import order_arrays, schedule

    for m in (pp, 3 * pp) if vpp > 1 else (1, 2, 7):
        for r in range(pp):
            b, c, mb = order_arrays(pp, vpp, m, r)
            got = [("B" if x else "F", int(y), int(z)) for x, y, z in zip(b, c, mb, strict=True)]
            assert got == schedule(pp, vpp, m, r)


@pytest.mark.parametrize("blocking", [False, True])
def test_graphs_side_by_side_give_each_its_own_recursion(blocking):
    """`recursions` (several graphs in one sweep, the planner's exact pass) returns what
    `recursion` returns for each graph alone, bit for bit: graphs of different depth, layout
    counts and stretched drains, laid side by side."""
    rng = np.random.default_rng(7)
    items = []
    for pp, vpp, m, n in [(2, 3, 4, 1), (4, 2, 16, 3), (8, 8, 16, 2), (3, 1, 7, 5)]:
        g = pass_graph(pp, vpp, m)
        fwd = rng.uniform(0.5, 2.0, (pp * vpp, n))
        slow = rng.uniform(1.0, 1.5, (pp, n)) if n > 2 else None
        items.append((g, fwd, 2 * fwd, rng.uniform(0.0, 0.3, n), slow))
    together = recursions(items, blocking)
    for (g, fwd, bwd, send, slow), (free, hops) in zip(items, together, strict=True):
        one, one_hops = recursion(g, fwd, bwd, send, blocking, slow)
        np.testing.assert_array_equal(free, one)
        if blocking:
            np.testing.assert_array_equal(hops, one_hops)
        else:
            assert hops is None and one_hops is None


@pytest.mark.parametrize("pp,vpp,m", [(4, 3, 8), (8, 8, 16), (3, 1, 7)])
def test_each_level_needs_only_earlier_levels(pp, vpp, m):
    """Passes are numbered level by level: each pass's previous pass and input lie in an
    earlier level (or are the slot that reads 0), and every level is as early as it can be
    (some pass in it needs the level before)."""
    g = pass_graph(pp, vpp, m)
    P = g.v.shape[0]
    for k, (lo, hi) in enumerate(g.levels):
        for a in (g.prev[lo:hi], g.dep[lo:hi]):
            assert np.all((a < lo) | (a == P))
        if k:
            before = g.levels[k - 1]
            needs = np.concatenate([g.prev[lo:hi], g.dep[lo:hi]])
            assert np.any((needs >= before[0]) & (needs < before[1]))


def test_a_pass_order_that_deadlocks_is_an_error():
    """Two ranks whose first passes each wait for the other's second: no level exists."""
    from simulator.plan.makespan import _levels

    with pytest.raises(RuntimeError, match="deadlocks"):
        _levels(np.array([3, -1, 1, -1]), 2)
    np.testing.assert_array_equal(_levels(np.array([-1, -1, 1, -1]), 2), [0, 1, 2, 3])
