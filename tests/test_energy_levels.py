"""Energy at three levels: GPU boards by phase, whole nodes, facility; per-dtype power."""

import pytest

from analysis.predict import predict
from hwprofiles.catalogue import load_profile
from hwprofiles.power_levels import compute_fraction, facility, node_power
from hwprofiles.presets import data
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload


def _w(precision="bf16", gpus=16):
    p = ParallelConfig(
        tp=2,
        pp=1,
        dp=-1,
        micro_batch_size=1,
        global_batch_size=64,
        precision=precision,
        recompute="selective",
    ).resolve(gpus)
    return Workload(load_model("llama3-8b"), p, 2048)


@pytest.mark.parametrize("engine", ["analytic", "des"])
def test_phases_sum_to_step_energy_and_levels_grow(engine):
    r = predict(_w(), load_profile("h100-sxm"), engine, tokens=1e10)
    assert sum(r.power["gpu_energy_by_phase_j"].values()) == pytest.approx(
        r.energy_per_step_j, rel=1e-6
    )
    assert "compute_bf16" in r.power["gpu_energy_by_phase_j"]
    assert (
        r.energy_per_step_j
        < r.power["node_energy_per_step_j"]
        < r.power["facility_energy_per_step_j"]
    )
    w = r.whole_run
    assert (
        w["energy_to_train_gpu_j"] < w["energy_to_train_node_j"] < w["energy_to_train_facility_j"]
    )
    assert w["energy_to_train_gpu_j"] >= w["energy_to_train_ideal_gpu_j"]
    assert sum(w["energy_to_train_gpu_by_phase_j"].values()) == pytest.approx(
        w["energy_to_train_gpu_j"], rel=1e-6
    )


def test_gpu_computes_below_tdp_per_dtype():
    hw = load_profile("h100-sxm")
    r = predict(_w(), hw, tokens=1e10)
    assert r.power["power_levels"]["gpu_power_by_phase_w"]["compute"] == pytest.approx(
        compute_fraction("bf16") * hw.power.tdp_w
    )
    assert r.avg_power_w < hw.power.tdp_w
    # mixed precision answered: fp32 costs more energy per token than bf16 on H100
    e = r.document["energy_per_token_j"]
    assert e["fp32_llmcap"] > e["bf16_llmcap"]
    assert e["seed_literal"] == pytest.approx(4 * e["seed_intended"])


@pytest.mark.parametrize("node", sorted(data("power")["nodes"]))
def test_node_model_at_full_load_stays_below_the_datasheet_maximum(node):
    acc = data("nodes")[node]["accelerator"]
    hw = load_profile(acc) if data("nodes")["default_node"].get(acc) == node else None
    if hw is None:
        pytest.skip(f"{node} is not the default node of {acc}")
    npw = node_power(hw)
    full = npw.max_w(hw.node.gpus_per_node, hw.power.tdp_w)
    assert 0.7 * npw.system_max_w < full <= npw.system_max_w


def test_facility_network_grows_with_levels():
    f = facility()
    assert f.network_w_per_endpoint(1) == 0.0
    assert f.network_w_per_endpoint(64) < f.network_w_per_endpoint(1024)
    assert f.network_w_per_endpoint(1024) < f.network_w_per_endpoint(16384)


def test_planner_costs_use_goodput_time_and_node_energy():
    from analysis.planner.costs import UnitPrice, training_cost

    r = predict(_w(), load_profile("h100-sxm"), tokens=1e10)
    w = r.whole_run
    base = dict(
        tokens=1e10,
        tokens_per_step=r.tokens_per_step,
        step_time_s=r.step_time_s,
        gpus=r.num_gpus,
        energy_per_step_j=r.energy_per_step_j,
        price=UnitPrice(2.0, "test"),
    )
    ideal = training_cost(**base)
    whole = training_cost(
        **base, wall_clock_s=w["time_to_train_s"], it_energy_j=w["energy_to_train_it_j"]
    )
    assert whole.time_to_train_s == pytest.approx(w["time_to_train_s"])
    assert whole.time_to_train_s > ideal.time_to_train_s
    assert whole.cost_usd > ideal.cost_usd
    assert whole.energy_j > w["energy_to_train_node_j"] > ideal.energy_j
