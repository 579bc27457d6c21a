"""The pre-run re-probe of attention, memory-bound kernels and collectives: a stale profile
is caught and its runs left out of the headline, a true one passes, figures can be put in
place, and `--repredict` re-checks stored probes against the profile it re-predicts with."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from hwprofiles.catalogue import load_profile
from hwprofiles.host import HostProfile
from hwprofiles.profile import AttentionTiming, CollectiveFit, HardwareProfile, Provenance
from validation.components import (
    calibrated_as,
    check_components,
    probe_specs,
    profile_time,
    replaced,
    same_way,
)
from validation.gptconfig import PRESETS
from validation.guard import (
    after_replacement,
    component_notes,
    probe_rows,
    recheck,
    withheld_runs,
)
from validation.spec import RunSpec

SMALL = PRESETS["small"]
TINY = PRESETS["tiny"]


def _calibrated() -> HardwareProfile:
    hw = load_profile("cpu")
    acc = dataclasses.replace(
        hw.accelerator,
        peak_flops={"fp32": 1e11, "bf16": 5e10},
        cast_bytes_per_s=8e9,
        copy_bytes_per_s=1.5e10,
        attention_timings=(AttentionTiming("fp32", 4, 4, 128, 64, True, 1e-3, 2.5e-3),),
    )
    fits = (
        CollectiveFit("all_reduce", 2, 1e-4, 1e-9, "gloo"),
        CollectiveFit("all_gather", 2, 1e-4, 5e-10, "gloo"),
    )
    pv = Provenance(kind="calibrated", date="2026-12-03T03:00:00Z", notes="level=quick; x")
    return dataclasses.replace(
        hw, name="box-cpu", accelerator=acc, collectives=fits, provenance=pv,
        host=HostProfile(collective_backend="gloo", fresh_copy_bytes_per_s=5e9),
    )  # fmt: skip


def _stale(hw: HardwareProfile, f: float) -> HardwareProfile:
    """`hw` `f` times too fast in every component rate the re-probe checks."""
    acc = hw.accelerator
    acc = dataclasses.replace(
        acc,
        peak_flops={k: v * f for k, v in acc.peak_flops.items()},
        memory_bandwidth_bytes_per_s=acc.memory_bandwidth_bytes_per_s * f,
        cast_bytes_per_s=acc.cast_bytes_per_s * f,
        copy_bytes_per_s=acc.copy_bytes_per_s * f,
        attention_timings=tuple(
            dataclasses.replace(t, fwd_s=t.fwd_s / f, bwd_s=t.bwd_s / f)
            for t in acc.attention_timings
        ),
    )
    fits = tuple(
        dataclasses.replace(c, alpha_s=c.alpha_s / f, beta_s_per_byte=c.beta_s_per_byte / f)
        for c in hw.collectives
    )
    host = dataclasses.replace(hw.host, fresh_copy_bytes_per_s=hw.host.fresh_copy_bytes_per_s * f)
    return dataclasses.replace(hw, accelerator=acc, collectives=fits, host=host)


def _machine_as(hw: HardwareProfile):
    """A fake timer: the machine runs every probe exactly as `hw` prices it."""
    return lambda specs: [profile_time(hw, s) for s in specs]


def test_specs_follow_the_matrix_and_the_calibration():
    hw = _calibrated()
    assert calibrated_as(hw) == {"level": "quick", "dtypes": ["bf16", "fp32"]}
    one = probe_specs(SMALL, ["fp32"], False, calibrated_as(hw))
    assert [s["probe"] for s in one] == ["attention", "memory", "copy"]
    assert one[0]["shape"] == [4, 4, 128, 64] and one[1]["dtypes"] == ["bf16", "fp32"]
    both = probe_specs(SMALL, ["fp32", "bf16"], True, calibrated_as(hw))
    kinds = [s["probe"] for s in both]
    assert kinds.count("attention") == 2 and "cast" in kinds and kinds.count("collective") == 2
    ar = next(s for s in both if s.get("collective") == "all_reduce")
    # small: 4 blocks of 789,760 + (8192 + 128) x 256 embeddings + final LN 512, fp32
    assert ar["bytes"] == 4 * (4 * 789_760 + 8320 * 256 + 512)


def test_a_true_profile_passes_and_a_3x_stale_one_is_flagged_and_withheld():
    machine = _calibrated()
    ok = check_components(machine, SMALL, ["fp32", "bf16"], True, timer=_machine_as(machine))
    assert len(ok) == 7 and not any(r["drifted"] for r in ok)
    assert all(r["speed"] == pytest.approx(1.0) for r in ok)
    assert component_notes(ok) == []

    stale = _stale(machine, 3.0)
    rows = check_components(stale, SMALL, ["fp32", "bf16"], True, timer=_machine_as(machine))
    assert all(r["drifted"] for r in rows)
    # the collectives' alpha is per call: measured through the fits, speed 1/3 too
    assert all(r["speed"] == pytest.approx(1 / 3) for r in rows)
    notes = component_notes(rows)
    assert len(notes) == 7 and any(
        "multi-rank loopback runs' comparisons are not headlined" in n for n in notes
    )
    table = probe_rows({"drift": rows})
    assert {row[-1] for row in table} == {"DRIFTED"} and table[0][4] == "0.33x"


def _specs():
    return [
        RunSpec(TINY, "ddp", p, n, link_bytes_per_s=link)
        for p in ("fp32", "bf16")
        for n, link in ((1, None), (2, None), (2, 1.25e8))
    ]


def _row(probe, dtype, scope="all runs", drifted=True):
    return {"probe": probe, "dtype": dtype, "scope": scope, "what": probe, "drifted": drifted,
            "speed": 0.3, "measured_s": 1.0, "profile_s": 0.3}  # fmt: skip


def test_which_runs_a_drifted_probe_withholds():
    ids = lambda rows: sorted(withheld_runs(rows, _specs()))  # noqa: E731
    assert ids([_row("attention", "bf16")]) == [
        "ddp-bf16-n1", "ddp-bf16-n2", "ddp-bf16-n2@1Gbit",
    ]  # fmt: skip
    assert len(ids([_row("memory", "any")])) == 6
    assert ids([_row("collective", "any", "multi-rank loopback runs")]) == [
        "ddp-bf16-n2", "ddp-fp32-n2",
    ]  # fmt: skip
    assert ids([_row("copy", "any", drifted=False)]) == []
    contention = {"probe": "contention", "dtype": "fp32", "drifted": True}
    assert ids([contention]) == []  # noted, never withheld (one pair is too noisy)
    gemm = {"dtype": "fp32", "gemm": "g 1x2x3", "drifted": True}  # rows from before `probe`
    assert ids([gemm]) == ["ddp-fp32-n1", "ddp-fp32-n2", "ddp-fp32-n2@1Gbit"]


def test_drifted_figures_are_put_in_place_and_then_agree():
    machine = _calibrated()
    stale = _stale(machine, 3.0)
    rows = check_components(stale, SMALL, ["fp32", "bf16"], True, timer=_machine_as(machine))
    fresh = replaced(stale, rows)
    after = after_replacement(fresh, rows)
    assert all(r["remeasured"] and not r["drifted"] for r in after)
    assert all(r["speed"] == pytest.approx(1.0) for r in after)
    assert all(r["speed_before"] == pytest.approx(1 / 3) for r in after)
    assert withheld_runs(after, _specs()) == set()
    assert component_notes(after)[0].startswith("attention (sdpa 4x4x128x64 causal fwd+bwd) re-")
    # the rates are the machine's now; the fresh-copy rate moved with the copy rate
    acc, was = fresh.accelerator, machine.accelerator
    assert acc.cast_bytes_per_s == pytest.approx(was.cast_bytes_per_s)
    assert fresh.host.fresh_copy_bytes_per_s == pytest.approx(machine.host.fresh_copy_bytes_per_s)


def test_recheck_sets_stored_probes_against_another_profile():
    machine = _calibrated()
    parts = check_components(machine, SMALL, ["fp32"], True, timer=_machine_as(machine))
    gemm = {"dtype": "fp32", "gemm": "small/mlp_up 512x256x1024", "measured_s": 1e-3,
            "profile_s": 1e-3, "speed": 1.0, "drifted": False, "remeasured": True}  # fmt: skip
    from validation.drift import gemm_price

    gemm["measured_s"] = gemm_price(machine, "fp32", 2.0 * 512 * 256 * 1024)
    stored = [gemm, *parts]
    assert not any(r["drifted"] for r in recheck(machine, stored))
    again = recheck(_stale(machine, 3.0), stored)
    assert len(again) == len(stored) and all(r["drifted"] for r in again)
    assert not any(r.get("remeasured") for r in again)  # an in-place figure is not in the file
    assert recheck(machine, [{"dtype": "fp32", "gemm": "unreadable", "drifted": False}]) == []


def test_repredict_on_a_stale_profile_is_not_headlined(tmp_path):
    from tests.test_validation_units import _step, _stored_report
    from validation.validate import repredict

    machine = _calibrated()
    _stored_report(tmp_path)
    doc = json.loads((tmp_path / "report.json").read_text())
    doc["drift"] = check_components(
        machine, TINY, ["fp32", "bf16"], False, timer=_machine_as(machine)
    )
    (tmp_path / "report.json").write_text(json.dumps(doc))
    # a step of memory-bound work: a stale memory rate moves it (`guard.material`)
    rate = machine.accelerator.memory_bandwidth_bytes_per_s * machine.accelerator.memory_efficiency

    def fake(w, hw, e, options, devices_busy=None):
        acc = hw.accelerator
        return _step(0.2 * rate / (acc.memory_bandwidth_bytes_per_s * acc.memory_efficiency),
                     n=w.parallel.dp)  # fmt: skip

    v = repredict(tmp_path, machine, engines=("analytic",), predictor=fake)
    assert v.doc["summary"] and not any("drifted" in n for n in v.doc["notes"])
    v = repredict(tmp_path, _stale(machine, 3.0), engines=("analytic",), predictor=fake)
    assert v.doc["summary"] == [] and v.doc["comparisons"]
    assert any(n.startswith("profile drifted for memory") for n in v.doc["notes"])
    assert "Component rates re-probed" in (tmp_path / "report.md").read_text()

    del doc["drift"]
    (tmp_path / "report.json").write_text(json.dumps(doc))
    v = repredict(tmp_path, machine, engines=("analytic",), predictor=fake)
    assert (
        "drift not re-checked: the report holds no probes taken before its runs" in (v.doc["notes"])
    )


def _with_fastest(hw: HardwareProfile) -> HardwareProfile:
    """`hw` recording the calibration's fastest samples: collectives at 64 KiB, 1 and 16 MiB,
    copies at 1 and 16 MiB."""
    fastest = {f"collective:{c}:2:{n}": 1e-4 + n * 1e-9 for c in ("all_reduce", "all_gather")
               for n in (1 << 16, 1 << 20, 1 << 24)}  # fmt: skip
    fastest |= {"copy:1048576": 1e-4, "copy:16777216": 3e-3}
    return dataclasses.replace(hw, host=dataclasses.replace(hw.host, fastest_s=fastest))


def test_noisy_probes_repeat_the_calibrations_measurement():
    hw = _with_fastest(_calibrated())
    specs = same_way(hw, probe_specs(TINY, ["fp32"], True, calibrated_as(hw)))
    copy = next(s for s in specs if s["probe"] == "copy")
    assert copy["fastest"] and copy["sizes"] == [1 << 20, 1 << 24]
    # median over sizes of the fastest sample per byte moved (read + write)
    assert profile_time(hw, copy) == pytest.approx((1e-4 / 2**21 + 3e-3 / 2**25) / 2)
    colls = [s for s in specs if s["probe"] == "collective"]
    # tiny's 0.52 MiB gradients and 0.19 MiB block: the calibrated size >= 1 MiB, its own figure
    assert [s["bytes"] for s in colls] == [1 << 20, 1 << 20]
    assert profile_time(hw, colls[0]) == pytest.approx(1e-4 + 2**20 * 1e-9)
    # a profile without the record keeps the model's sizes and the fit
    plain = same_way(_calibrated(), probe_specs(TINY, ["fp32"], True))
    assert not any(s.get("fastest") for s in plain)


def test_a_hiccup_is_timed_again_and_only_a_lasting_drift_is_flagged():
    hw = _with_fastest(_calibrated())
    calls: list[list[str]] = []

    def timer(slow_first: float, slow_after: float):
        def t(specs):
            f = slow_first if not calls else slow_after
            calls.append([s["probe"] for s in specs])
            return [profile_time(hw, s) * (f if s.get("fastest") else 1.0) for s in specs]

        return t

    rows = check_components(hw, TINY, ["fp32"], True, timer=timer(4.0, 1.0))
    # round 2 times only the drifted fastest-sample probes; the faster round counts
    assert calls[1] == ["copy", "collective", "collective"]
    assert not any(r["drifted"] for r in rows)
    assert [r.get("rounds", 1) for r in rows if r.get("fastest")] == [2, 2, 2]
    calls.clear()
    rows = check_components(hw, TINY, ["fp32"], True, timer=timer(3.0, 3.0))
    assert len(calls) == 2  # two rounds at most
    assert [r["speed"] for r in rows if r["drifted"]] == pytest.approx([1 / 3] * 3)
    # put in place (--remeasure-drifted), the same comparison then agrees
    again = after_replacement(replaced(hw, rows), rows)
    assert [r["speed"] for r in again if r.get("remeasured")] == pytest.approx([1.0] * 3)


def test_the_real_probes_time_the_rates():
    """The torch timings of the rate probes at the tiny plan's sizes (fast); attention and
    collectives run the calibration's own benchmarks, tested there."""
    from validation.component_timing import time_probes
    from validation.components import rows_for

    specs = probe_specs(TINY, ["fp32"], False, {"level": "tiny", "dtypes": ["fp32"]})[1:]
    assert [s["probe"] for s in specs] == ["memory", "copy"]
    rows = rows_for(_calibrated(), specs, time_probes(specs))
    assert all(r["measured_s"] > 0 and r["profile_s"] > 0 for r in rows)


def test_the_cli_guard_re_measures_drifted_components_in_place(monkeypatch):
    """`llmcap validate`'s guard (fake timers): a profile whose attention, memory-bound and
    collective figures are 3x too fast is flagged; with --remeasure-drifted the figures
    measured now are put in place and nothing is withheld."""
    from rich.console import Console

    import validation.component_timing as ct
    import validation.drift as drift
    from validation.cli import _guard
    from validation.suite import Matrix

    cal = _calibrated()
    machine = dataclasses.replace(cal, host=dataclasses.replace(cal.host, contention={}))
    stale = _stale(machine, 3.0)
    stale = dataclasses.replace(stale, accelerator=dataclasses.replace(
        stale.accelerator, peak_flops=machine.accelerator.peak_flops))  # fmt: skip
    monkeypatch.setattr(
        drift, "_measure", lambda pairs: [drift.gemm_price(machine, d, s.flops) for s, d in pairs]
    )
    monkeypatch.setattr(ct, "time_probes", lambda specs, threads=1: _machine_as(machine)(specs))
    matrix = Matrix(SMALL, nprocs=(1, 2), strategies=("ddp",), precisions=("fp32",))
    err = Console(file=io.StringIO())

    hw, rows = _guard(stale, matrix, err)
    # without --remeasure-drifted only the framework's host time, measured now, is added
    assert hw.accelerator is stale.accelerator and hw.node is stale.node
    assert dataclasses.replace(hw.host, model_pass_s={}) == stale.host
    assert [r.get("probe") for r in rows].count("framework") == 2  # pass + optimizer step
    assert withheld_runs(rows, matrix.specs()) == {s.run_id for s in matrix.specs()}
    hw, rows = _guard(stale, matrix, err, again=True)
    assert hw is not stale and withheld_runs(rows, matrix.specs()) == set()
    assert {r["probe"] for r in rows if r.get("remeasured")} == {
        "attention", "memory", "copy", "collective",
    }  # fmt: skip


def test_the_16bit_matrix_flag_is_read_from_cpuinfo(tmp_path):
    from hwprofiles.calibration.machine import cpu_16bit_matrix_flag

    zen3 = tmp_path / "zen3"
    zen3.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma sha_ni\n\nflags\t\t: fpu avx2\n")
    spr = tmp_path / "spr"
    spr.write_text("flags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    arm = tmp_path / "arm"
    arm.write_text("Features\t: fp asimd sve bf16 i8mm\n")
    assert cpu_16bit_matrix_flag(zen3) == ""
    assert cpu_16bit_matrix_flag(spr) == "amx_bf16"
    assert cpu_16bit_matrix_flag(arm) == "bf16"
    assert cpu_16bit_matrix_flag(tmp_path / "missing") is None


def test_auto_model_shrinks_only_for_bf16_without_a_matrix_unit(monkeypatch):
    import hwprofiles.calibration.machine as machine
    from validation.cli import _auto_model
    from validation.gptconfig import auto_model

    assert auto_model("cpu", ("fp32", "bf16"), "")[0] == "tiny"
    assert auto_model("cpu", ("fp32",), "") == ("small", "")
    assert auto_model("cpu", ("fp32", "bf16"), "avx512_bf16") == ("small", "")
    assert auto_model("cpu", ("bf16",), None) == ("small", "")  # unknown CPU: as asked
    assert auto_model("cuda", ("bf16",), "") == ("small", "")

    monkeypatch.setattr(machine, "cpu_16bit_matrix_flag", lambda: "")
    o = {"model": "auto", "precision": "fp32,bf16", "device": "cpu"}
    assert "no 16-bit matrix unit" in _auto_model(o) and o["model"] == "tiny"
    o = {"model": "small", "precision": "fp32,bf16", "device": "cpu"}
    assert _auto_model(o) == "" and o["model"] == "small"


def test_a_drift_withholds_only_the_runs_whose_prediction_it_moves():
    """`guard.material`: a drifted copy probe keeps out of the headline only the runs whose
    predicted step its measured rate moves by more than 5 %; a drifted GEMM always does."""
    from validation.guard import MATERIAL, material

    hw = _calibrated()
    specs = [RunSpec(SMALL, "ddp", "fp32", 1), RunSpec(SMALL, "fsdp", "fp32", 1)]
    copy = {"probe": "copy", "dtype": "any", "scope": "all runs", "what": "buffer copy",
            "measured_s": 2e-11, "profile_s": 1e-11, "speed": 0.5, "drifted": True}  # fmt: skip
    calls = []

    def step_time(runs, profile):
        # the profile's own copy rate: 1.0 s; the measured one in place: +2 % DDP, +20 % FSDP
        calls.append(profile)
        moved = profile.accelerator.copy_bytes_per_s != hw.accelerator.copy_bytes_per_s
        return {s.run_id: 1.0 + (0.02 if s.strategy == "ddp" else 0.2) * moved for s in runs}

    off, notes = material([copy], specs, hw, step_time)
    assert off == {"fsdp-fp32-n1"} and len(calls) == 2
    assert notes == [
        "ddp-fp32-n1 headlined although a component it rests on drifted: the measured "
        f"figure in place moves its predicted step by +2.0 % (within ±{MATERIAL * 100:.0f} %)"
    ]
    gemm = {"dtype": "fp32", "gemm": "small/mlp_up 512x256x1024", "measured_s": 2e-3,
            "profile_s": 1e-3, "speed": 0.5, "drifted": True}  # fmt: skip
    off, notes = material([copy, gemm], specs, hw, step_time)
    assert off == {"ddp-fp32-n1", "fsdp-fp32-n1"} and notes == []
    assert material([dict(copy, drifted=False)], specs, hw, step_time) == (set(), [])


def test_a_run_measured_in_a_slow_spell_is_not_headlined():
    from validation.guard import drifted_during

    rows = [{"run": "a", "speed": 0.95}, {"run": "b", "speed": 0.69}, {"run": "c", "speed": 1.4}]
    off, notes = drifted_during(rows)
    assert off == {"b", "c"} and len(notes) == 2
    assert notes[0].startswith("b not headlined: the machine ran its probe GEMMs at 0.69x")
    assert drifted_during([]) == (set(), [])
