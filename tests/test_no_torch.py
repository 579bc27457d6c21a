"""The planner side of llmcap runs without torch (the README's first quickstart command)."""

import subprocess
import sys

SCRIPT = """
import sys
sys.modules["torch"] = None  # any `import torch` now fails, as on a machine without it
from typer.testing import CliRunner
from analysis.cli.main import app
r = CliRunner().invoke(app, {args!r})
print(r.exit_code)
"""


def run(args: list[str]) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(args=args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip().splitlines()[-1])


def test_simulate_plan_and_hardware_need_no_torch():
    assert run(["simulate", "--json"]) == 0
    assert run(["hardware", "--json"]) == 0
    assert run(["simulate", "--engine", "des", "--gpus", "64", "--json"]) == 0
