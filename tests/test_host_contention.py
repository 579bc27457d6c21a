"""Host contention on CPU profiles: GEMMs per dtype and memory streaming slow down apart."""

from __future__ import annotations

import dataclasses

import pytest

from hwprofiles.catalogue import load_profile
from hwprofiles.profile import HardwareProfile


def _cpu(**kw: object) -> HardwareProfile:
    hw = load_profile("cpu")
    acc = dataclasses.replace(hw.accelerator, copy_bytes_per_s=20e9, fresh_copy_bytes_per_s=4e9)
    return dataclasses.replace(hw, accelerator=acc, **kw)


def test_gemm_and_memory_factors_apply_to_their_own_rates() -> None:
    hw = _cpu(host_contention={"fp32": 1.0, "bf16": 0.5}, host_memory_contention=0.9)
    acc = hw.accelerator
    busy = hw.under_load(2, "bf16").accelerator
    # each dtype's GEMM peak by its own factor: AMX bf16 halves, AVX-512 fp32 keeps its speed
    assert busy.peak("bf16") == pytest.approx(0.5 * acc.peak("bf16"))
    assert busy.peak("fp32") == pytest.approx(acc.peak("fp32"))
    # memory-bound work by the streaming factor, whatever the dtype
    assert busy.memory_bandwidth_bytes_per_s == pytest.approx(
        0.9 * acc.memory_bandwidth_bytes_per_s
    )
    assert busy.copy_bytes_per_s == pytest.approx(18e9)
    assert busy.fresh_copy_bytes_per_s == pytest.approx(3.6e9)
    assert hw.under_load(2, "fp32").accelerator == busy  # the run's dtype picks nothing here
    assert hw.under_load(1, "bf16") is hw  # one busy device: no contention


def test_an_older_profile_has_one_mix_factor_for_everything() -> None:
    hw = _cpu(host_contention={"fp32": 0.9, "bf16": 0.8})
    busy = hw.under_load(2, "bf16").accelerator
    assert busy.peak("bf16") == pytest.approx(0.8 * hw.accelerator.peak("bf16"))
    assert busy.memory_bandwidth_bytes_per_s == pytest.approx(
        0.8 * hw.accelerator.memory_bandwidth_bytes_per_s
    )
    assert _cpu().under_load(4, "bf16") == _cpu()  # nothing measured: a GPU-like profile
