"""Host contention on CPU profiles: GEMMs per dtype and memory streaming slow down apart."""

from __future__ import annotations

import dataclasses

import pytest

from hwprofiles.catalogue import load_profile
from hwprofiles.host import HostProfile, under_load
from hwprofiles.profile import HardwareProfile


def _cpu(**kw: object) -> HardwareProfile:
    hw = load_profile("cpu")
    acc = dataclasses.replace(hw.accelerator, copy_bytes_per_s=20e9)
    host = HostProfile(collective_backend="gloo", fresh_copy_bytes_per_s=4e9, **kw)
    return dataclasses.replace(hw, accelerator=acc, host=host)


def test_gemm_and_memory_factors_apply_to_their_own_rates() -> None:
    hw = _cpu(contention={"fp32": 1.0, "bf16": 0.5}, memory_contention=0.9)
    acc = hw.accelerator
    busy_hw = under_load(hw, 2, "bf16")
    busy = busy_hw.accelerator
    # each dtype's GEMM peak by its own factor: AMX bf16 halves, AVX-512 fp32 keeps its speed
    assert busy.peak("bf16") == pytest.approx(0.5 * acc.peak("bf16"))
    assert busy.peak("fp32") == pytest.approx(acc.peak("fp32"))
    # memory-bound work by the streaming factor, whatever the dtype
    assert busy.memory_bandwidth_bytes_per_s == pytest.approx(
        0.9 * acc.memory_bandwidth_bytes_per_s
    )
    assert busy.copy_bytes_per_s == pytest.approx(18e9)
    assert busy_hw.host.fresh_copy_bytes_per_s == pytest.approx(3.6e9)
    assert under_load(hw, 2, "fp32").accelerator == busy  # the run's dtype picks nothing here
    assert under_load(hw, 1, "bf16") is hw  # one busy device: no contention


def test_an_older_profile_has_one_mix_factor_for_everything() -> None:
    hw = _cpu(contention={"fp32": 0.9, "bf16": 0.8})
    busy = under_load(hw, 2, "bf16").accelerator
    assert busy.peak("bf16") == pytest.approx(0.8 * hw.accelerator.peak("bf16"))
    assert busy.memory_bandwidth_bytes_per_s == pytest.approx(
        0.8 * hw.accelerator.memory_bandwidth_bytes_per_s
    )
    assert under_load(_cpu(), 4, "bf16") == _cpu()  # nothing measured: a GPU-like profile
    gpu = load_profile("h100-sxm")
    assert under_load(gpu, 8, "bf16") is gpu  # a datasheet profile has no host


def test_only_a_gloo_host_runs_its_reduce_scatter_as_an_all_reduce() -> None:
    gpu = load_profile("h100-sxm")
    assert gpu.host is None and gpu.collective_as_run("reduce_scatter") == "reduce_scatter"
    nccl = dataclasses.replace(gpu, host=HostProfile(collective_backend="nccl"))
    assert nccl.collective_as_run("reduce_scatter") == "reduce_scatter"
    gloo = _cpu()
    assert gloo.collective_as_run("reduce_scatter") == "all_reduce"
    assert gloo.collective_as_run("all_gather") == "all_gather"
