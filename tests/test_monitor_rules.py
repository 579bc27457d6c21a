"""The monitor's parts without torch: thresholds, alert rules, the step monitor's log and
its Prometheus endpoint, injections, the cross-rank watch on synthetic logs, CLI errors."""

import json
import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from analysis.cli.main import app
from hwprofiles.errors import UserError
from validation.monitor import Exporter, Prediction, StepMonitor, parse_thresholds, read_log
from validation.monitor.config import LinkDrop, parse_inject
from validation.monitor.rank import log_path
from validation.monitor.rules import LevelRule, WindowRule, straggler_ranks
from validation.monitor.thresholds import DEFAULTS, describe
from validation.monitor.watch import LiveWatch


def test_thresholds_parse_and_keep_defaults():
    t = parse_thresholds("step_time=+20%,memory=80%,hang=5s,window=3")
    assert (t.step_time, t.memory, t.hang_s, t.window) == (0.2, 0.8, 5.0, 3)
    assert t.power == DEFAULTS.power and t.straggler == DEFAULTS.straggler
    assert "step_time=+20%" in describe(t) and "hang=5s" in describe(t)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("speed=+10%", "--alert"),
        ("step_time=fast", "--alert step_time"),
        ("step_time=nan%", "--alert step_time"),
        ("memory=150%", "--alert memory"),
        ("window=0", "--alert window"),
        ("hang=-1s", "--alert hang"),
        ("step_time", "--alert"),
    ],
)
def test_bad_thresholds_name_their_field(text, field):
    with pytest.raises(UserError) as e:
        parse_thresholds(text)
    assert e.value.field == field and "\n" not in str(e.value)


def test_one_noisy_step_does_not_fire_but_a_sustained_deviation_does():
    rule = WindowRule("r", "step_time", 0, reference=1.0, rel=0.15, window=5)
    fired = [rule.update(i, v) for i, v in enumerate([1.0, 1.0, 3.0, 1.0, 1.0, 1.0])]
    assert not any(fired)  # one step at 3x: the window's median stays at 1.0
    opened = [rule.update(6 + i, 1.5) for i in range(5)]
    alert = next(a for a in opened if a is not None)
    assert opened.index(alert) == 2  # the third slow step makes the median slow
    # opened at step 8 over steps 4-8, kept open (last step moving on) through step 10
    assert (alert.first_step, alert.last_step) == (4, 10) and alert.measured == 1.5
    rule.update(11, 1.5)
    assert alert.last_step == 11  # stays open while it holds
    assert len(rule.values) == 5


def test_without_a_prediction_the_rule_never_fires():
    rule = WindowRule("r", "power", 0, reference=None, rel=0.1, window=2)
    assert all(rule.update(i, 1e9) is None for i in range(10))


def test_memory_fires_over_its_fraction_of_capacity():
    rule = LevelRule("r", "memory", 1, capacity=100.0, fraction=0.9)
    assert rule.update(0, 90.0) is None
    alert = rule.update(1, 95.0)
    assert alert is not None and alert.rank == 1 and alert.threshold == 0.9
    assert rule.update(2, 99.0) is None and alert.last_step == 2 and alert.measured == 99.0


def test_straggler_is_the_rank_slower_than_the_others():
    per_rank = {0: [1.0] * 5, 1: [1.0, 2.0, 2.0, 2.0, 2.0], 2: [1.1] * 5}
    assert straggler_ranks(per_rank, 0.25, 5) == [1]
    assert straggler_ranks({0: [1.0] * 5, 1: [1.2] * 5}, 0.25, 5) == []
    assert straggler_ranks({0: [1.0] * 5, 1: [3.0] * 4}, 0.25, 5) == []  # window not full


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_step_monitor_logs_alerts_and_serves_prometheus(tmp_path):
    port = _free_port()
    exporter = Exporter("run-a", 0)
    exporter.serve(port)
    seen = []
    mon = StepMonitor("run-a", 0, Prediction(step_time_s=0.1, memory_capacity_bytes=1e9),
                      parse_thresholds("window=3"), tmp_path / "m.jsonl", exporter,
                      seen.append)  # fmt: skip
    try:
        for i in range(6):
            mon.record(0.1 if i < 2 else 0.2, tokens=1000, compute_s=0.03,
                       peak_memory_bytes=5e8)  # fmt: skip
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    finally:
        mon.close()
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    step = families["llmcap_step_time_seconds"].samples[0]
    assert step.labels == {"run": "run-a", "rank": "0"} and step.value == pytest.approx(0.2)
    assert families["llmcap_predicted_step_time_seconds"].samples[0].value == 0.1
    assert families["llmcap_tokens_per_second"].samples[0].value == pytest.approx(5000)
    assert families["llmcap_peak_memory_bytes"].samples[0].value == 5e8
    assert [s.value for s in families["llmcap_steps"].samples if s.name.endswith("_total")] == [6]
    alerts = [s for s in families["llmcap_alerts"].samples if s.name.endswith("_total")]
    assert [(s.labels["metric"], s.value) for s in alerts] == [("step_time", 1.0)]
    recs = read_log(tmp_path / "m.jsonl")
    assert [r["type"] for r in recs].count("step") == 6
    assert [r["metric"] for r in recs if r["type"] == "alert"] == ["step_time"]
    # the median of steps 1-3 is the first over: opened at step 3, open until step 5
    assert seen and seen[0].first_step == 1 and seen[0].last_step == 5


def test_a_failing_monitor_never_raises_into_the_loop(tmp_path):
    def explode(alert):
        raise RuntimeError("boom")

    mon = StepMonitor("r", 0, Prediction(step_time_s=0.1), parse_thresholds("window=1"),
                      tmp_path / "m.jsonl", on_alert=explode)  # fmt: skip
    assert mon.record(1.0) == []  # the callback raised: swallowed, monitor goes quiet
    assert mon.failed and mon.record(1.0) == []
    mon.close()
    assert read_log(tmp_path / "m.jsonl")[-1]["type"] == "monitor_error"


def test_injections_parse_and_refuse_ranks_that_do_not_exist():
    inj = parse_inject("slow-rank=1:2.0@step3,hang-rank=0@step20,link-drop=200Mbit@step10", 2)
    assert inj.slow.rank == 1 and inj.slow.factor == 2.0 and inj.slow.step == 3
    assert inj.hang == (0, 20)
    assert inj.link_drop == LinkDrop(25e6, 10)
    for bad, field in [
        ("slow-rank=2:2.0", "--inject slow-rank"),
        ("slow-rank=1:0.5", "--inject slow-rank"),
        ("hang-rank=1", "--inject hang-rank"),
        ("link-drop=fast@step1", "link-bandwidth"),
        ("explode=1", "--inject"),
    ]:
        with pytest.raises(UserError) as e:
            parse_inject(bad, 2)
        assert e.value.field.startswith(field), bad


def _write_steps(run_dir: Path, rank: int, forward: list[float]) -> None:
    path = log_path(run_dir, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        for i, f in enumerate(forward):
            fh.write(json.dumps({"type": "step", "step": i, "compute_s": f}) + "\n")


def test_live_watch_finds_the_straggler_the_hang_and_drops_the_link(tmp_path):
    seen, rates = [], []
    w = LiveWatch("run", tmp_path, 2, parse_thresholds("window=3,hang=5s"), 0.1, seen.append,
                  LinkDrop(1e6, 4), rates.append)  # fmt: skip
    _write_steps(tmp_path, 0, [1.0] * 4)
    _write_steps(tmp_path, 1, [1.0, 2.0, 2.0, 2.0])
    w.poll({0: (2, 3), 1: (2, 3)}, stalled_s=0.0)
    # judged step by step: the window [1, 2, 2] of step 2 already fires
    assert [(a.metric, a.rank, a.first_step, a.last_step) for a in seen] == [("straggler", 1, 0, 3)]
    assert rates == []  # step 3 < drop step 4
    w.poll({0: (2, 4), 1: (2, 3)}, stalled_s=6.0)
    assert rates == [1e6] and w.events[0]["event"] == "link_drop"
    assert [(a.metric, a.rank, a.first_step) for a in seen[1:]] == [("hang", 1, 3)]
    w.poll({0: (2, 4), 1: (2, 3)}, stalled_s=9.0)
    assert len(seen) == 2  # each alert once


def test_straggler_opens_at_the_same_step_however_late_the_logs_are_read(tmp_path):
    forward = {0: [1.0] * 8, 1: [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]}
    late, live = tmp_path / "late", tmp_path / "live"
    for r, f in forward.items():
        _write_steps(late, r, f)
    once = LiveWatch("run", late, 2, parse_thresholds("window=3"))
    once.poll({}, 0.0)  # everything read in one poll, after the run
    often = LiveWatch("run", live, 2, parse_thresholds("window=3"))
    path = {r: log_path(live, r) for r in forward}
    path[0].parent.mkdir(parents=True)
    for i in range(8):  # one poll per step, rank 1 a step behind rank 0
        for r, f in forward.items():
            with open(path[r], "a") as fh:
                fh.write(json.dumps({"type": "step", "step": i, "compute_s": f[i]}) + "\n")
            often.poll({}, 0.0)
    key = [(a.rank, a.first_step, a.last_step) for a in once.alerts]
    assert (
        key == [(a.rank, a.first_step, a.last_step) for a in often.alerts] == [(1, 2, 7)]
    )  # steps 2-4: [1, 2, 2]


def test_torn_last_line_waits_for_the_rest(tmp_path):
    w = LiveWatch("run", tmp_path, 1, DEFAULTS)
    path = log_path(tmp_path, 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"type": "step", "step": 0, "compute_s": 1.0}) + '\n{"type": "st')
    w.poll({}, 0.0)
    assert w.forward[0] == [1.0]
    with open(path, "a") as fh:
        fh.write('ep", "step": 1, "compute_s": 2.0}\n')
    w.poll({}, 0.0)
    assert w.forward[0] == [1.0, 2.0]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--alert", "speed=+1%"], "--alert"),
        (["--inject", "slow-rank=3:2"], "--inject slow-rank"),
        (["--inject", "link-drop=1Mbit@step2"], "--inject link-drop"),
    ],
)
def test_validate_refuses_bad_monitor_input_in_one_line(args, field):
    res = CliRunner().invoke(app, ["validate", "--nproc", "1,2", "--hardware", "none", *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"error: {field}" in lines[0]


def test_validate_refuses_a_busy_metrics_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = CliRunner().invoke(
            app, ["validate", "--nproc", "1", "--hardware", "none", "--metrics-port", str(port)]
        )
    assert res.exit_code == 2 and "--metrics-port" in res.output and "in use" in res.output


def test_monitor_command_needs_logs(tmp_path):
    res = CliRunner().invoke(app, ["monitor", str(tmp_path)])
    assert res.exit_code == 2 and "no monitor logs" in res.output
