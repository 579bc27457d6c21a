"""SIGINT/SIGTERM in the middle of a command's output leave no partial file; two calibrations
of the same target give one complete profile and one clear refusal.

The signal is real (`os.kill` of this process) and is sent from inside the write, at a chosen
point, so that no test sleeps or races: the commands run in-process (`CliRunner`), where
SIGINT raises KeyboardInterrupt and the CLI turns SIGTERM into the same
(`analysis.cli.parsing.terminate_as_interrupt`).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from hwprofiles import outputs
from hwprofiles.calibration import writer
from hwprofiles.calibration.store import FORMAT
from hwprofiles.outputs import exclusive

SMALL = ["--model", "gpt3-125m", "--gpus", "8", "--tp", "1", "--pp", "1", "--global-batch", "8"]
SIGNALS = [signal.SIGINT, signal.SIGTERM]


def _kill_on_write(monkeypatch: pytest.MonkeyPatch, signum: int, after: int = 1) -> None:
    """Send `signum` to this process in the middle of the `after`-th atomic file write: the
    data is in the temporary file, the rename has not happened."""
    real = outputs.os.fdopen
    calls = {"n": 0}

    def fdopen(fd: int, mode: str = "r", *a: Any, **k: Any) -> Any:
        calls["n"] += 1
        fh = real(fd, mode, *a, **k)
        if calls["n"] == after:
            os.kill(os.getpid(), signum)
        return fh

    monkeypatch.setattr(outputs.os, "fdopen", fdopen)


def _entries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("signum", SIGNALS)
def test_des_trace_interrupted(tmp_path, monkeypatch, signum):
    _kill_on_write(monkeypatch, signum)
    r = CliRunner().invoke(
        app, ["simulate", *SMALL, "--engine", "des", "--trace", str(tmp_path / "t.json")]
    )
    assert r.exit_code == 130
    assert _entries(tmp_path) == []  # no trace, no temporary


@pytest.mark.parametrize("signum", SIGNALS)
def test_plan_reports_interrupted(tmp_path, monkeypatch, signum):
    _kill_on_write(monkeypatch, signum, after=3)  # after two report files were written
    args = ["plan", "--model", "gpt3-125m", "--tokens", "1e9", "--hardware", "h100-sxm"]
    args += ["--gpus", "8", "--recheck", "0", "--no-progress", "--out", str(tmp_path / "r")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 130
    assert _entries(tmp_path) == []


def test_signal_during_the_final_renames_is_held_until_the_folder_is_complete(tmp_path):
    """Ctrl-C while a staged folder is renamed into place: the folder is complete first."""
    out = tmp_path / "r"
    out.mkdir()
    (out / "old.md").write_text("old")
    with pytest.raises(KeyboardInterrupt), outputs.staged_dir(out, "--out") as stage:
        for name in ("a.md", "b.md", "c.md"):
            (stage / name).write_text(name)
        real = outputs.os.replace

        def replace(src: Any, dst: Any) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # held back by the signal mask
            real(src, dst)

        outputs.os.replace = replace  # type: ignore[assignment]
        try:
            outputs.commit_dir(stage, out)
        finally:
            outputs.os.replace = real  # type: ignore[assignment]
    assert sorted(os.listdir(out)) == ["a.md", "b.md", "c.md", "old.md"]
    assert os.listdir(tmp_path) == ["r"]


SUMMARY = {"format": FORMAT, "name": "t", "level": "tiny"}
TABLES = {
    "memory": [
        {"op": "copy", "array_bytes": 4, "bytes": 8.0, "median_s": 1e-6, "min_s": 1e-6,
         "max_s": 1e-6, "count": 3, "noisy": False, "bytes_per_s": 8e6},
    ]
}  # fmt: skip


def _fake_calibration(monkeypatch: pytest.MonkeyPatch) -> None:
    """`calibrate` without measuring: the real writer, lock and CLI around fixed numbers."""
    from hwprofiles.calibration import run

    def fake(cfg: Any, out: Path, force: bool = False, progress: Any = None) -> dict:
        writer.write_profile(out, SUMMARY, TABLES, force)
        return SUMMARY

    monkeypatch.setattr(run, "calibrate", fake)


@pytest.mark.parametrize("signum", SIGNALS)
def test_calibrate_interrupted(tmp_path, monkeypatch, signum):
    _fake_calibration(monkeypatch)
    real = writer.write_tree

    def interrupted(root: Path, summary: dict, tables: dict) -> None:
        real(root, summary, tables)  # every file of the profile is in the staging folder
        os.kill(os.getpid(), signum)

    monkeypatch.setattr(writer, "write_tree", interrupted)
    r = CliRunner().invoke(app, ["calibrate", "--out", str(tmp_path / "p"), "--json"])
    assert r.exit_code == 130
    assert "no profile was written" in r.stderr
    assert _entries(tmp_path) == []


def test_two_calibrations_of_one_target(tmp_path, monkeypatch):
    """The second `calibrate --out SAME` (while the first holds the lock) is refused in one
    line and touches nothing; the first then writes a complete profile."""
    _fake_calibration(monkeypatch)
    target = tmp_path / "p"
    args = ["calibrate", "--out", str(target), "--json"]
    with exclusive(target, "--out"):  # the first calibration, measuring
        second = CliRunner().invoke(app, args)
        assert second.exit_code == 2
        assert second.stderr.strip().startswith("llmcap: error: --out: ")
        assert "being written by another llmcap" in second.stderr
        assert not target.exists()
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert (target / "profile.toml").is_file() and (target / "compute" / "memory.csv").is_file()
    assert _entries(tmp_path) == ["p", "p/compute", "p/compute/memory.csv", "p/profile.toml"]


@pytest.mark.parametrize("signum", SIGNALS)
def test_validate_interrupted(tmp_path, monkeypatch, signum):
    pytest.importorskip("torch")
    from validation import validate as v

    def fake(matrix: Any, hw: Any, *, out: Path, **kw: Any) -> Any:
        (out / "runs").mkdir()
        (out / "runs" / "spec.json").write_text("{}")  # a run's files, then the signal
        os.kill(os.getpid(), signum)
        raise AssertionError("not reached")

    monkeypatch.setattr(v, "validate", fake)
    monkeypatch.setattr(v, "resolve_hardware", lambda *a, **k: None)
    args = ["validate", "--nproc", "1", "--model", "tiny", "--precision", "fp32"]
    r = CliRunner().invoke(app, [*args, "--strategy", "ddp", "--out", str(tmp_path / "v")])
    assert r.exit_code == 130, r.output
    assert _entries(tmp_path) == []
