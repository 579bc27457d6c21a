"""Every preset model and every hardware preset runs through the SimPy engine (and agrees with
the closed form where the layout has enough micro-batches for its structure to match)."""

from __future__ import annotations

import pytest

from analysis.closed_form import Options
from analysis.predict import analytic_arrays
from hwprofiles.catalogue import known_hardware, load_profile
from simulator.des.run import simulate_step
from simulator.models_catalogue import list_models, load_model
from simulator.parallel import ParallelConfig, Workload

pytestmark = pytest.mark.slow


def small_layout(model, hw, microbatches: int) -> ParallelConfig:
    """TP as wide as heads and the node allow, two stages when layers split, DP 2."""
    heads, kv = model.num_attention_heads, model.kv_heads
    tp = next(
        t
        for t in (8, 4, 2, 1)
        if heads % t == 0 and (kv % t == 0 or t % kv == 0) and t <= hw.node.gpus_per_node
    )
    pp = 2 if model.num_hidden_layers % 2 == 0 else 1
    peaks = hw.accelerator.peak_flops
    precision = next(p for p in ("bf16", "fp16", "fp32") if p in peaks)
    return ParallelConfig(
        tp=tp, pp=pp, global_batch_size=2 * microbatches, precision=precision
    ).resolve(tp * pp * 2)


def check(hw_name: str, model_name: str) -> None:
    hw, model = load_profile(hw_name), load_model(model_name)
    w = Workload(model, small_layout(model, hw, 16), 1024)
    des = simulate_step(w, hw, Options(), contention=False)
    cf = analytic_arrays(w, hw, Options())
    # 16 micro-batches: the head's stage imbalance costs the closed form's bubble formula up to
    # ~(t_last - t_avg) / (16 t_last); see docs/simulator.md
    assert des.step_time_s == pytest.approx(cf["step_time_s"], rel=0.05)
    assert des.arrays["energy_per_gpu_j"] > 0


@pytest.mark.parametrize("model_name", list_models())
def test_every_model_preset(model_name):
    check("a100-80gb", model_name)


@pytest.mark.parametrize("hw_name", known_hardware())
def test_every_hardware_preset(hw_name):
    check(hw_name, "llama-2-7b")
