"""Validation pieces without processes: specs, rates, measurement summaries, comparisons,
report rendering, and CLI input errors (one line, exit 2, nothing run)."""

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from hwprofiles.catalogue import load_profile
from simulator.result import StepResult
from validation import compare, report
from validation.gptconfig import PRESETS
from validation.launcher import Failure, Outcome
from validation.measure import (
    Measured,
    Spread,
    baseline_comm_fraction,
    measured,
    merge_rounds,
    slowest_rank,
)
from validation.netns import parse_rate
from validation.spec import Fault, RunSpec, format_rate
from validation.suite import Matrix, Record, SuiteResult

TINY = PRESETS["tiny"]


# ---- specs, rates -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "bytes_per_s"),
    [
        ("200Mbit", 25e6),
        ("1Gbit", 125e6),
        ("1.5gbit", 187.5e6),
        ("25MB/s", 25e6),
        ("800kbit", 1e5),
        ("100bit", 12.5),
    ],
)
def test_parse_rate(text, bytes_per_s):
    assert parse_rate(text) == pytest.approx(bytes_per_s)


@pytest.mark.parametrize("text", ["fast", "100", "-5Mbit", "0Mbit", "10 Tbit"])
def test_parse_rate_rejects(text):
    with pytest.raises(ValueError, match="link-bandwidth"):
        parse_rate(text)


def test_format_rate_round_trips():
    for text in ("200Mbit", "1Gbit", "1.5Gbit"):
        assert format_rate(parse_rate(text)) == text


def test_run_ids_and_validation():
    s = RunSpec(TINY, "fsdp", "bf16", 2, link_bytes_per_s=25e6)
    assert s.run_id == "fsdp-bf16-n2@200Mbit"
    assert RunSpec.from_dict(s.to_dict()) == s
    assert not s.measures_comm_by_no_sync and s.with_(strategy="ddp").measures_comm_by_no_sync
    with pytest.raises(ValueError, match="strategy: 'zero'"):
        RunSpec(TINY, "zero", "fp32", 1)
    with pytest.raises(ValueError, match="steps: 0"):
        RunSpec(TINY, "ddp", "fp32", 1, steps=0)
    with pytest.raises(ValueError, match=r"fault\.rank: 2"):
        RunSpec(TINY, "ddp", "fp32", 2, fault=Fault(2, "exit"))
    with pytest.raises(ValueError, match="nproc: 100000 is above llmcap's limit of 256"):
        RunSpec(TINY, "ddp", "fp32", 100_000)  # a process per rank: refused, not started


def test_fault_parse():
    assert Fault.parse("1:hang:4") == Fault(1, "hang", 4)
    assert Fault.parse("0:exit") == Fault(0, "exit", 0)
    for bad in ("1", "x:exit", "1:explode", "1:exit:y"):
        with pytest.raises(ValueError, match="fault"):
            Fault.parse(bad)


def test_matrix_runs_one_rank_once_and_first():
    m = Matrix(
        TINY, nprocs=(2, 1), strategies=("ddp",), precisions=("fp32",), links=(None, 125e6, 25e6)
    )
    ids = [s.run_id for s in m.specs()]
    assert ids == ["ddp-fp32-n1", "ddp-fp32-n2", "ddp-fp32-n2@1Gbit", "ddp-fp32-n2@200Mbit"]


# ---- measurement summaries ------------------------------------------------------------------
def _rank(times, sync=(), nosync=(), energy=None, metered=False, probe=()):
    return {
        "probe_gemm_s": list(probe),
        "step_times_s": list(times),
        "pair_sync_s": list(sync),
        "pair_nosync_s": list(nosync),
        "peak_memory_bytes": 1000,
        "peak_memory_kind": "max_rss",
        "energy_metered": metered,
        "energy_j": energy,
        "energy_meter": "fake" if energy else None,
        "energy_reason": "" if energy else "no meter",
        "loss_first": 6.0,
        "loss_last": 5.9,
        "timed_window_s": 2.0,
        "timed_cpu_s": 1.5,
        "timed_machine_busy_s": 4.0,
    }


def test_spread_and_slowest_rank():
    sp = Spread.of([1.0, 2.0, 3.0, 4.0, 100.0])
    assert sp.median_s == 3.0 and sp.min_s == 1.0 and sp.max_s == 100.0 and sp.count == 5
    assert sp.q1_s == 2.0 and sp.q3_s == 4.0
    assert slowest_rank([[1.0, 5.0], [2.0, 3.0]]) == [2.0, 5.0]


def test_measured_from_outcome_ddp():
    spec = RunSpec(TINY, "ddp", "fp32", 2, steps=3, comm_pairs=2)
    ranks = {
        0: _rank([0.1, 0.2, 0.3], [0.2, 0.2], [0.15, 0.15], energy=6.0, metered=True),
        1: _rank([0.1, 0.25, 0.2], [0.2, 0.2], [0.1, 0.1]),
    }
    m = measured(Outcome(spec, Path("."), ranks, None, 1.0))
    assert m.step.median_s == pytest.approx(0.25)
    assert m.tokens_per_s == pytest.approx(spec.tokens_per_step / 0.25)
    assert m.comm_fraction == pytest.approx(0.25) and m.comm_method == "no_sync"
    assert m.energy_per_step_j == pytest.approx(2.0)  # 6 J over 3 steps, rank 0's meter
    assert m.other_load_cores == pytest.approx((4.0 - 2 * 1.5) / 2.0)  # busy minus the ranks


def test_rounds_pool_steps_and_keep_each_rounds_median():
    spec = RunSpec(TINY, "ddp", "fp32", 2, steps=2, comm_pairs=1)

    def outcome(t, energy):
        ranks = {
            r: _rank([t, t], [t], [t / 2], energy=energy, metered=r == 0, probe=[t / 10] * 3)
            for r in (0, 1)
        }
        return Outcome(spec, Path("."), ranks, None, 1.0)

    merged = merge_rounds([outcome(0.2, 4.0), outcome(0.4, 8.0), outcome(0.3, 6.0)])
    m = measured(merged)
    assert m.round_medians_s == pytest.approx((0.2, 0.4, 0.3))
    assert m.step.median_s == pytest.approx(0.3) and m.step.count == 6
    assert m.energy_per_step_j == pytest.approx(18.0 / 6)  # mean over every timed step
    assert m.pair_sync_s == pytest.approx(0.3) and m.comm_fraction == pytest.approx(0.5)
    assert measured(outcome(0.2, 4.0)).round_medians_s == ()  # one round: nothing to split
    # the speed probe: every rank's calls pooled, split by round like the steps
    assert m.probe_gemm_s == pytest.approx(0.03)
    assert m.probe_round_s == pytest.approx((0.02, 0.04, 0.03))
    assert Measured.from_dict(m.to_dict()) == m


def test_speed_probe_sets_the_machine_against_the_calibration():
    from simulator.costmodel.timing import compute_time
    from validation.compare import speed_probes

    hw = load_profile("cpu")
    spec = RunSpec(TINY, "ddp", "bf16", 1, steps=2)
    cfg = TINY
    flops = 2.0 * cfg.micro_batch_size * cfg.seq_len * cfg.hidden_size * cfg.ffn_size
    calibrated = float(compute_time(hw.accelerator, flops, "bf16"))

    def run(times):
        ranks = {0: _rank([0.1, 0.1], probe=times)}
        return (spec, measured(Outcome(spec, Path("."), ranks, None, 1.0)))

    (row,) = speed_probes({"a": run([calibrated * 1.25] * 4)}, hw)
    assert row["speed"] == pytest.approx(0.8)  # the machine ran 25 % longer than calibrated
    assert row["measured_s"] == pytest.approx(calibrated * 1.25)
    assert speed_probes({"a": run([])}, hw) == []  # no probe recorded (an older report)


def test_matrix_rounds_run_round_robin_and_record_each_run_once(monkeypatch, tmp_path):
    from validation import suite

    order = []

    def fake_run_one(spec, run_dir, links=None, **timeouts):
        order.append((spec.run_id, run_dir.name))
        fail = spec.nproc == 2 and run_dir.name == "round2"
        ranks = {r: _rank([0.1 * spec.nproc] * 2, [0.2], [0.1]) for r in range(spec.nproc)}
        failure = Failure(1, "exited") if fail else None
        return Outcome(spec, run_dir, {} if fail else ranks, failure, 1.0)

    monkeypatch.setattr(suite, "run_one", fake_run_one)
    m = Matrix(TINY, nprocs=(1, 2), strategies=("ddp",), precisions=("fp32",), steps=2, rounds=3)
    res = suite.run_matrix(m, tmp_path)
    assert [o[1] for o in order] == ["round1", "round1", "round2", "round2", "round3"]
    by_id = {r.spec.run_id: r for r in res.records}
    assert len(res.records) == 2
    assert by_id["ddp-fp32-n1"].measured.round_medians_s == pytest.approx((0.1, 0.1, 0.1))
    assert by_id["ddp-fp32-n2"].failure is not None  # a failed round is not retried
    with pytest.raises(ValueError, match="rounds"):
        Matrix(TINY, rounds=0)


def test_failed_outcome_has_no_measurement():
    spec = RunSpec(TINY, "ddp", "fp32", 2)
    with pytest.raises(ValueError, match="incomplete"):
        measured(Outcome(spec, Path("."), {}, Failure(1, "rank 1 failed"), 1.0))


def test_fsdp_comm_share_from_one_rank_baseline():
    one = RunSpec(TINY, "fsdp", "fp32", 1, steps=2)
    two = one.with_(nproc=2)
    m1 = measured(Outcome(one, Path("."), {0: _rank([0.3, 0.3])}, None, 1.0))
    m2 = measured(Outcome(two, Path("."), {0: _rank([0.4, 0.4]), 1: _rank([0.4, 0.4])}, None, 1))
    assert m2.comm_fraction is None
    m2 = baseline_comm_fraction(m2, two, m1)
    assert m2.comm_fraction == pytest.approx(0.25) and m2.comm_method == "1-rank baseline"


# ---- comparisons ----------------------------------------------------------------------------
def _step(t, comm=0.0, energy=1.0, n=1):
    return StepResult(
        engine="fake",
        step_time_s=t,
        tokens_per_step=1,
        num_gpus=n,
        model_flops_per_step=1.0,
        hardware_flops_per_step=1.0,
        peak_flops_per_gpu=1.0,
        comm_exposed_s=comm * t,
        memory_per_gpu_bytes=0.0,
        memory_capacity_bytes=1.0,
        energy_per_step_j=energy,
    )


def _measured_runs():
    runs = {}
    for prec, n, t, energy in (
        ("fp32", 1, 0.2, 10.0),
        ("fp32", 2, 0.25, 24.0),
        ("bf16", 1, 0.1, 6.0),
        ("bf16", 2, 0.2, 15.0),
    ):
        spec = RunSpec(TINY, "ddp", prec, n, steps=2, comm_pairs=2)
        ranks = {
            r: _rank([t, t], [t, t], [t * 0.8] * 2, energy=energy * 2, metered=r == 0)
            for r in range(n)
        }
        runs[spec.run_id] = (spec, measured(Outcome(spec, Path("."), ranks, None, 1.0)))
    return runs


def test_compare_all_metrics_with_a_fake_predictor():
    runs = _measured_runs()
    fake = {
        "ddp-fp32-n1": _step(0.2, 0, 10.0),
        "ddp-fp32-n2": _step(0.2, 0.1, 20.0, 2),
        "ddp-bf16-n1": _step(0.1, 0, 5.0),
        "ddp-bf16-n2": _step(0.125, 0.2, 12.0, 2),
    }

    def predictor(w, hw, engine, options, devices_busy):
        assert options.bucket_bytes == 25 * 2**20  # torch DDP's bucket, not Megatron's
        assert options.amp_casts  # torch.autocast's casts are priced
        assert devices_busy == w.parallel.dp  # all ranks share this one host
        prec, n = w.parallel.precision, w.parallel.dp
        return fake[f"ddp-{prec}-n{n}"]

    specs = [s for s, _ in runs.values()]
    preds, notes = compare.predict_runs(
        specs, hardware=_any_profile(), engines=("analytic",), predictor=predictor
    )
    assert notes == []
    got = {(c.metric, c.run, c.engine): c for c in compare.compare(runs, preds, ("analytic",))}
    c = got[("step_time_s", "ddp-fp32-n2", "analytic")]
    assert (c.measured, c.predicted, c.error) == (0.25, 0.2, pytest.approx(-0.2))
    c = got[("speedup", "ddp-fp32-n2", "analytic")]
    assert c.measured == pytest.approx(1.6) and c.predicted == pytest.approx(2.0)
    assert c.baseline == "ddp-fp32-n1"
    assert got[("speedup", "ddp-fp32-n2", "seed")].predicted == 2.0
    assert got[("comm_fraction", "ddp-bf16-n2", "analytic")].measured == pytest.approx(0.2)
    assert got[("comm_fraction", "ddp-bf16-n2", "analytic")].predicted == pytest.approx(0.2)
    c = got[("bf16_fp32_time_ratio", "ddp-bf16-n2", "analytic")]
    assert c.measured == pytest.approx(0.8) and c.predicted == pytest.approx(0.625)
    c = got[("energy_ratio", "ddp-bf16-n1", "analytic")]
    assert c.measured == pytest.approx(0.6) and c.predicted == pytest.approx(0.5)
    assert got[("energy_ratio", "ddp-bf16-n1", "seed-literal")].predicted == 2.0
    assert got[("energy_ratio", "ddp-bf16-n1", "seed-intended")].predicted == 0.5
    assert ("speedup", "ddp-fp32-n1", "analytic") not in got  # no speed-up of 1 rank
    assert {c.metric for c in got.values()} == set(compare.METRICS)
    d = c.to_dict()
    assert list(d)[:6] == ["run", "metric", "measured", "predicted", "engine", "error"]


def _any_profile():
    from hwprofiles.catalogue import load_profile

    return load_profile("cpu")


def test_comm_share_is_predicted_by_the_method_that_measured_it():
    """DDP (no_sync): the prediction counts the bucket copies no_sync also skips; FSDP: the
    prediction is 1 - t(1 rank)/t(N ranks), like the measurement."""
    one = RunSpec(TINY, "fsdp", "fp32", 1, steps=2)
    two = one.with_(nproc=2)
    m1 = measured(Outcome(one, Path("."), {0: _rank([0.3, 0.3])}, None, 1.0))
    m2 = measured(Outcome(two, Path("."), {0: _rank([0.4, 0.4]), 1: _rank([0.4, 0.4])}, None, 1))
    runs = {one.run_id: (one, m1), two.run_id: (two, baseline_comm_fraction(m2, two, m1))}
    preds = {(one.run_id, "analytic"): _step(0.2), (two.run_id, "analytic"): _step(0.25, 0.1, n=2)}
    got = {(c.metric, c.run): c for c in compare.compare(runs, preds, ("analytic",))}
    c = got[("comm_fraction", two.run_id)]
    assert c.baseline == one.run_id
    assert c.measured == pytest.approx(0.25) and c.predicted == pytest.approx(1 - 0.2 / 0.25)

    ddp = _step(0.5, 0.1, n=2)
    ddp = dataclasses.replace(ddp, breakdown={"copies": 0.05, "comm_dp": 0.05})
    assert compare.Figures.of_predicted(ddp).comm_fraction == pytest.approx(0.2)


def test_stack_options_follow_torch_on_the_device():
    from validation.mapping import stack_options

    cpu, gpu = stack_options("cpu"), stack_options("cuda")
    assert cpu.grad_bucket_copies and cpu.zero3_copies and cpu.amp_casts
    assert not cpu.overlap_param_gather  # FSDP2 on CPU: blocking collectives
    assert gpu.overlap_param_gather
    # torch's per-tensor AdamW, op by op (validation.mapping), not a fused kernel's 34 B
    assert cpu.optimizer_bytes_per_param == 8 + 12 + 8 + 12 + 8 + 8 + 8 + 16


def test_engine_that_cannot_predict_is_noted_once():
    runs = _measured_runs()
    calls = []

    def predictor(w, hw, engine, **options):
        calls.append(engine)
        raise NotImplementedError("not yet")

    preds, notes = compare.predict_runs(
        [s for s, _ in runs.values()], _any_profile(), ("des",), predictor
    )
    assert preds == {} and calls == ["des"] and "not yet" in notes[0]


def test_diagnostics_split_contention_and_exposed_comm():
    runs = _measured_runs()
    preds = {("ddp-fp32-n2", "analytic"): _step(0.2, comm=0.1, n=2)}
    rows = {d["run"]: d for d in compare.diagnostics(runs, preds, ("analytic",))}
    assert set(rows) == {"ddp-bf16-n2", "ddp-fp32-n2"}  # 1-rank runs have no pairs
    d = rows["ddp-fp32-n2"]
    assert d["contention"] == pytest.approx(0.8 * 0.25 / 0.2)  # no_sync step over 1-rank step
    assert d["exposed_comm_s"] == pytest.approx(0.25 - 0.2)
    assert d["predicted_exposed_comm_s"] == {"analytic": pytest.approx(0.02)}
    assert rows["ddp-bf16-n2"]["predicted_exposed_comm_s"] == {}


def test_summary_median_and_target():
    cs = [compare.Comparison("a", "step_time_s", 1.0, p, "analytic") for p in (1.05, 0.8, 1.02)]
    cs.append(compare.Comparison("b@x", "speedup", 2.0, 1.0, "seed"))
    rows = compare.summarise(cs, rate_limited={"b@x"})
    st = next(r for r in rows if r["metric"] == "step_time_s")
    assert st["count"] == 3 and st["median_abs_error"] == pytest.approx(0.05)
    assert st["max_abs_error"] == pytest.approx(0.2) and st["meets_target"]
    scopes = {(r["metric"], r["scope"]) for r in rows}
    assert ("speedup", "rate-limited link") in scopes
    assert ("step_time_s", "rate-limited link") not in scopes


# ---- report ---------------------------------------------------------------------------------
def test_report_document_and_markdown():
    runs = _measured_runs()
    matrix = Matrix(TINY, strategies=("ddp",), links=(None,), steps=2, comm_pairs=2)
    recs = [Record(s, m, wall_s=1.0) for s, m in runs.values()]
    failed = RunSpec(TINY, "ddp", "fp32", 2, link_bytes_per_s=25e6)
    recs.append(Record(failed, None, Failure(1, "rank 1 failed: exited with status 3"), 2.0))
    cs = [compare.Comparison("ddp-fp32-n2", "step_time_s", 0.25, 0.2, "analytic")]
    doc = report.document(
        matrix,
        SuiteResult(recs),
        cs,
        compare.summarise(cs, set()),
        machine={"date": "today"},
        hardware={"name": "fake", "kind": "calibrated", "date": "", "notes": ""},
        notes=["a note"],
        command="llmcap validate --model tiny",
    )
    assert doc["comparisons"][0]["error"] == pytest.approx(-0.2)
    failed_row = next(r for r in doc["runs"] if r["status"] == "failed")
    assert failed_row["failure"] == {
        "rank": 1,
        "reason": "rank 1 failed: exited with status 3",
        "others": [],
    }
    md = report.markdown(doc)
    assert "rank 1 failed: exited with status 3" in md and "a note" in md
    assert "| step_time_s | ddp-fp32-n2 |  | analytic | 250.0 ms | 200.0 ms | -20.0 % |" in md
    cells = None  # every table row has as many cells as its table's header
    for line in md.splitlines():
        if not line.startswith("|"):
            cells = None
        elif cells is None:
            cells = line.count("|")
        else:
            assert line.count("|") == cells, line
    assert "| metric | engine | scope |" in md
    assert len(report.tables(doc)) == 3
    assert "steadiness" not in md  # one round: nothing to say


def test_report_flags_runs_whose_rounds_disagree():
    runs = _measured_runs()
    recs = []
    for i, (s, m) in enumerate(runs.values()):
        medians = (0.134, 0.198, 0.198) if i == 0 else (0.2, 0.21, 0.205)
        recs.append(Record(s, dataclasses.replace(m, round_medians_s=medians), wall_s=1.0))
    matrix = Matrix(TINY, strategies=("ddp",), links=(None,), steps=2, comm_pairs=2, rounds=3)
    doc = report.document(
        matrix, SuiteResult(recs), [], [], machine={}, hardware=None, notes=[], command="x"
    )
    assert report.round_spread((0.134, 0.198, 0.198)) == pytest.approx(0.064 / 0.198)
    md = report.markdown(doc)
    assert "1 of 4 runs have round medians more than 20% apart" in md
    assert md.count("**unsteady**") == 1
    assert "3 rounds over the whole matrix" in md


# ---- CLI input errors -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nproc", "0"], "nproc: '0' must be an integer >= 1"),
        (["--strategy", "zero9"], "strategy: 'zero9' must be one of ddp, fsdp"),
        (["--precision", "fp64"], "precision: 'fp64'"),
        (["--model", "huge"], "model: 'huge'"),
        (["--link-bandwidth", "fast"], "link-bandwidth: 'fast'"),
        (["--steps", "0"], "steps: 0"),
        (["--hardware", "no-such-box"], "hardware: 'no-such-box'"),
        (["--engines", "oracle"], "engines: 'oracle'"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args, message):
    res = CliRunner().invoke(app, ["validate", "--model", "tiny", *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("llmcap: error: ")
    assert message in lines[0] and "Traceback" not in res.output


def test_cli_link_bandwidth_needs_root(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    res = CliRunner().invoke(app, ["validate", "--model", "tiny", "--link-bandwidth", "1Gbit"])
    assert res.exit_code == 2
    assert "link-bandwidth: needs root" in res.output and "uid 1000" in res.output


# ---- docs splicing --------------------------------------------------------------------------
def test_splice_replaces_only_its_block():
    from validation.docs import splice

    page = "# Validation\n\nhand-written\n"
    once = splice(page, "cpu", "old table")
    assert once.startswith(page.rstrip()) and "old table" in once
    twice = splice(splice(once, "gpu-2025-01-01", "gpu table"), "cpu", "new table")
    assert "old table" not in twice and "new table" in twice and "gpu table" in twice
    assert twice.index("new table") < twice.index("gpu table")  # the cpu block kept its place
    assert twice.count("hand-written") == 1
    with pytest.raises(ValueError, match="unbalanced"):
        splice("<!-- BEGIN generated:cpu -->\n", "cpu", "x")


# ---- re-prediction from a stored report -----------------------------------------------------
def _stored_report(tmp_path):
    runs = _measured_runs()
    matrix = Matrix(TINY, strategies=("ddp",), links=(None,), steps=2, comm_pairs=2)
    recs = [Record(s, m, wall_s=1.0) for s, m in runs.values()]
    doc = report.document(
        matrix,
        SuiteResult(recs),
        [],
        [],
        machine={"date": "today", "cpu_cores": "2"},
        hardware=None,
        notes=[],
        command="llmcap validate --model tiny",
    )
    (tmp_path / "report.json").write_text(json.dumps(doc))
    return doc


def test_repredict_reads_measurements_back(tmp_path):
    from validation.validate import repredict

    doc = _stored_report(tmp_path)
    matrix, result = report.read_measurements(json.loads((tmp_path / "report.json").read_text()))
    assert [r.spec.run_id for r in result.records] == [r["run"] for r in doc["runs"]]
    assert result.records[1].measured.step == _measured_runs()["ddp-fp32-n2"][1].step
    assert matrix.model == TINY and matrix.steps == 2

    v = repredict(
        tmp_path,
        _any_profile(),
        engines=("analytic",),
        hardware_spec="cpu",
        predictor=lambda w, hw, e, options, devices_busy=None: _step(0.2, n=w.parallel.dp),
    )
    assert v.ok
    new = json.loads((tmp_path / "report.json").read_text())
    assert new["runs"] == doc["runs"]  # measurements untouched
    assert {c["metric"] for c in new["comparisons"]} >= {"step_time_s", "speedup"}
    assert new["command"] == "llmcap validate --model tiny && llmcap validate --repredict " + (
        f"{tmp_path} --hardware cpu"
    )
    assert "--repredict" in (tmp_path / "report.md").read_text()


def test_cli_repredict_with_real_engine_and_missing_report(tmp_path):
    _stored_report(tmp_path)
    args = [
        "validate",
        "--repredict",
        str(tmp_path),
        "--hardware",
        "cpu",
        "--engines",
        "analytic",
        "--json",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert any(c["engine"] == "analytic" for c in doc["comparisons"])
    res = CliRunner().invoke(app, ["validate", "--repredict", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "report.json does not exist" in res.output


def test_every_phase_a_rank_reports_is_known_to_the_launcher():
    import inspect
    import re

    from validation import launcher, worker

    reported = set(re.findall(r'beat\("(\w+)"\)', inspect.getsource(worker)))
    assert reported and reported <= set(launcher.PHASES)


def test_drifted_dtype_is_compared_but_not_headlined(tmp_path):
    """A pre-run re-probe that found fp32 drifted: the fp32 runs keep their comparisons, the
    error summary (the headline) leaves them out, and a note says which dtype and why."""
    from validation.validate import finish

    runs = _measured_runs()
    matrix = Matrix(TINY, strategies=("ddp",), precisions=("fp32", "bf16"), links=(None,))
    result = SuiteResult([Record(s, m, wall_s=1.0) for s, m in runs.values()])
    drift = [
        {"dtype": "fp32", "gemm": "g", "measured_s": 1.0, "profile_s": 3.0, "speed": 3.0,
         "drifted": True},
        {"dtype": "bf16", "gemm": "g", "measured_s": 1.0, "profile_s": 1.0, "speed": 1.0,
         "drifted": False},
    ]  # fmt: skip
    fake = lambda w, hw, e, options, devices_busy=None: _step(0.2, n=w.parallel.dp)  # noqa: E731
    v = finish(
        matrix, result, _any_profile(), {"cpu_cores": "2"}, out=tmp_path, command="c",
        engines=("analytic",), predictor=fake, drift=drift,
    )  # fmt: skip
    runs_compared = {c["run"] for c in v.doc["comparisons"]}
    assert {"ddp-fp32-n1", "ddp-bf16-n1"} <= runs_compared
    summary = v.doc["summary"]
    step = [s for s in summary if s["metric"] == "step_time_s" and s["scope"] == "all runs"]
    assert step and all(s["count"] == 2 for s in step)  # the two bf16 runs only
    assert any(n.startswith("profile drifted for fp32") for n in v.doc["notes"])
    assert v.doc["notes"][0].startswith("profile cpu: datasheet")
    assert v.doc["drift"][0]["dtype"] == "fp32"
