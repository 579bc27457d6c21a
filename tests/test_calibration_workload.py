"""Workload GEMMs: the shapes are the validation presets', the stopping rule is honoured."""

from __future__ import annotations

from hwprofiles.calibration.plan import make_plan
from hwprofiles.calibration.summary import _stability
from hwprofiles.calibration.workload import MIN_ROUNDS, WORKLOADS, measure_kernels
from validation.gptconfig import PRESETS


def test_workloads_are_the_validation_presets():
    for name in ("tiny", "small"):
        w, cfg = WORKLOADS[name], PRESETS[name]
        assert (w.hidden, w.ffn, w.vocab) == (cfg.hidden_size, cfg.ffn_size, cfg.vocab_size)
        assert w.tokens == cfg.micro_batch_size * cfg.seq_len
    quick = make_plan("quick")
    assert set(quick.workloads) == {"tiny", "small"}
    assert {s.label() for s in quick.workload_attention} == {
        PRESETS[n].attention_shape() for n in ("tiny", "small")
    }


def test_each_layer_has_its_three_gemms():
    shapes = WORKLOADS["small"].gemms()
    assert len(shapes) == 15
    up = [s for s in shapes if s.name == "small/mlp_up"]
    assert [(s.pass_, s.m, s.k, s.n) for s in up] == [
        ("fwd", 512, 256, 1024),
        ("bwd_dx", 512, 1024, 256),
        ("bwd_dw", 256, 512, 1024),
    ]


def test_no_budget_still_takes_the_minimum_rounds():
    pairs = [(s, "fp32") for s in WORKLOADS["tiny"].gemms()[:2]]
    rows, st = measure_kernels(pairs, budget_s=0.0)
    assert st["rounds"] == MIN_ROUNDS and st["kernels"] == 2
    assert [r["count"] for r in rows] == [MIN_ROUNDS, MIN_ROUNDS]
    assert st["verdict"] == ("steady" if st["settled"] == 2 else "unsteady")
    assert all(r["kind"] == "workload" and r["flops_per_s"] > 0 for r in rows)
    assert "IQR/median" in st["rule"]


def test_kernels_sample_until_settled_or_out_of_rounds():
    pairs = [(WORKLOADS["tiny"].gemms()[0], "fp32")]
    rows, st = measure_kernels(pairs, budget_s=60.0)
    assert rows[0]["count"] >= MIN_ROUNDS or st["verdict"] == "unsteady"
    assert st["verdict"] == ("steady" if st["settled"] == 1 else "unsteady")


class _M:
    def __init__(self, stability):
        self.device, self.machine, self.stability = "cpu", {"cpu_cores": "2"}, stability


def test_stability_verdict_counts_load_and_unsettled_kernels():
    base = {"verdict": "steady", "kernels": 4, "settled": 4}
    calm = _stability(_M(base | {"load_average_1m_start": "0.5", "load_average_1m_end": "1.0"}))
    assert calm["verdict"] == "steady" and calm["reasons"] == []
    busy = _stability(_M(base | {"load_average_1m_start": "12.5", "load_average_1m_end": "1"}))
    assert busy["verdict"] == "unsteady"
    assert busy["reasons"] == ["load average 12.5 at the start on 2 cores"]
    loose = _stability(_M({"verdict": "unsteady", "kernels": 4, "settled": 1}))
    assert loose["reasons"] == ["3 of 4 kernels did not settle"]
    assert _stability(_M({}))["verdict"] == "unknown"


def test_layers_gemms_are_summarised_per_flops_and_priced_as_measured():
    """Workload rows -> one timing per (dtype, FLOPs) (equal-FLOP layers averaged, backward =
    dX + dW); a GEMM op of exactly those FLOPs is priced from it, any other from the curve."""
    import dataclasses

    import numpy as np
    import pandas as pd

    from hwprofiles.calibration.summary import gemm_layers
    from hwprofiles.catalogue import load_profile
    from hwprofiles.host import HostProfile, under_load
    from hwprofiles.profile import GemmTiming
    from simulator.costmodel.ops import Op
    from simulator.costmodel.timing import op_times

    rows = [
        {"kind": "workload", "dtype": "fp32", "name": n, "pass": p, "flops": 100, "median_s": t}
        for n, ts in (("w/up", (1.0, 2.0, 3.0)), ("w/down", (3.0, 4.0, 5.0)))
        for p, t in zip(("fwd", "bwd_dx", "bwd_dw"), ts, strict=True)
    ] + [{"kind": "square", "dtype": "fp32", "name": "sq", "pass": "fwd", "flops": 7,
          "median_s": 9.0}]  # fmt: skip
    (layer,) = gemm_layers(pd.DataFrame(rows))
    assert layer == {"dtype": "fp32", "flops": 100, "fwd_s": 2.0, "bwd_s": 7.0,
                     "layers": "w/down, w/up"}  # fmt: skip

    hw = load_profile("cpu")
    acc = dataclasses.replace(hw.accelerator, gemm_timings=(GemmTiming("fp32", 100, 2.0, 7.0),))
    hit = Op("mlp/up", "matmul", 100.0, np.array([100.0]), np.array([200.0]))
    assert [float(np.ravel(x)[0]) for x in op_times(acc, hit, "fp32")] == [2.0, 7.0]
    miss = Op("mlp/up", "matmul", 120.0, 120.0, 240.0)
    assert op_times(acc, miss, "fp32") == op_times(hw.accelerator, miss, "fp32")
    slowed = dataclasses.replace(hw, accelerator=acc, host=HostProfile(contention={"fp32": 0.5}))
    assert under_load(slowed, 2, "fp32").accelerator.measured_gemm("fp32", 100).fwd_s == 4.0


def test_each_pass_is_timed_in_the_layout_nn_linear_runs_it():
    """forward X @ W^T (B transposed), dX = dY @ W (contiguous), dW = dY^T @ X (A transposed),
    as aten's addmm/mm calls of the model's training step show."""
    from hwprofiles.calibration.workload import WORKLOADS, operands

    fwd, dx, dw = [s for s in WORKLOADS["tiny"].gemms() if s.name == "tiny/mlp_up"]
    a, b, c = operands(fwd, "fp32", 8)
    assert a.is_contiguous() and b.t().is_contiguous() and tuple(c.shape) == (8, 256)
    a, b, c = operands(dx, "fp32", 8)
    assert a.is_contiguous() and b.is_contiguous() and tuple(b.shape) == (256, 64)
    a, b, c = operands(dw, "fp32", 8)  # m = 64 inputs, n = 256 outputs, k = 128 tokens
    assert a.t().is_contiguous() and tuple(a.shape) == (256, 128) and tuple(c.shape) == (256, 8)


def test_bf16_without_a_matrix_unit_sweeps_one_hidden_size():
    from hwprofiles.calibration.plan import for_dtype, make_plan

    quick = make_plan("quick")
    assert for_dtype(quick, "bf16", "cpu", "").hidden_sizes == quick.hidden_sizes[:1]
    assert for_dtype(quick, "bf16", "cpu", "amx_bf16") is quick
    assert for_dtype(quick, "bf16", "cpu", None) is quick  # unknown CPU: the whole plan
    assert for_dtype(quick, "fp32", "cpu", "") is quick
    assert for_dtype(make_plan("tiny"), "bf16", "cpu", "") == make_plan("tiny")
