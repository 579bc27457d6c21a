"""Every command's human output fits 80 columns with no number (nor word) cut off.

Rendered with a fixed terminal width (COLUMNS=80): no line longer than 80 characters and no
ellipsis, which is how Rich marks text it truncates.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = {
    "simulate": ["simulate"],
    "simulate-8b": ["simulate", "--model", "llama-3-8b", "--gpus", "8", "--tokens", "1T"],
    "scale": ["scale", "--model", "gpt3-1.3b", "--gpus", "8,16,32,64", "--scale-out", "100,400"],
    "scale-best": ["scale", "--model", "gpt3-1.3b", "--gpus", "8,16", "--best-layout"],
    "plan": [
        "plan",
        "--model",
        "llama-3-8b",
        "--tokens",
        "200B",
        "--hardware",
        "h100-sxm,mi300x",
        "--gpus",
        "8,16",
        "--precision",
        "bf16,fp8",
        "--deadline",
        "60",
        "--recheck",
        "0",
        "--no-progress",
    ],
    "plan-own": [
        "plan",
        "--model",
        "llama-3-8b",
        "--tokens",
        "200B",
        "--hardware",
        "h100-sxm,b200",
        "--gpus",
        "8,16",
        "--deadline",
        "60",
        "--own",
        "--recheck",
        "0",
        "--no-progress",
    ],
    "models": ["models"],
    "models-one": ["models", "llama-3.1-70b"],
    "hardware": ["hardware"],
    "hardware-one": ["hardware", "h100-sxm"],
    "accuracy": ["accuracy"],
    "stacks": ["stacks"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_fits_80_columns_without_cutting(name):
    r = CliRunner().invoke(app, COMMANDS[name], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines, "no output"
    too_long = [ln for ln in lines if len(ln) > 80]
    assert not too_long, too_long[0]
    assert "…" not in r.stdout, next(ln for ln in lines if "…" in ln)


def test_plan_drops_columns_rather_than_cutting_numbers():
    r = CliRunner().invoke(app, COMMANDS["plan"], env={"COLUMNS": "44"})
    assert r.exit_code == 0, r.output
    assert max(len(ln) for ln in r.stdout.splitlines()) <= 44
    assert "left out" in r.stdout and "…" not in r.stdout


def _assert_fits(text: str) -> None:
    lines = text.splitlines()
    assert lines, "no output"
    too_long = [ln for ln in lines if len(ln) > 80]
    assert not too_long, too_long[0]
    assert "…" not in text, next(ln for ln in lines if "…" in ln)


JOBMIX = ROOT / "examples" / "jobmix.toml"


@pytest.mark.parametrize("add", [[], ["--add", "b200:64,h100-sxm:128", "--target-delay", "0.05"]])
def test_cluster_fits_80_columns(add):
    args = ["cluster", "--jobs", str(JOBMIX), "--hardware", "h100-sxm:512", "--days", "1"]
    r = CliRunner().invoke(app, [*args, "--no-figures", *add], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    _assert_fits(r.output)
    assert "utilisation" in r.output and ("$" in r.output)


def test_sweep_fits_80_columns(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('[sweep]\nengine = "analytic"\n[axes]\ngpus = [512, 1024]\n')
    out = tmp_path / "out"
    args = ["sweep", str(grid), "--out", str(out), "--executor", "local", "--no-progress"]
    r = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert "2 points" in r.output
    # the table's path is the one thing that may be longer than 80: it stands on its own line
    _assert_fits("\n".join(ln for ln in r.output.splitlines() if not ln.startswith("table: ")))


def _monitor_logs(root: Path) -> None:
    """A finished validation's monitor logs: two runs, one with five alerts over two ranks."""
    alerts = [("straggler", 1), ("step_time", 0), ("step_time", 1), ("memory", 0), ("power", 1)]
    for run, ranks, fired in [
        ("ddp-bf16-n2-200mbit/round2", 2, alerts),
        ("fsdp-fp32-n1-loopback", 1, []),
    ]:
        for rank in range(ranks):
            log = root / "runs" / run / "monitor" / f"rank{rank}.jsonl"
            log.parent.mkdir(parents=True, exist_ok=True)
            recs = [
                {
                    "type": "step",
                    "step": i,
                    "phase": "warmup" if i < 2 else "timed",
                    "step_time_s": 0.1234 + 0.01 * rank,
                    "predicted_step_time_s": 0.11,
                    "compute_s": 0.05,
                }
                for i in range(6)
            ]
            recs += [
                {"type": "alert", "metric": m, "rank": rank, "first_step": 3, "last_step": 5}
                for m, r in fired
                if r == rank
            ]
            log.write_text("".join(json.dumps(x) + "\n" for x in recs))


def test_monitor_fits_80_columns_and_keeps_every_alert(tmp_path):
    _monitor_logs(tmp_path)
    r = CliRunner().invoke(app, ["monitor", str(tmp_path)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    _assert_fits("\n".join(ln for ln in r.output.splitlines() if "timeline written" not in ln))
    for name in ("straggler@r1", "step_time@r0", "step_time@r1", "memory@r0", "power@r1"):
        assert name in r.output, name
    assert "128.4" in r.output and "+17%" in r.output


def test_validate_report_fits_80_columns(monkeypatch, capsys):
    from validation.cli import _render

    doc = json.loads((ROOT / "docs" / "validation" / "cpu" / "report.json").read_text())
    monkeypatch.setenv("COLUMNS", "80")
    _render(doc, False, None)
    out = capsys.readouterr().out
    _assert_fits(out)
    assert "left out; see report.md" in out  # what was dropped is said
    for figure in ("248.1 ms [215.4 ms, 268.1 ms]", "8.4 %", "-4.4 %", "117.2 MB/s"):
        assert figure in out, figure


def test_calibrate_summary_fits_80_columns(monkeypatch, capsys):
    from rich.console import Console

    from analysis.cli.calibrate import summary_table

    summary = {
        "compute": {"peak_flops": {"fp32": 1.234e11, "bf16": 9.87e10}},
        "memory": {"bandwidth_bytes_per_s": 1.234e10},
        "network": {
            "fits": [
                {
                    "collective": "all_reduce",
                    "backend": "gloo",
                    "world_size": 2,
                    "alpha_s": 1.234e-4,
                    "max_busbw_bytes_per_s": 3.456e9,
                }
            ]
        },
        "power": {"kind": "cpu-rapl", "idle_w": 12.3, "tdp_w": 65.0},
        "noise": {"noisy": 3, "measurements": 412},
        "stability": {
            "verdict": "unsteady",
            "reasons": [
                "3 of 12 kernels did not settle",
                "load average 9.87 at the start on 2 cores",
                "load average 10.2 at the end on 2 cores",
            ],
        },
    }
    monkeypatch.setenv("COLUMNS", "80")
    where = Path.home() / ".llmcap" / "profiles" / "a-rather-long-host-name-of-a-machine-cpu"
    Console().print(summary_table(summary, where))
    out = capsys.readouterr().out
    _assert_fits(out)
    words = out.replace("│", " ").split()
    for figure in ("123", "0.0987", "12.3", "3.46", "412", "10.2", "a-rather-long-host-name"):
        assert any(figure in w for w in words), figure


@pytest.mark.parametrize("width", [80, 72, 60])
def test_fit_table_wraps_text_without_cropping_it(width):
    """Rich, left to size a too-wide table, crops wrapped text silently; fit_table must not."""
    from rich.console import Console

    from analysis.report.fit import Col, fit_table

    cols = [Col("run", "left", 9, wrap=True), Col("ranks", priority=5)]
    cols += [Col("median ms", priority=8), Col("error", priority=6)]
    cols += [Col("alerts", "left", 4, wrap=True)]
    alerts = "memory@r0, power@r1, step_time@r0, step_time@r1, straggler@r1"
    rows = [["ddp-bf16-n2-200mbit/round2", "2", "128.4", "+17%", alerts]]
    con = Console(width=width, file=io.StringIO())
    table, dropped = fit_table(cols, rows, con)
    con.print(table)
    text = con.file.getvalue()
    assert max(len(ln) for ln in text.splitlines()) <= width
    words = text.split()
    for w in ["ddp-bf16-n2-200mbit/round2", "128.4", "+17%", *alerts.split()]:
        assert w in words or any(c.header == "alerts" for c in cols if c.header in dropped), w
