"""The one output helper: targets checked before the work, files and folders written atomically,
a lock for concurrent writers; and parser errors as one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from hwprofiles.errors import UserError
from hwprofiles.outputs import check_output, exclusive, staged_dir, write_output


@pytest.mark.parametrize(
    "target, kind, rule",
    [
        ("dir", "file", "is a directory; give a file name"),
        ("file", "dir", "exists and is not a directory"),
        ("file/x", "file", "is not a directory"),
        ("a" * 256, "file", "longer than 255 bytes"),
        ("/proc/x", "file", "is under /proc"),
        ("/sys/x/y", "dir", "is under /sys"),
        ("", "file", "is empty"),
    ],
)
def test_check_output_refuses_with_the_flag_named(tmp_path, target, kind, rule):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    path = target if target.startswith("/") or not target else tmp_path / target
    with pytest.raises(UserError, match=rule) as info:
        check_output(path, "--out", kind)
    assert info.value.field == "--out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]  # nothing created


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_output_refuses_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    with pytest.raises(UserError, match="read-only"):
        check_output(ro / "deeper" / "t.json", "--trace")


def test_missing_folders_are_created_and_the_file_written_whole(tmp_path):
    out = write_output(tmp_path / "a" / "b" / "r.md", "hello", "--out")
    assert out.read_text() == "hello"
    assert os.listdir(out.parent) == ["r.md"]  # no temporary left


def test_staged_dir_is_all_or_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt), staged_dir(tmp_path / "new", "--out") as tmp:
        (tmp / "half.md").write_text("x")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    with staged_dir(tmp_path / "new", "--out") as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "f").write_text("1")
    assert (tmp_path / "new" / "sub" / "f").read_text() == "1"
    with staged_dir(tmp_path / "new", "--out") as tmp:  # into an existing folder: merged
        (tmp / "g").write_text("2")
    assert sorted(os.listdir(tmp_path / "new")) == ["g", "sub"]
    assert os.listdir(tmp_path) == ["new"]


def test_exclusive_refuses_a_second_writer_and_cleans_up(tmp_path):
    target = tmp_path / "profile"
    pattern = r"being written by another llmcap \(pid \d+\)"
    with exclusive(target, "--out"), pytest.raises(UserError, match=pattern):  # noqa: SIM117
        with exclusive(target, "--out"):
            pass
    assert os.listdir(tmp_path) == []
    with exclusive(target, "--out"):  # free again
        pass


@pytest.mark.parametrize(
    "args, line",
    [
        (["simulate", "--cp", "abc"], "llmcap: error: --cp: 'abc' is not an integer"),
        (["simulate", "--jitter", "x"], "llmcap: error: --jitter: 'x' is not a number"),
        (["hardware", "--json=1"], "llmcap: error: --json: does not take a value"),
        (["simulate", "--qqqqqqq"], "llmcap: error: --qqqqqqq: no such option"),
        (["scale"], "llmcap: error: --gpus: missing (required)"),
    ],
)
def test_parser_errors_are_one_line_exit_2(args, line):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert r.output.strip() == line


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "--engine", "des", "--trace", "{d}"],
        ["simulate", "--engine", "des", "--trace", "/proc/t.json"],
        ["accuracy", "--out", "{d}"],
        ["plan", "--model", "gpt3-125m", "--tokens", "1e9", "--hardware", "h100-sxm", "--out",
         "{f}"],
        ["scale", "--gpus", "8", "--plot", "{d}/x.gif"],
    ],
)  # fmt: skip
def test_commands_refuse_bad_outputs_before_working(tmp_path, args):
    (tmp_path / "f").write_text("keep")
    args = [a.format(d=tmp_path, f=tmp_path / "f") for a in args]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert r.output.startswith("llmcap: error: --")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["f"]
