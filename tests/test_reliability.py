"""Failures, checkpoints and goodput: closed form vs SimPy, published rates, bad input."""

from __future__ import annotations

import math

import pytest

from simulator.reliability.goodput import RunPlan, expected, optimal_tau, young_tau
from simulator.reliability.options import ReliabilityOptions
from simulator.reliability.rates import llama3_rates, read_failure_rates
from simulator.reliability.run import whole_run
from simulator.reliability.simrun import simulate_runs

DAY = 86400.0


def test_llama3_rates_give_back_419_interruptions_in_54_days():
    rate = sum(llama3_rates().job_rate_s(16384, 8, 8).values())
    assert rate * 54 * DAY == pytest.approx(419)
    # 64 GPUs fail 256x less often than 16,384 (every unit scales with GPUs or nodes)
    small = sum(llama3_rates().job_rate_s(64, 8, 8).values())
    assert rate / small == pytest.approx(256)


@pytest.mark.parametrize("async_ckpt", [False, True])
def test_closed_form_and_simpy_agree_on_the_mean_within_3_percent(async_ckpt):
    plan = RunPlan(
        work_s=30 * DAY,
        rate_per_s=1 / 20000,
        block_s=60.0,
        write_s=300.0 if async_ckpt else 60.0,
        restart_s=900.0,
        async_checkpoint=async_ckpt,
    )
    tau = optimal_tau(plan)
    closed = expected(plan, tau)
    sim = simulate_runs(plan, tau, seeds=200, seed=1)
    assert closed["interruptions"] > 100  # many failures: the comparison means something
    assert sim["mean_s"] == pytest.approx(closed["time_s"], rel=0.03)
    assert sim["interruptions_mean"] == pytest.approx(closed["interruptions"], rel=0.05)
    assert sim["p10_s"] <= sim["p50_s"] <= sim["p90_s"]


def test_optimal_interval_beats_its_neighbours_and_is_near_young():
    plan = RunPlan(work_s=60 * DAY, rate_per_s=1 / 10000, block_s=10.0, write_s=10.0, restart_s=600)
    tau = optimal_tau(plan)
    t = expected(plan, tau)["time_s"]
    assert t < expected(plan, tau * 1.5)["time_s"] and t < expected(plan, tau / 1.5)["time_s"]
    assert tau == pytest.approx(young_tau(plan), rel=0.1)  # d << M: Young's first order holds


def _run(gpus: int, days: float, **kw):
    return whole_run(
        work_s=days * DAY,
        step_time_s=5.0,
        n_params=405e9 if gpus > 1000 else 7e9,
        precision="bf16",
        zero_stage=1,
        dp=gpus // 8,
        num_gpus=gpus,
        gpus_per_node=8,
        nics_per_node=8,
        options=ReliabilityOptions(**kw),
    )


def test_large_run_loses_time_small_run_does_not():
    big = _run(16384, 90)
    small = _run(64, 7)
    assert 0.80 < big["goodput_fraction"] < 0.97
    assert big["expected_interruptions"] > 300
    assert big["checkpoint_interval_s"] < 3600
    assert small["goodput_fraction"] > 0.995
    assert big["time_to_train_s"] > big["time_to_train_ideal_s"]


def test_mtbf_scale_and_async_checkpoint_improve_goodput():
    base = _run(16384, 30)
    assert _run(16384, 30, mtbf_scale=4.0)["goodput_fraction"] > base["goodput_fraction"]
    slow = dict(storage_bandwidth_bps=1e9, filesystem_bandwidth_bps=1e11)
    assert (
        _run(16384, 30, async_checkpoint=True, **slow)["goodput_fraction"]
        > _run(16384, 30, **slow)["goodput_fraction"]
    )


def test_weibull_sampling_runs_and_is_labelled():
    r = whole_run(
        work_s=5 * DAY,
        step_time_s=1.0,
        n_params=7e9,
        precision="bf16",
        zero_stage=1,
        dp=128,
        num_gpus=1024,
        gpus_per_node=8,
        nics_per_node=8,
        options=ReliabilityOptions(weibull_shape=0.7, seeds=8, mtbf_scale=0.2),
        sample=True,
    )
    assert "weibull" in r["failure_model"]
    assert r["time_to_train_p10_s"] <= r["time_to_train_p90_s"]


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"mtbf_scale": 0.0}, "mtbf_scale"),
        ({"mtbf_scale": math.nan}, "mtbf_scale"),
        ({"storage_bandwidth_bps": -1.0}, "storage_bandwidth"),
        ({"checkpoint_interval_s": math.nan}, "checkpoint_interval_s"),
        ({"checkpoint_interval_s": 0.0}, "checkpoint_interval_s"),
    ],
)
def test_bad_options_name_the_field(kw, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        ReliabilityOptions(**kw)


def test_interval_shorter_than_a_write_is_refused():
    with pytest.raises(ValueError, match=r"^checkpoint_interval_s: 1\.0 must be longer than one"):
        _run(16384, 30, checkpoint_interval_s=1.0, storage_bandwidth_bps=1e9)


def test_failure_rate_file(tmp_path):
    good = tmp_path / "r.toml"
    good.write_text('source = "x"\n[rates_per_unit_hour]\ngpu = 1e-5\nhost = 2e-5\n')
    r = read_failure_rates(good)
    assert r.per_unit_s["gpu"] == pytest.approx(1e-5 / 3600) and r.source == "x"
    bad = tmp_path / "b.toml"
    bad.write_text("[rates_per_unit_hour]\ngpu = 1e-5\ncoolant = 3e-6\n")
    with pytest.raises(ValueError, match=r"^failure_rates\.coolant: .* is not a component"):
        read_failure_rates(bad)
    bad.write_text("[rates_per_unit_hour]\ngpu = -1.0\n")
    with pytest.raises(ValueError, match=r"^failure_rates\.gpu: "):
        read_failure_rates(bad)


def test_run_far_longer_than_the_mtbf_does_not_overflow():
    plan = RunPlan(work_s=1e8, rate_per_s=1 / 3000, block_s=1.0, write_s=1.0, restart_s=600)
    tau = optimal_tau(plan)
    assert 10 < tau < 3000
    assert math.isfinite(expected(plan, tau)["time_s"])
