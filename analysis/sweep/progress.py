"""A progress line on stderr: redrawn in place on a terminal, one line per tenth elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 24
"""Bar width in characters."""


class Progress:
    def __init__(self, total: int, skipped: int = 0, stream: TextIO | None = None) -> None:
        self.total, self.skipped = total, skipped
        self.ok = self.failed = 0
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self._tenth = -1
        if skipped:
            self._say(f"sweep: {skipped} of {total} points already in the table, skipped")

    @property
    def done(self) -> int:
        return self.skipped + self.ok + self.failed

    def _say(self, text: str, end: str = "\n") -> None:
        self.stream.write(text + end)
        self.stream.flush()

    def line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * round(frac * WIDTH) + "." * (WIDTH - round(frac * WIDTH))
        took = time.monotonic() - self.t0
        ran = self.ok + self.failed
        left = self.total - self.done
        eta = f", ~{took / ran * left:.0f} s left" if ran and left else ""
        return (
            f"sweep [{bar}] {self.done}/{self.total}  ok {self.ok}  failed {self.failed}"
            f"  {took:.0f} s{eta}"
        )

    def update(self, status: str) -> None:
        if status == "ok":
            self.ok += 1
        else:
            self.failed += 1
        if self.tty:
            self._say("\r" + self.line(), end="")
            return
        tenth = int(10 * self.done / self.total) if self.total else 10
        if tenth != self._tenth:
            self._tenth = tenth
            self._say(self.line())

    def close(self) -> None:
        if self.tty:
            self._say("\r" + self.line())
