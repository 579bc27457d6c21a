"""Progress of a long step, on stderr: a Rich bar at a terminal, sparse plain lines elsewhere.

At a terminal the bar shows the stage, a count when there is one, and the elapsed time; it
disappears when the step ends. Off a terminal (CI logs, pipes, files) nothing is drawn at
first; a line ``llmcap <command>: <stage> (<done> of <total>, <s> s)`` is written when a stage
has been running for `QUIET_S` seconds and then at most every `EVERY_S` seconds, so short runs
and early errors print nothing but their result.
"""

from __future__ import annotations

import sys
import time
from typing import Any

QUIET_S = 5.0
"""Seconds before the first plain line off a terminal."""
EVERY_S = 15.0
"""Seconds between plain lines off a terminal."""


class StepProgress:
    """Context manager; `stage(text)` starts a stage, `update(done, total)` counts within it."""

    def __init__(self, command: str, enabled: bool = True, stream: Any = None) -> None:
        self.command = command
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar: Any = None
        self._task: Any = None
        self._stage = ""
        self._start = self._last = time.monotonic()
        self._printed = False

    def __enter__(self) -> StepProgress:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self._stage or self.command, total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def stage(self, text: str) -> None:
        """A new stage (its count unknown until `update`)."""
        if self._bar is None:
            self._plain(None, None)  # how long the stage that ends took, if it was long
        self._stage = text
        self._start = time.monotonic()
        if self._bar is not None:
            self._bar.reset(self._task, total=None, description=text)

    def update(self, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)
        else:
            self._plain(done, total)

    def _plain(self, done: int | None, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        wait = EVERY_S if self._printed else QUIET_S
        if now - self._start < QUIET_S or now - self._last < wait:
            return
        count = "" if done is None else f"{done:,}" + ("" if total is None else f" of {total:,}")
        where = ", ".join(x for x in (count, f"{now - self._start:.0f} s") if x)
        self.stream.write(f"llmcap {self.command}: {self._stage} ({where})\n")
        self.stream.flush()
        self._last, self._printed = now, True
