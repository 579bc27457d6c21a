"""Reading a user's input files: text, TOML and JSON, with `UserError` for every failure.

Each reader names the `field` the path came from (``config``, ``hardware``, ``model``), so a
missing, unreadable, binary or malformed file is one line, never an `OSError` traceback. JSON
is read strictly: ``NaN`` and ``Infinity`` (which Python's `json` accepts by default) are
refused, and nesting deep enough to exhaust the parser is a user error too.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from hwprofiles.errors import UserError

MAX_INPUT_BYTES = 16 * 2**20
"""Largest input file read (16 MiB): a run, hardware or config file is a few kB; a larger one
is a mistake (a checkpoint passed as --model), refused before it is read into memory."""


def read_text(path: str | os.PathLike[str], field: str, what: str = "a text file") -> str:
    """The UTF-8 text of a user's input file; `UserError` naming `field` if it cannot be read."""
    p = Path(path)
    try:
        if path_kind(p) == "file" and p.stat().st_size > MAX_INPUT_BYTES:
            raise UserError(field, str(p), f"is larger than {MAX_INPUT_BYTES >> 20} MiB")
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(field, str(p), "does not exist") from None
    except IsADirectoryError:
        raise UserError(field, str(p), f"is a directory, not {what}") from None
    except PermissionError:
        raise UserError(field, str(p), "is not readable (permission denied)") from None
    except UnicodeDecodeError:
        raise UserError(field, str(p), f"is not {what} (not UTF-8 text)") from None
    except OSError as exc:
        raise UserError(field, str(p), f"cannot be read ({exc.strerror or exc})") from None


def parse_toml(text: str, field: str, label: str) -> dict[str, Any]:
    """`text` parsed as TOML; `UserError` ``field: 'label' is not valid TOML (...)``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(field, label, f"is not valid TOML ({exc})") from None
    except RecursionError:
        raise UserError(field, label, "is nested too deeply to be a TOML input") from None


def read_toml(path: str | os.PathLike[str], field: str) -> dict[str, Any]:
    """A user's TOML file as a dict (see `read_text` and `parse_toml`)."""
    return parse_toml(read_text(path, field, "a TOML file"), field, str(path))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text: str, field: str, label: str) -> Any:
    """`text` parsed as strict JSON (no NaN/Infinity); `UserError` naming `field` otherwise."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError is a ValueError; so is _no_constant's
        raise UserError(field, label, f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise UserError(field, label, "is nested too deeply to be a JSON input") from None


def read_json(path: str | os.PathLike[str], field: str) -> Any:
    """A user's JSON file, parsed strictly (see `parse_json`)."""
    return parse_json(read_text(path, field, "a JSON file"), field, str(path))


def path_kind(path: str | os.PathLike[str]) -> str:
    """"dir", "file", "other" or "missing" for a path given by the user, never an error.

    `Path.is_dir` raises for a name longer than the file system allows, a NUL byte or a
    folder that cannot be searched; for a user's argument that is one more way of not naming
    an input file, so callers go on to their own one-line error (e.g. "not a preset or a
    file").
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return "missing"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "file" if stat.S_ISREG(st.st_mode) else "other"
