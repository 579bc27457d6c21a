"""The validation's own CPU runs in the DES / closed-form agreement check.

`llmcap validate` headlines the closed form; on this project's CPU runs (the `tiny` GPT,
DDP and FSDP2 in fp32 and bf16 on 1 and 2 ranks, gloo over loopback, `stack_options("cpu")`:
host overheads, FSDP2's copies and no prefetch, torch DDP's 25 MiB buckets) both engines must
tell the same step, part by part, as on the GPU grid (tests/test_des_agreement_grid.py).

The profile is a real quick calibration of the 2-core validation VM (tests/data/vm-cpu-profile,
`llmcap calibrate --quick`, 2026-12-03 06:48 UTC, load 1.55), so the collectives are
latency-bound gloo ones and the interference is the loopback figure (1.0).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.predict import predict
from hwprofiles.calibration.loader import load_calibrated_profile
from validation.gptconfig import PRESETS
from validation.mapping import cpu_comm_interference, hardware_for_run, stack_options, workload

TOL = 0.02
"""Largest difference of any breakdown part, as a fraction of the closed form's step time."""

PROFILE = Path(__file__).parent / "data" / "vm-cpu-profile"
CASES = [(s, p, n) for s in ("ddp", "fsdp") for p in ("fp32", "bf16") for n in (1, 2)]


@pytest.fixture(scope="module")
def vm_cpu():
    return load_calibrated_profile(PROFILE)


def _both(profile, strategy: str, precision: str, nproc: int):
    """Both engines on one validation run, as `validation.compare.predict_runs` maps it."""
    w = workload(PRESETS["tiny"], nproc, strategy, precision)
    hw = hardware_for_run(profile, nproc, None, [])
    opts = stack_options("cpu", cpu_comm_interference(profile, nproc, None))
    kw = dict(options=opts, devices_busy=nproc)
    return predict(w, hw, "des", contention=False, **kw), predict(w, hw, "analytic", **kw)


@pytest.mark.parametrize(("strategy", "precision", "nproc"), CASES)
def test_cpu_validation_runs_agree_part_by_part(vm_cpu, strategy, precision, nproc):
    des, cf = _both(vm_cpu, strategy, precision, nproc)
    step = cf.step_time_s
    assert des.step_time_s == pytest.approx(step, rel=TOL)
    parts = set(des.breakdown) | set(cf.breakdown)
    far = {
        k: (des.breakdown.get(k, 0.0), cf.breakdown.get(k, 0.0))
        for k in parts
        if abs(des.breakdown.get(k, 0.0) - cf.breakdown.get(k, 0.0)) > TOL * step
    }
    assert not far, far


def test_one_bucket_ddp_exposes_its_all_reduce_and_slows_nothing(vm_cpu):
    """Rule "last bucket": the tiny model's gradients fit one 25 MiB bucket, issued when the
    backward ends, so the all-reduce is exposed whole and, though gloo over loopback takes
    a full core from the ranks (interference 1.0), it slows no compute: the 2-rank compute
    is the 1-rank compute under the host's contention, not that plus the all-reduce."""
    des, cf = _both(vm_cpu, "ddp", "fp32", 2)
    assert cf.breakdown["comm_dp"] > 0.0
    assert cf.breakdown["compute"] == pytest.approx(des.breakdown["compute"], rel=1e-6)
    assert cf.breakdown["comm_dp"] == pytest.approx(des.breakdown["comm_dp"], rel=1e-6)


def test_tied_head_issues_no_zero3_collective(vm_cpu):
    """The tiny GPT ties its output head to the embedding, so the head's ZeRO-3 unit holds no
    bytes: neither engine charges its gathers' or reduce-scatter's latency."""
    des, cf = _both(vm_cpu, "fsdp", "fp32", 2)
    assert cf.breakdown["comm_zero3"] == pytest.approx(des.breakdown["comm_zero3"], rel=0.02)


@pytest.mark.parametrize(("kept", "gathers"), [(True, 5), (False, 6)])
def test_fsdp2_root_is_gathered_once_per_microbatch(vm_cpu, kept, gathers):
    """torch FSDP2 on the 2-layer GPT: the root (`fully_shard(model)`: embedding, final norm,
    tied head) is not resharded after its forward, so one step gathers the root once and each
    block twice (1 + 2 x 2 = 5 all-gathers) and reduce-scatters the root and each block (3);
    with every unit resharded (`zero3_root_kept=False`) the root is gathered again (6)."""
    from dataclasses import replace

    from simulator.des import simulate_timeline

    w = workload(PRESETS["tiny"], 2, "fsdp", "fp32")
    hw = hardware_for_run(vm_cpu, 2, None, [])
    opts = replace(stack_options("cpu", 1.0), zero3_root_kept=kept)
    df = simulate_timeline(w, hw, opts, contention=False)
    moved = df[(df.category == "comm_zero3") & (df.duration_s > 0)]
    assert (moved.name == "zero3 all_gather").sum() == gathers
    assert (moved.name == "zero3 reduce_scatter").sum() == 3
    des = predict(w, hw, "des", options=opts, devices_busy=2, contention=False)
    cf = predict(w, hw, "analytic", options=opts, devices_busy=2)
    assert cf.breakdown["comm_zero3"] == pytest.approx(des.breakdown["comm_zero3"], rel=0.02)


def test_kept_root_is_copied_out_once():
    """FSDP2 copies each gather's shard in and the gathered buffer out: a unit gathered once
    per micro-batch (`kept`) saves one of each (`costmodel.framework.copy_bytes`)."""
    from simulator.costmodel.framework import copy_bytes

    o = stack_options("cpu")
    full = copy_bytes(100.0, 4, 3, 1, 2, 4, o)[1]
    kept = copy_bytes(100.0, 4, 3, 1, 2, 4, o, kept=30.0)[1]
    assert full - kept == pytest.approx(2 * 30.0 * (2 / 4 + 2))  # x2: read + write
