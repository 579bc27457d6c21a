"""Every command's human output fits 80 columns with no number (nor word) cut off.

Rendered with a fixed terminal width (COLUMNS=80): no line longer than 80 characters and no
ellipsis, which is how Rich marks text it truncates.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app

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
