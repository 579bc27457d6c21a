"""`llmcap plan`: JSON on stdout, reports under --out, one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from analysis.cli.plan import parse_count, parse_gpus

BASE = [
    "plan",
    "--model",
    "llama-3-8b",
    "--tokens",
    "200B",
    "--seq-len",
    "2048",
    "--global-batch",
    "64",
    "--recheck",
    "0",
    "--no-progress",
]


def _run(*args):
    return CliRunner().invoke(app, [*BASE, *args])


def _one_line_error(res, *fragments):
    assert res.exit_code == 2, res.output
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("llmcap: error: "), res.stderr
    assert "Traceback" not in res.output
    for f in fragments:
        assert f in err[0]


def test_json_on_stdout(tmp_path):
    res = _run("--hardware", "h100-sxm", "--gpus", "8,16", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [c["gpus"] for c in doc["candidates"]] == [8, 16]
    assert doc["inputs"]["tokens"] == 2e11


def test_out_writes_the_reports(tmp_path):
    res = _run(
        "--hardware",
        "h100-sxm,a100-80gb",
        "--gpus",
        "8",
        "--deadline",
        "365",
        "--out",
        str(tmp_path),
    )
    assert res.exit_code == 0, res.output
    for name in ("report.md", "report.html", "candidates.csv", "plan.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert "Recommended" in res.stdout


def test_same_question_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    for d in ("a", "b"):
        res = _run("--hardware", "h100-sxm", "--gpus", "8,16", "--out", str(tmp_path / d))
        assert res.exit_code == 0, res.output
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*.*")}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.*")}
    assert len(a) == 8 and a == b


def test_unknown_hardware():
    _one_line_error(_run("--hardware", "h100-sxm,tpu9", "--gpus", "8"), "hardware", "tpu9")


def test_no_feasible_layout_says_memory(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "plan",
            "--model",
            "llama-3-70b",
            "--tokens",
            "1T",
            "--hardware",
            "h100-sxm",
            "--gpus",
            "8",
            "--no-progress",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    _one_line_error(res, "no feasible layout", "memory", "GiB")
    assert not (tmp_path / "o").exists(), "nothing written when nothing can be reported"


def test_no_feasible_layout_names_the_divisibility_rule_to_relax():
    # 296 GPUs (37 nodes): no stage count up to the 32 layers absorbs the prime 37, so dp is
    # always a multiple of 37, and 8 sequences never split into dp parts
    res = CliRunner().invoke(app, ["plan", "--model", "llama-3-8b", "--tokens", "1T",
                                   "--hardware", "h100-sxm", "--gpus", "296", "--no-progress",
                                   "--global-batch", "8"])  # fmt: skip
    _one_line_error(res, "divisibility", "global_batch", "fails alone")
    assert "gpus:" not in res.stderr


def test_unmet_deadline_names_the_closest():
    res = _run("--hardware", "h100-sxm", "--gpus", "8,16", "--deadline", "0.001")
    _one_line_error(res, "deadline", "closest: h100-sxm x 16 bf16")


def test_unmet_budget_names_the_closest():
    _one_line_error(
        _run("--hardware", "h100-sxm", "--gpus", "8", "--budget", "1"), "budget", "closest"
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--hardware", "h100-sxm", "--gpus", "8", "--max-gpus", "16"], "gpus"),
        (["--hardware", "h100-sxm", "--gpus", "8,x"], "gpus"),
        (["--hardware", "h100-sxm", "--gpus", "8", "--precision", "int4"], "precision"),
        (["--hardware", "h100-sxm", "--gpus", "8", "--pue", "0.5"], "pue"),
        (
            ["--hardware", "h100-sxm", "--gpus", "8", "--prices", "/nonexistent.toml"],
            "prices",
        ),
    ],
)
def test_bad_input(args, field):
    _one_line_error(_run(*args), field)


def test_parsers():
    assert parse_count("2T") == 2e12
    assert parse_count("1.5e12") == 1.5e12
    assert parse_count("500B") == 5e11
    with pytest.raises(ValueError, match="tokens"):
        parse_count("0")
    assert parse_gpus("64,8,64", None) == (8, 64)
    assert parse_gpus(None, 16) == (1, 2, 4, 8, 16)
