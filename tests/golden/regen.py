"""Regenerate the golden JSON files after an intended model change: python tests/golden/regen.py"""

import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_cli_simulate import SCENARIOS

from analysis.cli.main import app

for name, args in SCENARIOS.items():
    r = CliRunner().invoke(app, ["simulate", *args, "--json"])
    assert r.exit_code == 0, r.output
    (Path(__file__).parent / f"{name}.json").write_text(r.stdout)
    print("wrote", name)
