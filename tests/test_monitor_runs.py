"""The monitor on real 2-rank gloo runs of the tiny GPT: an injected straggler is named
within 10 steps, a clean run raises nothing, a link throttled mid-run raises the step-time
alert (root), and `llmcap monitor` replays a run into a timeline figure."""

import json
import os
import statistics
import subprocess

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from validation.gptconfig import PRESETS
from validation.launcher import launch
from validation.monitor.config import LinkDrop, MonitorSpec
from validation.monitor.thresholds import DEFAULTS, parse_thresholds
from validation.spec import RunSpec
from validation.suite import run_one

TINY = PRESETS["tiny"]
WITHIN = 10
"""Steps within which an alert must open after its cause starts (the issue's bound)."""


def test_injected_straggler_is_named_within_ten_steps_and_replayed(tmp_path):
    out = tmp_path / "val"
    args = ["validate", "--nproc", "2", "--strategy", "ddp", "--precision", "fp32",
            "--model", "tiny", "--steps", "10", "--warmup", "2", "--comm-pairs", "0",
            "--hardware", "none", "--inject", "slow-rank=1:2.0", "--json",
            "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout[res.stdout.index("{") :])
    strag = [a for a in doc["alerts"] if a["metric"] == "straggler"]
    assert [a["rank"] for a in strag] == [1]
    assert strag[0]["first_step"] + DEFAULTS.window - 1 < WITHIN  # opened by step 9
    assert strag[0]["measured"] > strag[0]["predicted"] * (1 + DEFAULTS.straggler)
    run = doc["runs"][0]
    assert run["alerts"] == strag
    per_run = json.loads((out / "runs" / run["run"] / "report.json").read_text())
    key = [(a["metric"], a["rank"], a["first_step"], a["last_step"]) for a in strag]
    assert [
        (a["metric"], a["rank"], a["first_step"], a["last_step"]) for a in per_run["alerts"]
    ] == key
    res = CliRunner().invoke(app, ["monitor", str(out)])
    assert res.exit_code == 0, res.output
    assert "straggler@r1" in res.output
    png = (out / "monitor.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_clean_run_raises_no_alert(tmp_path):
    # straggler at +200 %: two ranks of a ~10 ms step on a shared 2-vCPU host differ by more
    # than the default 25 % in some windows (a CI run at a slow spell of the host, 2026-12-03,
    # raised one); an injected straggler (the test above) or a broken monitor is far beyond
    mon = MonitorSpec(thresholds=parse_thresholds("straggler=+200%"))
    spec = RunSpec(TINY, "ddp", "fp32", 2, steps=10, warmup=2, comm_pairs=0,
                   monitor=mon)  # fmt: skip
    out = launch(spec, tmp_path)
    assert out.ok, out.failure
    assert out.alerts == []
    logs = [tmp_path / "monitor" / f"rank{r}.jsonl" for r in (0, 1)]
    # every step a rank runs: 2 warm-up, 10 timed, and the untimed step after each timed
    # step's in-run probes (validation.inrun)
    assert all(len(p.read_text().splitlines()) == 2 + 2 * 10 for p in logs)


ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or subprocess.run(["which", "tc"], capture_output=True).returncode,
    reason="needs root and iproute2 (ip, tc) for network namespaces",
)


@ROOT
@pytest.mark.root
def test_link_throttled_mid_run_raises_the_step_time_alert(tmp_path):
    fast = 1e9 / 8  # 1 Gbit/s per direction
    base = RunSpec(TINY, "ddp", "fp32", 2, steps=10, warmup=2, comm_pairs=0,
                   link_bytes_per_s=fast, monitor=MonitorSpec())  # fmt: skip
    clean = run_one(base, tmp_path / "clean")
    assert clean.ok, clean.failure
    steps = [t for r in clean.results.values() for t in r["step_times_s"]]
    predicted = statistics.median(steps)  # stands in for llmcap's prediction of this run
    # the drop makes a step ~8x slower (13 ms -> ~100 ms here); +200 % keeps the noise of
    # ~10 ms steps on a shared machine out (+50 % fired before the drop once in CI-like runs)
    mon = MonitorSpec(
        predicted_step_time_s=predicted, thresholds=parse_thresholds("step_time=+200%")
    )
    drop_at = 6
    # rank 0 holds at `drop_at` until the launcher has applied the drop, so however late the
    # launcher polls (every 0.2 s; a step takes ~10 ms), the drop lands at exactly that step
    spec = base.with_(monitor=mon, steps=30, link_drop=LinkDrop(50e6 / 8, drop_at))
    out = run_one(spec, tmp_path / "drop")
    assert out.ok, out.failure
    [event] = out.events
    assert (event["event"], event["bytes_per_s"], event["step"]) == ("link_drop", 50e6 / 8, 6)
    applied = event["applied_at_step"]
    assert applied == drop_at
    slow = [a for a in out.alerts if a["metric"] == "step_time"]
    assert slow, out.alerts
    opened_at = min(a["first_step"] for a in slow) + DEFAULTS.window - 1
    assert applied <= opened_at < applied + WITHIN
