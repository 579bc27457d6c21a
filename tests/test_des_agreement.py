"""The SimPy engine against the closed form, contention and variability off.

Both engines price every kernel and collective with the same cost model, so where the step's
structure is the same they must agree: the issue's requirement is 2 % over DP-only, TP-only,
PP-only, 3D and ZeRO-3 layouts, ZeRO-3 with a pipeline too (and many gradient buckets, fp8,
interleaving with a long reduction); the long-sequence CP case runs at sequence 8192.
docs/simulator.md says where the engines' structures still differ; tests/test_des_agreement_grid.py
holds every breakdown part, across Options.
"""

from __future__ import annotations

import pytest

from analysis.closed_form import Options
from analysis.predict import analytic_arrays
from hwprofiles.catalogue import load_profile
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload

GRID = {
    # name: (hardware, model, GPUs, layout)
    "dp-only": ("a100-80gb", "gpt3-1.3b", 16, dict(global_batch_size=128, micro_batch_size=2)),
    "dp-only-h100": ("h100-sxm", "llama-2-7b", 16, dict(global_batch_size=64)),
    "tp-only": ("h100-sxm", "llama-2-7b", 8, dict(tp=8, global_batch_size=8)),
    "tp-only-sp": (
        "a100-80gb",
        "gpt3-6.7b",
        8,
        dict(tp=8, sequence_parallel=True, global_batch_size=16),
    ),
    "pp-only": ("a100-80gb", "gpt3-6.7b", 4, dict(pp=4, global_batch_size=32)),
    "3d": ("a100-80gb", "gpt3-13b", 64, dict(tp=8, pp=4, global_batch_size=128)),
    "3d-full-recompute": (
        "mi300x",
        "llama-2-13b",
        64,
        dict(tp=4, pp=2, recompute="full", global_batch_size=128),
    ),
    "zero3": (
        "a100-80gb",
        "gpt3-1.3b",
        16,
        dict(zero_stage=3, global_batch_size=64, micro_batch_size=2),
    ),
    "zero3-h100": ("h100-sxm", "llama-2-7b", 32, dict(zero_stage=3, global_batch_size=64)),
    # many buckets, each paying its latency, against one collective of the whole gradient
    "dp-only-many-buckets": ("h100-sxm", "llama-2-7b", 64, dict(global_batch_size=256)),
    "fp8-zero2": (
        "h100-sxm",
        "llama-2-13b",
        32,
        dict(tp=4, pp=2, zero_stage=2, global_batch_size=64, precision="fp8"),
    ),
    # interleaving, a gradient reduction longer than its window (plan.rules.drain_slowdown)
    "interleaved-zero1-sp": (
        "h100-sxm",
        "llama-2-70b",
        256,
        dict(
            tp=8,
            pp=4,
            vpp=5,
            sequence_parallel=True,
            zero_stage=1,
            global_batch_size=512,
            recompute="selective",
        ),
    ),
    # ZeRO-3 with a pipeline: every stage's exposed gathers and slowed compute lengthen the
    # fill and drain (plan.rules.zero3_bubble: waits in comm_zero3, slowdowns in the bubble)
    "zero3-pp2": ("h100-sxm", "llama-2-7b", 32, dict(pp=2, zero_stage=3, global_batch_size=64)),
}

LOOSER = {
    "cp": (  # -0.3 %: here for its sequence length only
        "h100-sxm",
        "llama-3-8b",
        32,
        dict(tp=2, cp=2, sequence_parallel=True, global_batch_size=64),
    ),
}


def _ratio(hw_name, model, gpus, layout, seq=2048, options=None):
    opts = options or Options()
    hw = load_profile(hw_name)
    w = Workload(load_model(model), ParallelConfig(**layout).resolve(gpus), seq)
    des = simulate_step(w, hw, opts, contention=False)
    cf = analytic_arrays(w, hw, opts)
    return des.step_time_s / cf["step_time_s"], des, cf


@pytest.mark.parametrize("name", sorted(GRID))
def test_des_agrees_with_closed_form_within_2_percent(name):
    ratio, des, cf = _ratio(*GRID[name])
    assert ratio == pytest.approx(1.0, abs=0.02), (name, des.arrays, cf)


@pytest.mark.parametrize("name", sorted(LOOSER))
def test_des_close_to_closed_form_where_structures_differ(name):
    ratio, _des, _cf = _ratio(*LOOSER[name], seq=8192 if name == "cp" else 2048)
    assert ratio == pytest.approx(1.0, abs=0.04), name


@pytest.mark.slow
def test_gpt3_175b_on_1024_gpus_agrees():
    """Narayanan et al. 2021, Table 1 layout: TP 8, PP 8, DP 16, micro-batch 1, batch 1536."""
    ratio, des, _cf = _ratio(
        "a100-80gb", "gpt3-175b", 1024, dict(tp=8, pp=8, global_batch_size=1536)
    )
    assert ratio == pytest.approx(1.0, abs=0.02)
    assert des.extra["critical_path"]["bottleneck_rank"] >= 0


def test_compute_and_tp_parts_match_exactly_where_nothing_overlaps():
    """TP-only, one micro-batch: the critical path is kernels and TP collectives only."""
    _r, des, cf = _ratio(*GRID["tp-only"])
    for part in ("compute", "comm_tp", "optimizer"):
        assert des.arrays[f"breakdown/{part}"] == pytest.approx(cf[f"breakdown/{part}"], rel=1e-9)
