"""Runs priced at the component rates measured between their own steps (`validation.inrun`,
`validation.inplace`): the probes, how a run's figure is taken, the profile with the rates in
place, and what the report does with them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from hwprofiles.catalogue import load_profile
from hwprofiles.host import model_pass_key
from simulator.costmodel.framework import model_signature
from validation import inplace
from validation.compare import predict_runs
from validation.gptconfig import PRESETS
from validation.hollow import OPTIMIZER, with_passes
from validation.inrun import InRunProbes
from validation.launcher import Outcome
from validation.mapping import model_spec
from validation.measure import Measured, Spread, measured, merge_rounds
from validation.spec import RunSpec

TINY = PRESETS["tiny"]
SIG = model_signature(model_spec(TINY))


def _profile() -> object:
    """The datasheet CPU profile, marked calibrated, with the tiny model's passes measured
    "before the runs"."""
    passes = {
        model_pass_key(SIG, "ddp", "fp32"): 2e-3,
        model_pass_key(SIG, "ddp", OPTIMIZER): 1e-3,
        "other/L1/T3|ddp|fp32": 7e-3,
    }
    hw = load_profile("cpu")
    hw = dataclasses.replace(hw, provenance=dataclasses.replace(hw.provenance, kind="calibrated"))
    return with_passes(hw, passes)


def _measured(
    spec: RunSpec, gemm: float | None, host: float | None = None, opt: float | None = None
) -> Measured:
    return Measured(
        run=spec.run_id, step=Spread(0.01, 0.01, 0.01, 0.01, 0.01, 2), tokens_per_s=1.0,
        peak_memory_bytes=1, peak_memory_kind="max_rss", comm_fraction=None, comm_method=None,
        pair_sync_s=None, pair_no_sync_s=None, other_load_cores=None, energy_per_step_j=None,
        energy_meter=None, energy_reason="", loss_first=6.0, loss_last=5.9,
        inrun_gemm_s=gemm, inrun_pass_s=host, inrun_optimizer_s=opt,
    )  # fmt: skip


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_probes_sample_the_models_gemm_and_its_wrapped_hollow_twin(strategy: str) -> None:
    from hwprofiles.calibration.framework import one_rank_group

    with one_rank_group():
        for precision in ("fp32", "bf16"):
            spec = RunSpec(TINY, strategy, precision, 1)
            p = InRunProbes(spec, torch.device("cpu"), rank=0)
            want = torch.bfloat16 if precision == "bf16" else torch.float32
            assert all(x.dtype == want == out.dtype for x, _, out in p._pairs)
            # up (tokens x hidden @ hidden x ffn) and down, as nn.Linear lays them out
            assert [tuple(out.shape) for *_, out in p._pairs] == [(128, 256), (128, 64)]
            gemm, host, opt, colls = p.sample()
            assert gemm > 0 and host > 0 and opt > 0 and p._inner >= 1 and p._warm >= 1
            assert colls == {}  # one rank: no collective


def _rank(gemm: list[float], host: list[float], opt: list[float] | None = None) -> dict:
    return {
        "step_times_s": [0.01] * len(gemm), "pair_sync_s": [], "pair_nosync_s": [],
        "probe_gemm_s": [], "inrun_gemm_s": gemm, "inrun_pass_s": host,
        "inrun_optimizer_s": opt if opt is not None else host,
        "peak_memory_bytes": 1, "peak_memory_kind": "max_rss", "energy_metered": False,
        "energy_j": None, "energy_meter": None, "energy_reason": "", "loss_first": 6.0,
        "loss_last": 5.9, "timed_window_s": 1.0, "timed_cpu_s": 1.0,
        "timed_machine_busy_s": 2.0,
    }  # fmt: skip


def test_a_runs_in_run_rates_are_its_slowest_ranks_medians() -> None:
    spec = RunSpec(TINY, "ddp", "fp32", 2, steps=3, comm_pairs=0)
    ranks = {0: _rank([1.0, 2.0, 9.0], [5.0, 4.0, 3.0]), 1: _rank([3.0, 3.0, 1.0], [1.0] * 3)}
    ranks[0]["inrun_collective_s"] = {"all_reduce": [1.0, 5.0, 1.0]}
    ranks[1]["inrun_collective_s"] = {"all_reduce": [2.0, 1.0, 3.0]}
    m = measured(Outcome(spec, Path("."), ranks, None, 1.0))
    assert (m.inrun_gemm_s, m.inrun_pass_s) == (3.0, 4.0)  # rank 1's GEMM, rank 0's host
    # collectives: the slowest rank per call, the mean over the calls (hiccups included)
    assert m.inrun_collective_s == {"all_reduce": pytest.approx((2.0 + 5.0 + 3.0) / 3)}
    assert Measured.from_dict(m.to_dict()) == m
    merged = measured(merge_rounds([Outcome(spec, Path("."), ranks, None, 1.0)] * 2))
    assert merged.inrun_collective_s == m.inrun_collective_s
    older = {r: {k: v for k, v in d.items() if not k.startswith("inrun")} for r, d in ranks.items()}
    m = measured(Outcome(spec, Path("."), older, None, 1.0))
    assert m.inrun_gemm_s is None and m.inrun_pass_s is None and m.inrun_optimizer_s is None


def test_rates_in_place_scale_the_runs_gemms_and_replace_its_host_times() -> None:
    hw = _profile()
    spec = RunSpec(TINY, "ddp", "fp32", 1, steps=2)
    ref = inplace.probe_profile_s(hw, spec)
    key_pass, key_opt = model_pass_key(SIG, "ddp", "fp32"), model_pass_key(SIG, "ddp", OPTIMIZER)
    assert inplace.rates(hw, spec, _measured(spec, None, 4e-3)) is None  # an older report
    same = inplace.rates(hw, spec, _measured(spec, ref, 2e-3, 1e-3))
    assert same["gemm_speed"] == pytest.approx(1.0)
    assert (same["pass_before_s"], same["optimizer_before_s"]) == (2e-3, 1e-3)
    base, _ = predict_runs([spec], hw, ("analytic",))
    own = {spec.run_id: inplace.at_rates(hw, spec, same)}
    at_same, _ = predict_runs([spec], hw, ("analytic",), per_run=own)
    key = (spec.run_id, "analytic")
    assert at_same[key].step_time_s == pytest.approx(base[key].step_time_s, rel=1e-12)

    r = inplace.rates(hw, spec, _measured(spec, 2 * ref, 3e-3, 1.5e-3))  # all 1.5-2x slower
    assert r["gemm_speed"] == pytest.approx(0.5)
    slow = inplace.at_rates(hw, spec, r)
    assert inplace.probe_profile_s(slow, spec) == pytest.approx(2 * ref)
    assert slow.accelerator.peak_flops["bf16"] == hw.accelerator.peak_flops["bf16"]  # other dtype
    passes = slow.host.model_pass_s
    assert (passes[key_pass], passes[key_opt]) == (3e-3, 1.5e-3)
    assert passes["other/L1/T3|ddp|fp32"] == 7e-3  # another model's
    got, _ = predict_runs([spec], hw, ("analytic",), per_run={spec.run_id: slow})
    assert got[key].step_time_s > base[key].step_time_s
    # a GPU run has no host probes: its host times stay the profile's
    r = inplace.rates(hw, spec, _measured(spec, 2 * ref))
    assert inplace.at_rates(hw, spec, r).host == hw.host


def test_runs_priced_in_place_are_headlined_through_a_gemm_drift(tmp_path: Path) -> None:
    """A pre-run GEMM probe that drifted no longer withholds runs whose GEMM rate was measured
    inside them; the report lists both predictions beside the measured step."""
    from validation.suite import Matrix, Record, SuiteResult
    from validation.validate import finish

    hw = _profile()
    matrix = Matrix(TINY, strategies=("ddp",), precisions=("fp32",), nprocs=(1,), links=(None,))
    (spec,) = matrix.specs()
    ref = inplace.probe_profile_s(hw, spec)
    m = _measured(spec, 1.1 * ref, 2.2e-3, 1.1e-3)
    drift = [{"dtype": "fp32", "gemm": "g", "measured_s": 1.0, "profile_s": 3.0, "speed": 3.0,
              "drifted": True}]  # fmt: skip
    v = finish(
        matrix, SuiteResult([Record(spec, m, wall_s=1.0)]), hw, {"cpu_cores": "2"},
        out=tmp_path, command="c", engines=("analytic",), drift=drift,
    )  # fmt: skip
    (row,) = v.doc["in_run"]
    assert row["gemm_speed"] == pytest.approx(1 / 1.1) and row["pass_measured_s"] == 2.2e-3
    assert row["predicted_in_place_s"] > row["predicted_as_calibrated_s"]
    (c,) = [c for c in v.doc["comparisons"] if c["metric"] == "step_time_s"]
    assert c["predicted"] == pytest.approx(row["predicted_in_place_s"])
    step = [s for s in v.doc["summary"] if s["metric"] == "step_time_s"]
    assert step and step[0]["count"] == 1  # headlined
    assert not any(n.startswith("profile drifted for fp32") for n in v.doc["notes"])
    assert any("between their own steps" in n for n in v.doc["notes"])
    assert v.doc["drift"] == drift  # the probe stays in the report
    assert "In-run component rates" in (tmp_path / "report.md").read_text()
    # without in-run probes (an older report) the drift withholds the run as before
    old = dataclasses.replace(m, inrun_gemm_s=None, inrun_pass_s=None, inrun_optimizer_s=None)
    v = finish(
        matrix, SuiteResult([Record(spec, old, wall_s=1.0)]), hw, {"cpu_cores": "2"},
        out=tmp_path, command="c", engines=("analytic",), drift=drift,
    )  # fmt: skip
    assert "in_run" not in v.doc
    assert not [s for s in v.doc["summary"] if s["metric"] == "step_time_s"]
    # a datasheet profile is not re-priced at the in-run rates
    sheet = dataclasses.replace(hw, provenance=dataclasses.replace(hw.provenance, kind="datasheet"))
    v = finish(
        matrix, SuiteResult([Record(spec, m, wall_s=1.0)]), sheet, {"cpu_cores": "2"},
        out=tmp_path, command="c", engines=("analytic",),
    )  # fmt: skip
    assert "in_run" not in v.doc


def test_in_run_collectives_are_the_strategys_at_the_models_sizes_and_scale_their_fits() -> None:
    from validation.components import block_params, gradient_bytes
    from validation.inrun import collective_sizes

    ddp, fsdp = (RunSpec(TINY, s, "bf16", 2, steps=2) for s in ("ddp", "fsdp"))
    assert collective_sizes(RunSpec(TINY, "ddp", "fp32", 1)) == []
    ((name, n),) = collective_sizes(ddp)
    assert name == "all_reduce" and gradient_bytes(TINY) <= n < gradient_bytes(TINY) + 8
    assert [c for c, _ in collective_sizes(fsdp)] == ["all_gather", "reduce_scatter"]
    assert all(n >= 4 * block_params(TINY) for _, n in collective_sizes(fsdp))

    hw = _profile()
    r = inplace.rates(hw, fsdp, _measured(fsdp, 1e-3))
    assert r["collectives"] == []  # none measured: the fits stay
    m = dataclasses.replace(_measured(fsdp, 1e-3), inrun_collective_s={"all_gather": 0.0})
    (row,) = inplace.rates(hw, fsdp, m)["collectives"]
    m = dataclasses.replace(m, inrun_collective_s={"all_gather": 3 * row["profile_s"]})
    slow = inplace.at_rates(hw, fsdp, inplace.rates(hw, fsdp, m))
    from validation.components import profile_time

    assert profile_time(slow, row) == pytest.approx(3 * row["profile_s"])
    other = {**row, "collective": "reduce_scatter"}
    assert profile_time(slow, other) == pytest.approx(profile_time(hw, other))
