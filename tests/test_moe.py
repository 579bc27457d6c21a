"""Mixture-of-experts steps: expert parallelism in both engines, NVL72 domains, bad input.

The engines read the same step plan (`simulator.plan.layer.ep_all_to_alls`) and cost model
(`simulator.costmodel.moe`), so without contention they agree; with contention the SimPy
engine shares the links the all-to-all crosses and can only be slower.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from analysis.planner.space import BatchPolicy, SearchSpace, enumerate_layouts
from analysis.predict import predict
from hwprofiles.catalogue import load_profile
from simulator.costmodel.flops import model_flops_per_token
from simulator.costmodel.network import alltoall_time
from simulator.models_catalogue import load_model
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload


def _workload(model: str, gpus: int, seq: int, **par) -> Workload:
    p = ParallelConfig(**par).resolve(gpus)
    return Workload(load_model(model), p, seq)


CASES = {
    # the Done-when shapes, scaled down (fewer micro-batches) to keep the SimPy run short
    "mixtral-h100": ("mixtral-8x7b", "h100-sxm", 64, 4096,
                     {"tp": 2, "pp": 4, "ep": 8, "sequence_parallel": True, "zero_stage": 1,
                      "global_batch_size": 32, "precision": "bf16"}),
    "deepseek-gb300": ("deepseek-v3", "gb300", 256, 4096,
                       {"tp": 1, "pp": 2, "ep": 32, "zero_stage": 1, "global_batch_size": 512,
                        "precision": "mxfp8"}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("overlap", ["none", "shared", "1f1b"])
def test_engines_agree_within_3_percent_without_contention(case: str, overlap: str) -> None:
    model, hw_name, gpus, seq, par = CASES[case]
    w = _workload(model, gpus, seq, **par)
    hw = load_profile(hw_name)
    opts = Options(moe_a2a_overlap=overlap == "shared", moe_a2a_overlap_1f1b=overlap == "1f1b")
    a = predict(w, hw, "analytic", opts)
    d = predict(w, hw, "des", opts, contention=False)
    assert d.step_time_s == pytest.approx(a.step_time_s, rel=0.03)
    assert a.comm_breakdown["ep"] > 0  # the all-to-alls ran, hidden or not
    # exposed all-to-all: the same within 1% of the step (overlap splits it differently)
    tol = 0.01 * a.step_time_s
    assert d.breakdown["comm_ep"] == pytest.approx(a.breakdown["comm_ep"], abs=tol)
    if overlap == "none":
        assert a.breakdown["comm_ep"] > 0


def test_contention_only_slows_the_des_step() -> None:
    # EP across nodes (etp 1: 16 consecutive ranks over 2 DGX nodes): the all-to-all shares
    # the NICs with the data-parallel reduction
    w = _workload("qwen3-30b-a3b", 32, 4096, tp=1, pp=2, ep=16, zero_stage=1,
                  global_batch_size=32)  # fmt: skip
    hw = load_profile("h100-sxm")
    free = predict(w, hw, "des", contention=False)
    shared = predict(w, hw, "des", contention=True)
    assert shared.step_time_s >= free.step_time_s * (1 - 1e-9)


def test_nvl72_keeps_a_32_way_all_to_all_on_nvlink() -> None:
    # 32 ranks: inside one 72-GPU rack on GB200, over 4 nodes' NICs on HGX H200
    size = 64 * 2**20
    t_rack = float(alltoall_time(load_profile("gb200"), size, 32, 1))
    t_hgx = float(alltoall_time(load_profile("h200"), size, 32, 1))
    nvlink = load_profile("gb200").node.scale_up
    assert nvlink.bandwidth_bytes_per_s == pytest.approx(900e9)  # 1.8 TB/s both directions
    assert t_rack == pytest.approx(nvlink.latency_s + size * 31 / 32 / nvlink.effective_bandwidth)
    assert t_hgx > 5 * t_rack


def test_moe_model_flops_count_active_parameters() -> None:
    m = load_model("mixtral-8x7b")
    s = 4096
    # 6 x (active parameters that multiply activations: no input embedding lookup) plus the
    # attention scores and context, 12 L h s (PaLM App. B with MHA widths)
    active = (
        m.active_params()
        - m.vocab_size * m.hidden_size
        - m.hidden_size * (2 * m.num_hidden_layers + 1)
    )
    expected = 6 * active + 12 * m.num_hidden_layers * m.hidden_size * s
    assert model_flops_per_token(m, s) == pytest.approx(expected, rel=0.01)
    dense_equivalent = 6 * m.num_params()
    assert model_flops_per_token(m, s) < 0.5 * dense_equivalent


def test_expert_states_shard_over_the_expert_data_parallel_group() -> None:
    w1 = _workload("mixtral-8x7b", 64, 4096, tp=1, pp=4, ep=1, zero_stage=1)
    w8 = _workload("mixtral-8x7b", 64, 4096, tp=1, pp=4, ep=8, zero_stage=1)
    hw = load_profile("h100-sxm")
    m1, m8 = predict(w1, hw).memory_breakdown, predict(w8, hw).memory_breakdown
    # weights and (ZeRO-1: unsharded) gradients: experts split 8 ways; optimizer states: the
    # experts' over dp*cp*tp/ep = 2 ranks instead of dp = 16, the same bytes per device
    assert m8["weights"] < m1["weights"] / 4
    assert m8["gradients"] < m1["gradients"] / 4
    assert m8["optimizer"] == pytest.approx(m1["optimizer"])


def test_planner_searches_expert_parallelism_on_nvl72() -> None:
    m = load_model("deepseek-v3")
    space = SearchSpace(max_cp=1, max_vpp=1, micro_batches=(1,), zero_stages=(1,), recompute=(1,))
    e = enumerate_layouts(m, 256, 72, 4096, BatchPolicy(1024), space)
    eps = set(e.layouts.ep.tolist())
    assert {1, 8, 32, 64, 256} <= eps
    assert all(m.n_routed_experts % ep == 0 for ep in eps)


def test_mxfp8_and_nvfp4_use_their_peaks_and_hopper_has_neither() -> None:
    gb300 = load_profile("gb300").accelerator
    assert (gb300.peak("mxfp8"), gb300.peak("nvfp4")) == (5000e12, 15000e12)
    w = _workload("qwen3-30b-a3b", 8, 4096, tp=1, pp=1, ep=8, global_batch_size=8,
                  precision="nvfp4")  # fmt: skip
    r = predict(w, load_profile("b200"))
    assert r.peak_flops_per_gpu == 9000e12
    with pytest.raises(ValueError, match="mxfp8"):
        predict(dataclasses.replace(w, parallel=dataclasses.replace(w.parallel, precision="mxfp8")),
                load_profile("h100-sxm"))  # fmt: skip


BAD = [
    (["--model", "mixtral-8x7b", "--ep", "3"], "ep: 3 must divide the routed experts"),
    (["--model", "qwen3-30b-a3b", "--tp", "2", "--pp", "4", "--ep", "16"],
     "ep: 16 ep\\*etp = 16\\*1 must divide tp\\*cp\\*dp = 2\\*1\\*4 = 8"),
    (["--model", "llama-3-8b", "--tp", "1", "--pp", "1", "--ep", "2"],
     "ep: 2 needs a mixture-of-experts model"),
    (["--model", "mixtral-8x7b", "--tp", "1", "--pp", "1", "--ep", "8",
      "--moe-capacity-factor", "0"], "moe_capacity_factor: 0.0 must be > 0"),
    (["--model", "mixtral-8x7b", "--tp", "1", "--pp", "1", "--ep", "16", "--ep-on-nvlink"],
     "ep: 16 .*must divide the routed experts"),
    (["--model", "qwen3-30b-a3b", "--tp", "1", "--pp", "1", "--ep", "16", "--ep-on-nvlink"],
     "ep: 16 ep\\*etp = 16\\*1 = 16 GPUs exceed the NVLink domain of 8 GPUs"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "match"), BAD)
def test_bad_expert_input_is_one_line_exit_2(args: list[str], match: str) -> None:
    r = CliRunner().invoke(
        app, ["simulate", "--hardware", "h100-sxm", "--gpus", "32", "--seq-len", "2048", *args]
    )
    assert r.exit_code == 2, r.output
    out = r.output.strip()
    assert "\n" not in out and "Traceback" not in out
    assert re.search(match, out), out


def test_top_k_above_the_experts_is_rejected() -> None:
    rule = r"num_experts_per_tok: 9 must be in 1\.\.n_routed_experts"
    with pytest.raises(ValueError, match=rule):
        dataclasses.replace(load_model("mixtral-8x7b"), num_experts_per_tok=9)


def test_moe_accuracy_rows_cover_both_groups_outside_the_fitted_set() -> None:
    from analysis.accuracy.moe_rows import moe_comparisons
    from analysis.accuracy.rows import cases

    moe = moe_comparisons()
    by_group = {r["group"] for r in moe["rows"]}
    assert by_group == {"MOE", "NVL"}
    assert {r["hardware"] for r in moe["rows"] if r["group"] == "NVL"} == {"gb200", "gb300"}
    usable, _ = cases()
    assert not any(c.group in ("MOE", "NVL") for c in usable)
