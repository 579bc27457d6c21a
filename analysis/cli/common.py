"""Shared CLI plumbing: one-line errors with exit code 2, atomic writes, JSON output."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

T = TypeVar("T")


class UserError(ValueError):
    """Bad input from the user: reported as one line, exit code 2."""


def fail(message: str, code: int = 2) -> None:
    """Print `llmcap: error: <message>` on stderr and exit with `code`."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else "unknown error"
    typer.echo(f"llmcap: error: {first}", err=True)
    raise typer.Exit(code)


def run_guarded(fn: Callable[[], T]) -> T:
    """Call `fn`; turn ValueError/FileNotFoundError/KeyError into a one-line error, exit 2."""
    try:
        return fn()
    except typer.Exit:
        raise
    except (ValueError, FileNotFoundError, KeyError, IsADirectoryError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        fail(str(msg))
        raise  # unreachable


def dumps(obj: Any) -> str:
    """Deterministic JSON: sorted keys off (contract order), fixed separators, newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write `data` to `path` via a temporary file in the same folder and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def echo_json(obj: Any) -> None:
    sys.stdout.write(dumps(obj))
