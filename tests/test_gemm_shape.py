"""Shape-resolved GEMM time: tile and wave quantisation, output write, split-K."""

import numpy as np

from hwprofiles.catalogue import load_profile
from simulator.costmodel.gemm_shape import gemm_time, quantisation


def test_full_waves_lose_nothing_and_one_tile_more_costs_a_wave():
    # 108 SMs (A100): 12 x 9 tiles of 256 x 128 fill exactly one wave
    q_full, split = quantisation("a100-80gb", 12 * 256, 9 * 128)
    assert q_full == 1.0 and split == 1.0
    # one more row of tiles (M + 1 row) adds a wave that is mostly idle
    q_more, _ = quantisation("a100-80gb", 12 * 256 + 1, 9 * 128)
    assert q_more < 0.75


def test_few_tiles_split_k_over_idle_sms():
    q, split = quantisation("h100-sxm", 128, 2048)  # 16 tiles of 128 x 128 on 132 SMs
    assert split >= 8 and q > 0.8


def test_profiles_without_tiling_row_are_not_quantised():
    assert quantisation("mi300x", 100, 100) == (1.0, 1.0)


def test_short_k_gemm_pays_its_output_write():
    acc = load_profile("h100-sxm").accelerator
    long_k = gemm_time(acc, 4096, 8192, 8192, "bf16", 2, 2)
    short_k = gemm_time(acc, 4096, 8192, 512, "bf16", 2, 2)
    # same output, 16x fewer FLOPs: well under 16x faster because the write stays
    assert long_k / short_k < 12


def test_vectorised_matches_scalar():
    acc = load_profile("a100-80gb").accelerator
    m = np.array([1000.0, 4096.0, 8192.0])
    arr = gemm_time(acc, m, 12288, 4096, "bf16", 2, 2)
    for i, mi in enumerate(m):
        assert np.isclose(arr[i], gemm_time(acc, float(mi), 12288, 4096, "bf16", 2, 2))
