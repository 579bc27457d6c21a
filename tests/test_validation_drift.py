"""The pre-run drift guard: a stale profile is caught, a true one is not; the status line."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from hwprofiles.catalogue import load_profile
from hwprofiles.host import HostProfile
from hwprofiles.profile import HardwareProfile, Provenance
from simulator.costmodel.timing import compute_time
from validation.drift import (
    TOLERANCE,
    age_s,
    check_drift,
    drift_notes,
    drifted_dtypes,
    probe_shapes,
    status_line,
)
from validation.gptconfig import PRESETS

SMALL = PRESETS["small"]
NOW = dt.datetime(2026, 12, 2, 22, 0, tzinfo=dt.timezone.utc)


def _calibrated(date: str = "2026-12-02T21:30:00Z", steadiness: str = "steady") -> HardwareProfile:
    hw = load_profile("cpu")
    pv = Provenance(kind="calibrated", date=date, steadiness=steadiness)
    return dataclasses.replace(hw, name="box-cpu", provenance=pv)


def _scaled(hw: HardwareProfile, factor: float) -> HardwareProfile:
    """`hw` with every GEMM peak times `factor` (a profile `factor` x too fast)."""
    acc = hw.accelerator
    peaks = {k: v * factor for k, v in acc.peak_flops.items()}
    return dataclasses.replace(hw, accelerator=dataclasses.replace(acc, peak_flops=peaks))


def _machine_as(hw: HardwareProfile):
    """A fake timer: the machine runs each GEMM exactly as `hw` prices it."""

    def timer(pairs):
        return [float(compute_time(hw.accelerator, s.flops, d)) for s, d in pairs]

    return timer


def test_probes_are_the_models_mlp_and_logits_gemms():
    up, down, logits = probe_shapes(SMALL)
    assert (up.m, up.k, up.n) == (512, 256, 1024)
    assert (down.m, down.k, down.n) == (512, 1024, 256)
    assert (logits.m, logits.k, logits.n) == (512, 256, 8192)


def test_mlp_up_and_down_are_checked_as_the_pair_the_profile_averages():
    """The profile holds the mean of the two equal-FLOP layers; a machine that runs up 2x
    slower than down (bf16 without a matrix unit) must not read as drifted."""
    from hwprofiles.profile import GemmTiming

    machine = _calibrated()
    up, down, logits = probe_shapes(SMALL)
    timed = (
        GemmTiming("fp32", int(up.flops), 1.5, 3.0),
        GemmTiming("fp32", int(logits.flops), 4.0, 8.0),
    )
    hw = dataclasses.replace(
        machine, accelerator=dataclasses.replace(machine.accelerator, gemm_timings=timed)
    )
    now = {up.name: 2.0, down.name: 1.0, logits.name: 4.0}
    rows = check_drift(hw, SMALL, ("fp32",), timer=lambda pairs: [now[s.name] for s, _ in pairs])
    assert [r["gemm"].rsplit(" ", 1)[0] for r in rows] == [
        "small/mlp_up+mlp_down mean",
        "small/logits",
    ]
    assert rows[0]["measured_s"] == pytest.approx(1.5) and not drifted_dtypes(rows)
    slow = {k: 2 * v for k, v in now.items()}
    rows = check_drift(hw, SMALL, ("fp32",), timer=lambda pairs: [slow[s.name] for s, _ in pairs])
    assert drifted_dtypes(rows) == ["fp32"] and rows[0]["speed"] == pytest.approx(0.5)


def test_a_true_profile_passes_and_a_3x_stale_one_is_flagged():
    machine = _calibrated()
    ok = check_drift(machine, SMALL, ("fp32", "bf16"), timer=_machine_as(machine))
    assert {r["dtype"] for r in ok} == {"fp32", "bf16"} and len(ok) == 4  # MLP pair + logits
    assert not drifted_dtypes(ok) and drift_notes(ok) == []
    assert all(r["speed"] == pytest.approx(1.0) for r in ok)

    stale = _scaled(machine, 3.0)  # calibrated "3x faster" than the machine now runs
    rows = check_drift(stale, SMALL, ("fp32", "bf16"), timer=_machine_as(machine))
    assert drifted_dtypes(rows) == ["bf16", "fp32"]
    assert all(r["speed"] == pytest.approx(1 / 3) for r in rows)
    (note_bf16, note_fp32) = drift_notes(rows)
    assert "bf16" in note_bf16 and "0.33x" in note_fp32 and "not headlined" in note_fp32


def test_tolerance_is_symmetric_in_speed():
    machine = _calibrated()
    inside = _scaled(machine, 1 / (1 + TOLERANCE) * 1.01)
    outside = _scaled(machine, (1 + TOLERANCE) * 1.05)
    assert not drifted_dtypes(check_drift(inside, SMALL, ("fp32",), timer=_machine_as(machine)))
    assert drifted_dtypes(check_drift(outside, SMALL, ("fp32",), timer=_machine_as(machine)))


def test_the_real_probe_times_every_kernel():
    rows = check_drift(_calibrated(), PRESETS["tiny"], ("fp32",))
    assert len(rows) == 2 and all(r["measured_s"] > 0 and r["profile_s"] > 0 for r in rows)


def test_status_line_names_profile_age_and_steadiness():
    line = status_line(_calibrated(), now=NOW)
    assert line == "profile box-cpu: calibrated 2026-12-02T21:30:00Z, 30 min old, steady"
    old = status_line(
        _calibrated("2026-11-29T10:03:52Z", "unsteady: load average 14 at the start"), now=NOW
    )
    assert "days old (stale" in old and "unsteady: load average 14" in old
    assert "steadiness not recorded" in status_line(_calibrated(steadiness=""), now=NOW)
    assert "datasheet" in status_line(load_profile("cpu"))
    assert status_line(None).startswith("profile: none")
    assert age_s("not a date") is None


def test_a_measured_gemm_row_is_the_profiles_price():
    from hwprofiles.profile import GemmTiming

    machine = _calibrated()
    up = probe_shapes(SMALL)[0]
    timed = (GemmTiming("fp32", int(up.flops), 0.5, 1.0),)
    acc = dataclasses.replace(machine.accelerator, gemm_timings=timed)
    hw = dataclasses.replace(machine, accelerator=acc)
    rows = check_drift(hw, SMALL, ("fp32",), timer=lambda pairs: [0.5] * len(pairs))
    assert rows[0]["profile_s"] == 0.5 and not rows[0]["drifted"]


def test_remeasure_replaces_the_models_gemm_timings_in_place():
    """A drifted profile re-measured in place: the model's GEMMs get timings from the (fake)
    measurement, other timings stay, and the re-probe then passes."""
    from hwprofiles.profile import GemmTiming
    from validation.drift import remeasure

    machine = _scaled(_calibrated(), 3.0)  # stale
    other = GemmTiming("fp32", 12345, 1.0, 2.0)
    acc = dataclasses.replace(machine.accelerator, gemm_timings=(other,))
    stale = dataclasses.replace(machine, accelerator=acc)

    def fake(pairs, budget_s):
        rows = [
            {"kind": "workload", "name": s.name, "pass": s.pass_, "dtype": d,
             "flops": int(s.flops), "median_s": s.flops * 1e-10}
            for s, d in pairs
        ]  # fmt: skip
        return rows, {}

    fresh = remeasure(stale, SMALL, ["fp32"], measure=fake)
    timings = fresh.accelerator.gemm_timings
    assert other in timings and len(timings) == 1 + 4  # qkv, proj, mlp (up = down), logits
    up = probe_shapes(SMALL)[0]
    got = fresh.accelerator.measured_gemm("fp32", up.flops)
    assert got.fwd_s == pytest.approx(up.flops * 1e-10) and got.bwd_s == pytest.approx(
        2 * got.fwd_s
    )
    rows = check_drift(fresh, SMALL, ("fp32",), timer=lambda p: [s.flops * 1e-10 for s, _ in p])
    assert not drifted_dtypes(rows)
    assert drift_notes([r | {"remeasured": True} for r in rows])[0].startswith("fp32 GEMMs re-")


def test_host_contention_is_re_probed_and_can_be_replaced():
    from validation.drift import check_contention, with_contention

    host = HostProfile(collective_backend="gloo", contention={"fp32": 0.5}, memory_contention=0.4)
    hw = dataclasses.replace(_calibrated(), host=host)

    def fake(dtypes, threads, ranks):
        assert dtypes == ("fp32",) and ranks == 2
        return [
            {"kernel": "gemm", "dtype": "fp32", "factor": 0.98},
            {"kernel": "stream", "dtype": "fp32", "factor": 0.45},
        ]

    rows = check_contention(hw, ("fp32",), 2, measure=fake)
    assert [(r["kernel"], r["drifted"]) for r in rows] == [("gemm fp32", True), ("stream", False)]
    assert not drifted_dtypes(rows)  # contention rows do not withhold a dtype's headline
    (note,) = drift_notes(rows)
    assert note.startswith("host contention drifted: gemm fp32 0.98 (profile 0.50)")
    fresh = with_contention(hw, rows)
    assert fresh.host.contention == {"fp32": 0.98} and fresh.host.memory_contention == 0.45
    assert "used in place" in drift_notes([r | {"remeasured": True} for r in rows])[0]
    assert check_contention(hw, ("fp32",), 1, measure=fake) == []
    assert check_contention(_calibrated(), ("fp32",), 2, measure=fake) == []
