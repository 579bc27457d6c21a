"""Shared CLI plumbing: one-line errors with exit code 2, bug reports, JSON; the output
helpers (`check_output`, `write_output`, `staged_dir`) are `hwprofiles.outputs`'s.

A `UserError` (bad input: field, value, rule) is printed as ``llmcap: error: <field>: <value>
<rule>`` with exit code 2 and no traceback. Any other exception is a bug in llmcap: it keeps
its traceback, followed by a line saying so, and exit code 1.
"""

from __future__ import annotations

import json
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from hwprofiles.errors import InputWarning, UserError
from hwprofiles.outputs import check_output, staged_dir, write_atomic, write_output

__all__ = [
    "UserError",
    "check_output",
    "dumps",
    "echo_json",
    "fail",
    "report_bug",
    "run_guarded",
    "staged_dir",
    "write_atomic",
    "write_output",
]

T = TypeVar("T")
EXIT_USER_ERROR = 2
EXIT_BUG = 1

OPTIONAL = {
    "torch": "torch",
    "pynvml": "torch",
    "distributed": "sweep",
    "dask": "sweep",
    "pyarrow": "sweep",
}
"""Optional modules -> the extra that installs them (pyproject optional-dependencies)."""


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `llmcap: error: <message>` on stderr and exit with `code`."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else "unknown error"
    typer.echo(f"llmcap: error: {first}", err=True)
    raise typer.Exit(code)


def report_bug(exc: BaseException) -> NoReturn:
    """Print the traceback of an unexpected exception and a line saying it is a bug; exit 1."""
    print_bug(exc)
    raise typer.Exit(EXIT_BUG)


def print_bug(exc: BaseException) -> None:
    """The traceback of `exc` and a line saying that it is a bug in llmcap, on stderr."""
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    typer.echo(
        f"llmcap: internal error ({type(exc).__name__}): this is a bug in llmcap, not in your "
        "input; please report it with the command line and the traceback above",
        err=True,
    )


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """`InputWarning`s as ``llmcap: warning:`` lines (once each); others as Python shows them."""
    seen = set()
    for w in caught:
        if issubclass(w.category, InputWarning):
            if str(w.message) not in seen:
                seen.add(str(w.message))
                typer.echo(f"llmcap: warning: {w.message}", err=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def run_guarded(fn: Callable[[], T]) -> T:
    """Call `fn`; a `UserError` becomes one line and exit 2, anything else is reported as a bug.

    `typer.Exit` (a command's own exit), `KeyboardInterrupt` and `SystemExit` pass through.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InputWarning)
            try:
                return fn()
            finally:
                _show_warnings(caught)
    except typer.Exit:
        raise
    except UserError as exc:
        fail(str(exc))
    except ModuleNotFoundError as exc:
        if exc.name in OPTIONAL:
            raise  # `main` names the extra to install
        report_bug(exc)
    except Exception as exc:
        report_bug(exc)


def dumps(obj: Any) -> str:
    """Deterministic JSON: sorted keys off (contract order), fixed separators, newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def echo_json(obj: Any) -> None:
    sys.stdout.write(dumps(obj))
