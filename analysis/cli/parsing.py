"""Option-parser errors in the project's one-line form, instead of click's usage boxes; and
SIGTERM/SIGHUP handled as Ctrl-C for every command.

``llmcap simulate --cp abc`` prints ``llmcap: error: --cp: 'abc' is not an integer`` and exits
with 2, like every other input error (`analysis.cli.common.fail`); ``--help`` shows the usage.
`OneLineErrors` is the click group class of the `llmcap` app (`typer.Typer(cls=...)`).
"""

from __future__ import annotations

import contextlib
import re
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from typer import exceptions as typer_exceptions
from typer._click import exceptions as click  # typer vendors click: its exception classes
from typer.core import TyperGroup

from hwprofiles.errors import show

_REWRITES = (
    (re.compile(r"is not a valid integer( range)?\.?$"), "is not an integer"),
    (re.compile(r"is not a valid float( range)?\.?$"), "is not a number"),
    (re.compile(r"is not a valid boolean\.?$"), "is not true or false"),
    (re.compile(r"\.$"), ""),
)


def _param_name(exc: click.ClickException) -> str | None:
    param = getattr(exc, "param", None)
    if param is not None:
        opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
        if opts:
            return opts[0]
        return (param.name or "").upper() or None
    return getattr(exc, "option_name", None)


_KINDS = {
    "int": "is not an integer",
    "float": "is not a number",
    "bool": "is not true or false",
}


def _pydantic_rule(exc: click.BadParameter) -> str | None:
    """``'abc' is not an integer`` from the pydantic error typer raises for a bad value."""
    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors):
        return None
    first = errors()[0]
    kind = str(first.get("type", "")).split("_")[0]
    rule = _KINDS.get(kind, str(first.get("msg", "is not valid")).lower())
    return f"{show(first.get('input'))} {rule}"


def one_line(exc: click.ClickException) -> str:
    """The parser's complaint as ``<flag>: <value> <rule>`` on one line."""
    name = _param_name(exc)
    if isinstance(exc, click.MissingParameter):
        rule = "missing (required)"
    elif isinstance(exc, click.NoSuchOption):
        name = exc.option_name
        close = ", ".join(exc.possibilities or ())
        rule = "no such option" + (f" (did you mean {close}?)" if close else "")
    elif isinstance(exc, click.BadParameter):
        rule = _pydantic_rule(exc) or exc.message
    else:
        rule = exc.format_message()
        prefix = f"Option '{name}' " if name else ""
        if prefix and rule.startswith(prefix):
            rule = rule[len(prefix) :]
        rule = rule[:1].lower() + rule[1:]
    for pattern, text in _REWRITES:
        rule = pattern.sub(text, rule.strip())
    line = f"{name}: {rule}" if name else rule
    return " ".join(line.split())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C while a command runs, so that staged outputs and
    worker processes are cleaned up (`hwprofiles.outputs.staged_dir`) instead of the process
    dying with temporaries on disk. Exit status 130, as for Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class OneLineErrors(TyperGroup):
    """A `TyperGroup` whose parser errors are one `llmcap: error:` line, exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            with terminate_as_interrupt():
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.NoArgsIsHelpError as exc:
            exc.show()  # `llmcap` alone: the help text
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"llmcap: error: {one_line(exc)}", err=True)
            sys.exit(2)
        except typer_exceptions.Abort:
            click.echo("llmcap: aborted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)
