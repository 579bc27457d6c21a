"""The step plan (`simulator.plan`): its tables' invariants, and one entry picked up by both
engines."""

from __future__ import annotations

import pytest

from analysis.predict import analytic_arrays
from hwprofiles.catalogue import load_profile
from simulator.costmodel.collectives import bus_factor
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload
from simulator.plan import layer
from simulator.plan.rules import beside


@pytest.mark.parametrize("sp", [False, True])
@pytest.mark.parametrize("backward", [False, True])
def test_every_tp_collective_overlaps_a_gemm(sp, backward):
    colls = layer.tp_collectives(backward, sp)
    assert colls
    for after, c in colls.items():
        assert c.after == after and c.after in layer.FWD_ORDER
        assert c.partner in layer.GEMMS
        assert (c.dim, c.stream, c.category) == ("tp", "tp", "comm_tp")


def test_sequence_parallelism_moves_the_same_tp_bytes():
    """Korthikanti et al. 2022: an all-reduce is a reduce-scatter plus an all-gather."""
    for n in (2, 4, 8):
        per_sp = {
            sp: sum(
                float(bus_factor(c.kind, n)) for _, c in layer.layer_passes(sp) if c.dim == "tp"
            )
            for sp in (False, True)
        }
        assert per_sp[True] == pytest.approx(per_sp[False])


def test_beside_matches_a_kernel_slowed_while_the_collective_runs():
    phi = 0.2
    # short collective: the kernel is slowed by phi x its time, nothing exposed
    assert beside(1.0, 2.0, phi) == pytest.approx((0.0, 0.2))
    # long collective: the kernel runs slowed throughout (2 / 0.8 = 2.5 s), the rest is exposed
    assert beside(4.0, 2.0, phi) == pytest.approx((1.5, 0.5))


def test_a_collective_added_to_the_plan_reaches_both_engines(monkeypatch):
    """One more forward all-reduce per layer, written once in the plan's table: both engines
    price 5 collectives where they priced 4, and still agree exactly on TP communication."""
    hw = load_profile("h100-sxm")
    w = Workload(
        load_model("llama-2-7b"), ParallelConfig(tp=8, global_batch_size=8).resolve(8), 2048
    )
    opts = Options(overlap_tp_comm_backward=False)  # every TP collective blocking: all exposed

    def tp_times():
        des = simulate_step(w, hw, opts, contention=False).step
        cf = analytic_arrays(w, hw, opts)
        return (
            des.comm_total["tp"],
            cf["comm_total/tp"],
            des.breakdown["comm_tp"],
            cf["breakdown/comm_tp"],
        )

    before = tp_times()
    monkeypatch.setitem(layer._AR_FWD, "mlp/act", ("all_reduce", "mlp/down"))
    after = tp_times()
    for b, a in zip(before, after, strict=True):
        assert a == pytest.approx(b * 5 / 4, rel=1e-9)
    assert after[0] == pytest.approx(after[1], rel=1e-9)
    assert after[2] == pytest.approx(after[3], rel=1e-9)
