"""Stragglers: order statistics in closed form, and the SimPy engine's tail at scale."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.stragglers import dp_workload, tail_amplification
from hwprofiles.catalogue import load_profile
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.stragglers import (
    Slowdown,
    expected_max_factor,
    expected_max_normal,
    expected_max_normal_asymptote,
)


def test_expected_max_of_normals_matches_known_values() -> None:
    # E[max of 2 N(0,1)] = 1/sqrt(pi); n = 1000 is 3.2414 (Harter 1961 tables)
    assert expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-6)
    assert expected_max_normal(1000) == pytest.approx(3.2414, abs=1e-3)
    # sqrt(2 ln n) is the leading term: above the exact value, the gap shrinking slowly
    gaps = [expected_max_normal_asymptote(n) - expected_max_normal(n) for n in (10, 1e3, 1e5)]
    assert all(g > 0 for g in gaps) and gaps == sorted(gaps, reverse=True)


def test_expected_max_factor_against_monte_carlo_and_formula() -> None:
    rng = np.random.default_rng(0)
    for n in (4, 256):
        mc = np.exp(0.05 * rng.standard_normal((4000, n)).max(axis=1)).mean()
        assert expected_max_factor(n, 0.05) == pytest.approx(mc, rel=2e-3)
    # one transient kind alone: 1 + (f - 1)(1 - (1 - p)^n) (Dean & Barroso's fan-out)
    assert expected_max_factor(100, 0.0, [(0.01, 2.0)]) == pytest.approx(1 + (1 - 0.99**100))


H100 = load_profile("h100-sxm")
MODEL = load_model("gpt3-1.3b")


def test_des_tail_grows_with_ranks_and_agrees_with_closed_form() -> None:
    rows = tail_amplification(
        [dp_workload(MODEL, n) for n in (8, 64, 1024)], H100, sigma=0.05, seeds=range(8)
    )
    for key in ("des_excess", "closed_form_excess"):  # amplification with ranks
        excess = [r[key] for r in rows]
        assert 0 < excess[0] < excess[1] < excess[2] and excess[2] > 1.5 * excess[0]
    for r in rows:  # same magnitude (measured: within 10 %)
        assert r["des_excess"] == pytest.approx(r["closed_form_excess"], rel=0.2)


def test_des_transient_slowdown_hits_the_fraction_of_steps_the_formula_says() -> None:
    w = dp_workload(MODEL, 256)
    base = simulate_step(w, H100, contention=False).arrays
    t0 = base["step_time_s"]
    stretched = base["breakdown/compute"] + base["breakdown/optimizer"]
    p, f = 4e-3, 1.5
    steps = [
        simulate_step(w, H100, seed=s, slowdowns=[(p, f)], contention=False).arrays["step_time_s"]
        for s in range(30)
    ]
    slowed = [t for t in steps if t > t0 * 1.001]
    # a slowed step is the compute stretched by the factor, less whatever of the exposed
    # gradient all-reduce the longer backward now hides (per-bucket reduction: 2.7 ms of the
    # 8.9 ms here, 2026-12-02); every slowed step is slowed the same way
    most = t0 + stretched * (f - 1)
    for t in slowed:
        assert most - base["breakdown/comm_dp"] <= t <= most * 1.0001
        assert t == pytest.approx(slowed[0], rel=1e-9)
    share = len(slowed) / len(steps)
    assert share == pytest.approx(1 - (1 - p) ** 256, abs=0.3)  # 0.64 expected


def test_bad_slowdowns_are_user_errors() -> None:
    with pytest.raises(ValueError, match=r"slowdown x\.factor: 0\.5 must be >= 1"):
        Slowdown("x", 0.1, 0.5)
    with pytest.raises(ValueError, match="slowdowns"):
        simulate_step(dp_workload(MODEL, 8), H100, slowdowns=[(0.6, 1.5), (0.5, 2.0)])


def test_slow_nic_in_both_engines_amplifies_with_ranks() -> None:
    from analysis.stragglers import slow_nic_expectation
    from simulator.stragglers import slow_ring_distribution

    tr = [(1e-3, 4.0)]  # a NIC 4x slower in one step of a thousand (an assumption)
    dist = slow_ring_distribution(1024, tr)
    assert sum(p for p, _ in dist) == pytest.approx(1.0)
    assert dict((f, p) for p, f in dist)[4.0] == pytest.approx(1 - (1 - 1e-3) ** 1024)
    excess = []
    for n in (64, 1024):
        w = dp_workload(MODEL, n)
        cf = slow_nic_expectation(w, H100, tr)
        des = slow_nic_expectation(w, H100, tr, engine="des")
        assert des["expected_step_s"] == pytest.approx(cf["expected_step_s"], rel=0.03)
        mc = np.mean(
            [
                simulate_step(w, H100, seed=s, nic_slowdowns=tr, contention=False).arrays[
                    "step_time_s"
                ]
                for s in range(12)
            ]
        )
        assert mc == pytest.approx(des["expected_step_s"], rel=0.1)
        excess.append(cf["expected_step_s"] / cf["step_s"] - 1)
    assert 0 < excess[0] < 0.05 < 0.15 < excess[1]  # 2 % at 64 ranks, 24 % at 1,024
