"""`UserError`: bad input from outside (a flag, a run file, a hardware file, a config.json).

One exception type for every package (it lives here, in the lowest one, so that hwprofiles,
simulator, analysis and validation all raise the same thing). It carries the field, the value
and the rule it broke, and renders as one line::

    gpus: 'x' must be a whole number >= 1
    hardware: 'h1000' is not a preset or a file (known: a100-sxm, ...)

The command line prints it as ``llmcap: error: <that line>`` with exit code 2 and no traceback
(`analysis.cli.common.run_guarded`). Any other exception is a bug in llmcap and keeps its
traceback. `UserError` subclasses `ValueError`, so code (and tests) that catch `ValueError`
still catch it.
"""

from __future__ import annotations

import os
from typing import Any

NO_VALUE: Any = type("NoValue", (), {"__repr__": lambda self: "<no value>"})()
"""Marker: the error is about a field as a whole (missing, conflicting), not one value."""

_MAX_VALUE_CHARS = 80
"""A value longer than this (a fuzzer's 10 kB string) is cut in the message."""


def show(value: Any) -> str:
    """`repr(value)`, shortened to one line of at most `_MAX_VALUE_CHARS` characters."""
    text = repr(os.fspath(value) if isinstance(value, os.PathLike) else value)
    text = text.replace("\n", "\\n")
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


class UserError(ValueError):
    """Bad input: `field` (a flag, ``file.key``) had `value`, which breaks `rule`.

    ``UserError("gpus", "x", "must be a whole number >= 1")`` reads
    ``gpus: 'x' must be a whole number >= 1``. Without a value (``UserError("config",
    rule="needs [model]")``) it reads ``config: needs [model]``. A single argument is taken as a
    whole message ``"field: rest"`` (the form older code raised as ValueError).
    """

    def __init__(self, field: str, value: Any = NO_VALUE, rule: str = "") -> None:
        if value is NO_VALUE and not rule and ": " in field:
            field, rule = field.split(": ", 1)
        self.field, self.value, self.rule = field, value, rule
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The one-line message (no ``llmcap: error:`` prefix)."""
        if self.value is NO_VALUE and not self.rule:
            return self.field.replace("\n", " ")
        parts = [f"{self.field}:"]
        if self.value is not NO_VALUE:
            parts.append(show(self.value))
        if self.rule:
            parts.append(self.rule)
        return " ".join(parts).replace("\n", " ")

    def __str__(self) -> str:
        return self.message


class InputWarning(UserWarning):
    """A value that is allowed but absurd (10⁹ GPUs): the CLI prints ``llmcap: warning: ...``.

    Raised with `warnings.warn(InputWarning(field, value, rule))`; the arguments read as
    `UserError`'s.
    """

    def __init__(self, field: str, value: Any = NO_VALUE, rule: str = "") -> None:
        self.error = UserError(field, value, rule)
        super().__init__(self.error.message)

    def __str__(self) -> str:
        return self.error.message
