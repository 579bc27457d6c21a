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
