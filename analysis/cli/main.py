"""The `llmcap` command line: thin entry points that parse, call one library function, render.

Each sub-module registers its commands on `app`; errors in user input become one line on
stderr and exit code 2 (see `analysis.cli.common.run_guarded`).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="llmcap",
    help="Capacity planner for distributed LLM training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Registration order is the order in `llmcap --help`.
from analysis.cli import (  # noqa: E402
    accuracy,
    calibrate,
    hardware,
    plan,
    scale,
    simulate,
    validate,
)

for _mod in (simulate, scale, plan, hardware, calibrate, validate, accuracy):
    _mod.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
