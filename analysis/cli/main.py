"""The `llmcap` command line: thin entry points that parse, call one library function, render.

Each sub-module registers its commands on `app`; errors in user input become one line on
stderr and exit code 2 (see `analysis.cli.common.run_guarded`).
"""

from __future__ import annotations

import typer

from analysis.cli.parsing import OneLineErrors

app = typer.Typer(
    cls=OneLineErrors,  # parser errors as one `llmcap: error:` line, exit 2
    name="llmcap",
    help="Capacity planner for distributed LLM training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Registration order is the order in `llmcap --help`.
from importlib.metadata import entry_points  # noqa: E402

from analysis.cli import (  # noqa: E402
    accuracy,
    calibrate,
    cluster,
    hardware,
    models,
    plan,
    scale,
    simulate,
    stacks,
    sweep,
)
from analysis.cli.common import EXIT_BUG, OPTIONAL, print_bug  # noqa: E402
from analysis.planner.heap import keep_freed_heap  # noqa: E402

for _mod in (simulate, scale, sweep, plan, cluster, models, hardware, calibrate, accuracy, stacks):
    _mod.register(app)

# Plug-in commands (validation registers `llmcap validate` here).
for _ep in sorted(entry_points(group="llmcap.commands"), key=lambda e: e.name):
    _ep.load()(app)


def main() -> None:  # pragma: no cover - console entry point
    # the command owns its process: keep freed heap pages for the planner's searches
    # (`analysis.planner.heap`, glibc only); the library itself leaves malloc alone
    keep_freed_heap()
    try:
        app()
    except ModuleNotFoundError as exc:
        if exc.name not in OPTIONAL:
            print_bug(exc)
            raise SystemExit(EXIT_BUG) from None
        typer.echo(
            f"llmcap: error: {exc.name}: not installed; this command needs the "
            f"'{OPTIONAL[exc.name]}' extra (pip install -e '.[{OPTIONAL[exc.name]}]')",
            err=True,
        )
        raise SystemExit(2) from None
    except Exception as exc:
        print_bug(exc)
        raise SystemExit(EXIT_BUG) from None
