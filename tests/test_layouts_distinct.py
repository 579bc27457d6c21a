"""`Layouts.distinct`: what depends on a few columns is computed once per combination."""

from __future__ import annotations

import itertools

import numpy as np

from analysis.closed_form import LAYER_SHAPE, Options, evaluate
from analysis.layouts import Layouts
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model


def _layouts(n: int = 40) -> Layouts:
    """`n` random layouts of small degrees."""
    rng = np.random.default_rng(1)
    return Layouts.from_arrays(
        tp=rng.choice([1, 2, 4], n), pp=rng.choice([1, 2, 4], n), vpp=np.ones(n),
        cp=rng.choice([1, 2], n), dp=rng.choice([1, 2, 8], n), mb=rng.choice([1, 2], n),
        gbs=np.full(n, 64),
        zero=rng.choice([0, 1, 3], n), sp=rng.choice([0, 1], n), recompute=rng.choice([0, 2], n),
    )  # fmt: skip


def test_distinct_rows_spread_back_to_every_layout() -> None:
    lay = _layouts()
    cols = ("tp", "cp", "sp")
    one, index = lay.distinct(cols)
    keys = {tuple(int(getattr(lay, c)[i]) for c in cols) for i in range(len(lay))}
    assert len(one) == len(keys) < len(lay)
    for c in cols:  # each layout's combination is the one its index points at
        assert np.array_equal(getattr(one, c)[index], getattr(lay, c))
    assert lay.take(np.array([3, 0])).row(1) == lay.row(0)


def test_layer_shape_holds_what_the_layer_times_read() -> None:
    """Each layout priced alone gives the same numbers as all of them at once (the layer
    times are priced once per `LAYER_SHAPE` combination and spread back): a grid where
    layouts share their layer shape and differ in every other column."""
    model, hw = load_model("llama-2-7b"), load_profile("h100-sxm")
    grid = np.array(np.meshgrid([1, 2], [0, 1], [0, 2], [1, 2], [1, 4], [0, 3])).reshape(6, -1)
    tp, sp, rc, pp, dp, zero = grid
    lay = Layouts.from_arrays(tp=tp, pp=pp, vpp=1, cp=1, dp=dp, mb=1, gbs=64, zero=zero, sp=sp,
                              recompute=rc)  # fmt: skip
    assert set(LAYER_SHAPE) <= set(Layouts.__dataclass_fields__)
    assert len(lay.distinct(LAYER_SHAPE)[0]) < len(lay)
    together = evaluate(model, hw, 4096, lay, "bf16", Options())
    for i in range(len(lay)):
        alone = evaluate(model, hw, 4096, lay.take(np.array([i])), "bf16", Options())
        for k in ("step_time_s", "breakdown/comm_tp", "breakdown/compute", "comm_bytes/tp"):
            assert alone[k][0] == together[k][i], (k, i)


def test_grouped_prices_once_per_group_and_only_where_arguments_agree() -> None:
    from analysis.grouped import Grouped

    lay = _layouts()
    grp = Grouped(lay, ("tp",))
    calls: list[int] = []

    def fn(x, y):
        calls.append(np.size(x))
        return np.stack([x * 2.0 + y, x - y])

    x = lay.tp.astype(float)  # constant inside each tp group: priced on one layout per group
    out = grp(fn, x, 1.0)
    assert calls == [len(np.unique(lay.tp))]
    assert np.array_equal(out, fn(x, 1.0))
    varying = lay.dp.astype(float)  # differs inside a tp group: priced on every layout
    calls.clear()
    assert np.array_equal(grp(fn, x, varying), fn(x, varying))
    assert calls[0] == len(lay)


def test_distinct_values_finds_equal_rows_exactly() -> None:
    from analysis.step_comm import distinct_values as _distinct_values

    a = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0 + 1e-12])
    b = np.array([1, 1, 1, 2, 2, 1])
    first, index = _distinct_values(a, b)
    assert len(first) == 5  # (3, 1) twice; 3 + 1e-12 is another size
    assert np.array_equal(a[first][index], a) and np.array_equal(b[first][index], b)


def test_chunks_cover_every_layout_once_without_a_tiny_tail() -> None:
    from analysis.planner.search import chunk_bounds

    assert chunk_bounds(33048, 16384) == [(0, 16384), (16384, 33048)]  # 280 joined the last
    assert chunk_bounds(40, 8) == [(0, 8), (8, 16), (16, 24), (24, 32), (32, 40)]
    assert chunk_bounds(0, 8) == []
    for n in (1, 7, 9, 20, 100):
        b = chunk_bounds(n, 8)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(x[1] == y[0] for x, y in itertools.pairwise(b))
        assert all(hi - lo <= 8 * 1.25 for lo, hi in b)


def test_restricted_grouping_and_zero3_terms_on_some_layouts_only() -> None:
    """`Grouped.restrict` groups the kept layouts as before; ZeRO-3 terms priced on the ZeRO-3
    layouts only equal the terms priced on all of them there, and are 0 elsewhere."""
    from analysis.grouped import Grouped
    from analysis.step_comm import zero3_per_microbatch
    from simulator.plan.step import Zero3Unit

    lay = _layouts()
    grp = Grouped(lay, ("tp", "dp", "zero"))
    keep = lay.zero == 3
    sub = grp.restrict(keep)
    assert np.array_equal(sub.index[sub.first], np.arange(len(sub.first)))
    x = lay.dp.astype(float) * 8.0
    assert np.array_equal(sub(lambda a: a + 1.0, x[keep]), x[keep] + 1.0)
    hw = load_profile("h100-sxm")
    ahead = np.where(lay.tp > 1, 0.4, 1.0)  # some units past the prefetch limit
    units = [
        Zero3Unit("layer", 1e8, lay.pp * 2.0, 2e8 * lay.tp, 4e8, lay.dp, lay.tp, 1, ahead),
        Zero3Unit("embedding", 5e8, np.where(lay.pp > 1, 1.0, 0.0), 1e9, 2e9, lay.dp, lay.tp, 1),
    ]
    every = zero3_per_microbatch(hw, units, grp)
    some = zero3_per_microbatch(hw, units, grp, where=keep)
    assert len(every) == len(some) == 8
    for a, b in zip(every, some, strict=True):
        assert np.array_equal(np.where(keep, a, 0.0), b)
    assert any(np.any(b[keep] > 0) for b in some)


def test_pricing_together_gives_each_request_what_it_gets_alone() -> None:
    """`price_together` merges several generators' calls of a kind into one pricing call;
    `priced_where` prices several requests at once, 0 where not needed."""
    from analysis.step_comm import grouped_times, grouped_times_gen, price_together, priced_where
    from simulator.costmodel.network import group_collective_time as gct

    hw = load_profile("h100-sxm")
    size = np.array([1e6, 3e8, 1e6, 5e4])
    n, st = np.array([8, 16, 64, 2]), np.array([1, 8, 8, 1])
    a = grouped_times_gen(None, hw, "all_reduce", (size, n, st), (2 * size, n, st))
    b = grouped_times_gen(None, hw, "all_gather", (size, n, 1))
    c = grouped_times_gen(None, hw, "all_reduce", (size / 3, 8, st))
    (a1, a2), (b1,), (c1,) = price_together(hw, a, b, c)
    assert np.array_equal(a1, gct(hw, "all_reduce", size, n, st))
    assert np.array_equal(a2, grouped_times(None, hw, "all_reduce", (2 * size, n, st))[0])
    assert np.array_equal(b1, gct(hw, "all_gather", size, n, 1))
    assert np.array_equal(c1, gct(hw, "all_reduce", size / 3, 8, st))
    need = n > 8
    x, y, z = priced_where(hw, [("reduce_scatter", need, size, n, st),
                                ("reduce_scatter", n > 0, size, n, st),
                                ("all_gather", n > 99, size, n, st)])  # fmt: skip
    alone = gct(hw, "reduce_scatter", size, n, st)
    assert np.array_equal(x, np.where(need, alone, 0.0)) and np.all(x[need] > 0)
    assert np.array_equal(y, alone) and not np.any(z)


def test_evaluate_asked_for_some_keys_gives_those_numbers_only() -> None:
    """`evaluate(keys=...)` (the planner's search) returns just those keys, each equal to the
    full evaluation's; what no asked key needs is skipped."""
    model, hw = load_model("llama-2-7b"), load_profile("h100-sxm")
    lay = _layouts()
    full = evaluate(model, hw, 4096, lay, "bf16", Options())
    keys = ("step_time_s", "memory_per_gpu_bytes", "energy_per_gpu_j")
    some = evaluate(model, hw, 4096, lay, "bf16", Options(), keys=keys)
    assert set(some) == set(keys) and len(full) > len(keys)
    for k in keys:
        assert some[k].tobytes() == full[k].tobytes()
