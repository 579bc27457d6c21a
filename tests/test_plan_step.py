"""The step-level plan (`simulator.plan.step`): one plan describes many layouts at once, and its
bucket arithmetic is what both engines use."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulator.models_catalogue import load_model
from simulator.options import Options
from simulator.plan.step import Buckets, step_plan

MODEL = load_model("llama-2-7b")


def _plan(**k):
    base = dict(
        tp=2, cp=1, dp=8, pp=2, vpp=1, zero=1, dense=3e9, expert=0.0, edp=1, estride=2,
        layers=16, has_emb=True, has_head=False, p2p_bytes=1e7, act_per_layer=1e8, logits=1e8,
    )  # fmt: skip
    base.update(k)
    return step_plan(MODEL, "bf16", Options(), **base)


def _at(x, j):
    return np.broadcast_to(x, (3,))[j]


def test_array_plan_equals_one_plan_per_layout():
    """Array-valued sizes: the plan of three layouts is the three layouts' plans."""
    tp, dp, zero = np.array([1, 2, 4]), np.array([16, 8, 4]), np.array([0, 1, 3])
    dense = np.array([6e9, 3e9, 1.5e9])
    many = _plan(tp=tp, dp=dp, zero=zero, dense=dense)
    for j in range(3):
        one = _plan(tp=int(tp[j]), dp=int(dp[j]), zero=int(zero[j]), dense=float(dense[j]))
        for a, b in zip(many.grads + many.params, one.grads + one.params, strict=True):
            assert bool(_at(a.where, j)) == bool(b.where)
            assert _at(a.count(), j) == pytest.approx(b.count())
            assert _at(a.remainder(), j) == pytest.approx(b.remainder())
        for a, b in zip(many.zero3, one.zero3, strict=True):
            assert _at(a.gather, j) == pytest.approx(b.gather)
        assert many.memory.optimizer[j] == pytest.approx(one.memory.optimizer)
        assert many.optimizer_params[j] == pytest.approx(one.optimizer_params)


def test_one_gradient_collective_per_zero_stage():
    """ZeRO-0 all-reduces, ZeRO-1/2 reduce-scatter and gather, ZeRO-3 uses units instead."""
    kinds = {
        z: [b.kind for b in _plan(zero=z).grads + _plan(zero=z).params if b.where] for z in range(4)
    }
    assert kinds == {
        0: ["all_reduce"],
        1: ["reduce_scatter", "all_gather"],
        2: ["reduce_scatter", "all_gather"],
        3: [],
    }
    assert _plan(zero=3).memory.zero3_buffers > 0 == _plan(zero=1).memory.zero3_buffers


def test_bucket_split_matches_count_and_remainder():
    b = Buckets("grad", "all_reduce", 10.5, 4.0, "dp", 8, 1, True, "backward", True)
    pieces = [1.0, 2.0, 3.0, 0.5, 4.0]
    out = b.split(pieces, from_end=True)
    assert len(out) == b.count() == 3
    assert sum(x for x, _ in out) == pytest.approx(b.total)
    assert out[0][0] == pytest.approx(b.remainder()) and out[-1][0] == b.full() == 4.0
    assert [p for _, p in out] == [1, 3, 4]  # the piece holding each bucket's last byte
    assert [x for x, _ in b.split(pieces, from_end=False)] == [4.0, 4.0, 2.5]


def test_sends_per_microbatch_and_fill_drain():
    s = _plan(pp=4, vpp=3).sends
    assert (s.per_microbatch, s.fill_drain, bool(s.where)) == (6, 6, True)
    assert not bool(_plan(pp=1).sends.where)


def test_a_bucketed_collective_added_to_the_plan_reaches_both_engines(monkeypatch):
    """One more all-reduce per gradient bucket, added to the step plan only: both engines run
    it (the SimPy engine bucket by bucket on the DP stream, the closed form as full buckets
    plus the remainder), the DP communication doubles in both, and they still agree."""
    import analysis.closed_form as cf_module
    import simulator.des.step as des_module
    from analysis.predict import analytic_arrays
    from hwprofiles.catalogue import load_profile
    from simulator.des.run import simulate_step
    from simulator.parallel import ParallelConfig, Workload
    from simulator.plan import step as plan_step

    hw = load_profile("a100-80gb")
    w = Workload(load_model("gpt3-1.3b"), ParallelConfig(global_batch_size=32).resolve(16), 2048)
    opts = Options(overlap_grad_reduce=False, bucket_bytes=200e6)

    def dp():
        des = simulate_step(w, hw, opts, contention=False).step
        cf = analytic_arrays(w, hw, opts)
        return des.comm_total["dp"], cf["comm_total/dp"], des.breakdown["comm_dp"]

    before = dp()
    real = plan_step.step_plan

    def with_extra(*args, **kwargs):
        plan = real(*args, **kwargs)
        ar = next(b for b in plan.grads if b.name == "grad" and b.kind == "all_reduce")
        return replace(plan, grads=(*plan.grads, replace(ar, name="extra")))

    monkeypatch.setattr(cf_module, "step_plan", with_extra)
    monkeypatch.setattr(des_module, "step_plan", with_extra)
    after = dp()
    for b, a in zip(before, after, strict=True):
        assert a == pytest.approx(2 * b, rel=1e-6)
    assert after[0] == pytest.approx(after[1], rel=1e-6)


def test_drain_rule_limits():
    """Rule "drain": all of the other stages' slowdowns without interleaving; with it, all
    for a reduction much shorter than its window, the last chunk's share for one covering it."""
    from simulator.plan.rules import chunk_passes, drain_slowdown

    assert drain_slowdown(4, 1, 0.1, 5.0, 1.0) == pytest.approx(0.3)  # vpp 1: whatever x
    assert drain_slowdown(4, 5, 0.1, 1e-9, 1.0) == pytest.approx(0.3)  # x -> 0
    assert drain_slowdown(4, 5, 0.1, 2.0, 1.0) == pytest.approx(0.3 / 17)  # x >= 1: 1/(1+16)
    assert chunk_passes(4, 5) == pytest.approx(17 / 5) and chunk_passes(8, 1) == 1


def test_zero3_bubble_rule_only_moves_zero3_with_a_pipeline(monkeypatch):
    """Rule "ZeRO-3 in the fill and drain": the fill and drain stretch by the share of a
    micro-batch the stages wait for gathers (labelled comm_zero3) or run slowed (labelled
    pipeline_bubble); nothing without a pipeline; the closed form applies it to ZeRO-3
    layouts only."""
    from analysis.closed_form import Options as CfOptions
    from analysis.predict import analytic_arrays
    from hwprofiles.catalogue import load_profile
    from simulator.parallel import ParallelConfig, Workload
    from simulator.plan import rules

    waits, slow = rules.zero3_bubble(0.2, 1.0, 0.05, 0.1)
    assert (waits, slow) == (pytest.approx(0.01), pytest.approx(0.02))
    assert rules.zero3_bubble(0.0, 1.0, 0.05, 0.1) == (0.0, 0.0)  # pp 1: nothing to stretch

    hw = load_profile("h100-sxm")

    def bubbles():
        out = []
        for zero in (1, 3):
            layout = ParallelConfig(pp=2, zero_stage=zero, global_batch_size=64).resolve(32)
            cf = analytic_arrays(Workload(MODEL, layout, 2048), hw, CfOptions())
            out.append((float(cf["breakdown/pipeline_bubble"]), float(cf["breakdown/comm_zero3"])))
        return out

    before = bubbles()
    monkeypatch.setattr(rules, "zero3_bubble", lambda b, *a: (9.0 * b, 9.0 * b))
    after = bubbles()
    assert after[0] == before[0]  # ZeRO-1: untouched
    assert after[1][0] > before[1][0]  # ZeRO-3: the slowdowns join the bubble
    assert after[1][1] > before[1][1]  # and the waits comm_zero3


def test_ring_sends_rule_counts_the_interleaved_ring_hops():
    """Rule "interleaved ring": the fill and drain carry 2 (pp vpp - 1) sends, 2 (pp - 1) of
    them priced as comm_pp; the other 2 pp (vpp - 1) join the bubble; none without
    interleaving or with blocking sends (already in each rank's own time)."""
    from simulator.plan.rules import ring_sends

    assert ring_sends(8, 10, 1e-3, True) == pytest.approx(2 * 8 * 9 * 1e-3)
    assert ring_sends(8, 1, 1e-3, True) == 0.0
    assert float(ring_sends(8, 10, 1e-3, False)) == 0.0


def test_zero3_drain_backlog_only_with_a_pipeline_and_a_comm_bound_backward():
    """Rule "ZeRO-3 drain backlog": with a pipeline, the first stage's reduce-scatters trail
    its last backward by what the compute cannot hide of the backward's link time; at least
    the last reduce-scatter; without a pipeline the last reduce-scatter alone."""
    from simulator.plan.rules import beside, zero3_drain_backlog

    # link 0.066 s per micro-batch, gathers 0.033 (half in the backward), backward 0.03 s
    want = beside(0.066 - 0.0165, 0.03, 0.18)[0]
    assert float(zero3_drain_backlog(0.003, 0.066, 0.033, 0.03, 0.18, 4)) == pytest.approx(want)
    assert float(zero3_drain_backlog(0.003, 0.066, 0.033, 0.03, 0.18, 1)) == 0.003
    assert float(zero3_drain_backlog(0.003, 0.02, 0.01, 0.03, 0.18, 4)) == 0.003  # hidden
