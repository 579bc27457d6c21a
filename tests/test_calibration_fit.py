"""Calibration building blocks without benchmarks: fits, timing statistics, shapes, factors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwprofiles.calibration.collectives import bus_factor, message_bytes
from hwprofiles.calibration.fit import fit_alpha_beta, fit_efficiency
from hwprofiles.calibration.gemm import transformer_gemms
from hwprofiles.calibration.plan import make_plan
from hwprofiles.calibration.timing import Repeats, Timing, time_op
from hwprofiles.profile import EfficiencyCurve


def test_alpha_beta_recovers_a_synthetic_link() -> None:
    sizes = np.logspace(3, 8, 8)
    alpha, beta = 25e-6, 1 / 10e9  # 25 us, 10 GB/s
    t = alpha + beta * sizes
    fit = fit_alpha_beta(sizes, t)
    assert fit.alpha_s == pytest.approx(alpha, rel=1e-3)
    assert fit.beta_s_per_byte == pytest.approx(beta, rel=1e-3)
    assert fit.rel_rms < 1e-6


def test_alpha_beta_needs_two_sizes_and_positive_times() -> None:
    with pytest.raises(ValueError, match="2 distinct"):
        fit_alpha_beta([1024, 1024], [1e-5, 2e-5])
    with pytest.raises(ValueError, match="> 0"):
        fit_alpha_beta([1, 2], [0.0, 1e-5])


def test_efficiency_fit_recovers_a_hill_curve_and_samples_a_valid_curve() -> None:
    sizes = np.logspace(5, 11, 12)
    truth = 0.8 / (1 + (1e8 / sizes) ** 1.3)
    fit = fit_efficiency(sizes, truth)
    assert fit.max_fraction == pytest.approx(0.8, rel=1e-3)
    assert fit.half_size == pytest.approx(1e8, rel=1e-2)
    assert fit.exponent == pytest.approx(1.3, rel=1e-2)
    s, f = fit.sample()
    curve = EfficiencyCurve(s, f, "test")  # validates ascending sizes and (0, 1] fractions
    assert all(b >= a for a, b in itertools.pairwise(f))
    assert curve.at(1e12) == pytest.approx(f[-1])


def test_efficiency_fit_is_monotone_even_for_non_monotone_data() -> None:
    sizes = [1e5, 1e6, 1e7, 1e8, 1e9]
    fractions = [0.1, 0.6, 1.0, 0.7, 0.8]  # a cache bump in the middle
    _, f = fit_efficiency(sizes, fractions).sample()
    assert all(b >= a for a, b in itertools.pairwise(f))
    assert min(f) > 0 and max(f) <= 1.0


def test_efficiency_fit_with_few_sizes_fixes_the_exponent() -> None:
    sizes = [1e6, 1e8, 1e10]
    truth = [0.5 * s / (s + 1e8) for s in sizes]  # p = 1
    fit = fit_efficiency(sizes, truth)
    assert fit.exponent == 1.0
    assert fit.max_fraction == pytest.approx(0.5, rel=1e-3)
    assert fit.half_size == pytest.approx(1e8, rel=1e-2)


def test_efficiency_fit_rejects_fractions_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        fit_efficiency([1, 2], [0.5, 1.5])


def test_nccl_tests_bus_factors() -> None:
    assert bus_factor("all_reduce", 2) == 1.0
    assert bus_factor("all_reduce", 8) == pytest.approx(2 * 7 / 8)
    assert bus_factor("all_gather", 4) == pytest.approx(0.75)
    assert bus_factor("reduce_scatter", 4) == pytest.approx(0.75)
    assert bus_factor("broadcast", 4) == 1.0
    assert bus_factor("send_recv", 2) == 1.0
    assert bus_factor("broadcast", 1) == bus_factor("all_reduce", 1) == 0.0  # no bus at n=1
    with pytest.raises(ValueError, match="collective"):
        bus_factor("gossip", 2)


def test_message_bytes_split_evenly_over_ranks() -> None:
    assert message_bytes(1000, 3) == 1008  # 84 fp32 elements, 28 per rank
    assert message_bytes(1, 2) == 8
    assert message_bytes(1 << 20, 2) == 1 << 20


def test_timing_statistics_and_noise_flag() -> None:
    t = Timing.from_samples([1.0, 1.1, 0.95])
    assert (t.median_s, t.min_s, t.max_s, t.count) == (1.0, 0.95, 1.1, 3)
    assert not t.noisy  # spread 0.15 <= 0.2
    assert Timing.from_samples([1.0, 1.5, 1.0]).noisy
    with pytest.raises(ValueError):
        Timing.from_samples([])


def test_time_op_counts_samples_within_bounds() -> None:
    calls = []
    rep = Repeats(warmup=2, samples=4, min_samples=2, budget_s=10.0, sample_s=0.0)
    t = time_op(lambda: calls.append(1), rep)
    assert t.count == 4
    assert len(calls) == 2 + 4  # warm-up plus one call per sample (inner = 1)
    assert 0 < t.min_s <= t.median_s <= t.max_s


def test_transformer_gemms_cover_forward_and_both_backward_shapes() -> None:
    shapes = transformer_gemms(hidden=512, tokens=2048, vocab=8192)
    names = {s.name for s in shapes}
    assert names == {f"h512/{n}" for n in ("qkv", "proj", "mlp_up", "mlp_down", "logits")}
    for name in names:
        trio = [s for s in shapes if s.name == name]
        assert {s.pass_ for s in trio} == {"fwd", "bwd_dx", "bwd_dw"}
        assert len({s.flops for s in trio}) == 1  # backward GEMMs do the forward's FLOPs
    qkv = {s.pass_: s for s in shapes if s.name == "h512/qkv"}
    assert (qkv["fwd"].m, qkv["fwd"].n, qkv["fwd"].k) == (2048, 1536, 512)
    assert (qkv["bwd_dx"].m, qkv["bwd_dx"].n, qkv["bwd_dx"].k) == (2048, 512, 1536)
    assert (qkv["bwd_dw"].m, qkv["bwd_dw"].n, qkv["bwd_dw"].k) == (512, 1536, 2048)
    assert qkv["fwd"].flops == 2 * 2048 * 1536 * 512


def test_plan_levels_grow_and_bad_level_is_rejected() -> None:
    tiny, quick, full = (make_plan(level) for level in ("tiny", "quick", "full"))
    assert max(tiny.square_sizes) < max(quick.square_sizes) < max(full.square_sizes)
    assert max(quick.memory_bytes) < max(full.memory_bytes)
    assert max(make_plan("full", "cuda").square_sizes) > max(full.square_sizes)
    with pytest.raises(ValueError, match="level: 'huge'"):
        make_plan("huge")
