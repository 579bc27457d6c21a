"""Alert rules: pure state machines fed one step at a time (no I/O, no clocks).

A rule fires when a condition holds for the median of the last `window` steps, so a single
noisy step never fires, and the alert stays open (its `last_step` moving on) while the
condition keeps holding; a new alert opens if it clears and comes back.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Alert:
    """One alert: `metric` on `rank` of `run` went past `threshold` from `first_step` to
    `last_step` (steps counted from 0, warm-up included); `measured` is the window's median
    (or the peak, for memory), `predicted` the value it is set against."""

    run: str
    metric: str
    rank: int
    first_step: int
    last_step: int
    measured: float
    predicted: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One line for a terminal."""
        return (
            f"ALERT {self.metric} {self.run} rank {self.rank} steps {self.first_step}-"
            f"{self.last_step}: measured {self.measured:.4g} vs {self.predicted:.4g} "
            f"(threshold {self.threshold:g})"
        )


class WindowRule:
    """`metric` fires while median(last `window` values) > `reference` x (1 + `rel`).

    `reference` None: no prediction to compare with, the rule never fires."""

    def __init__(
        self, run: str, metric: str, rank: int, reference: float | None, rel: float, window: int
    ) -> None:
        self.run, self.metric, self.rank = run, metric, rank
        self.reference, self.rel, self.window = reference, rel, window
        self.values: deque[float] = deque(maxlen=window)
        self.open: Alert | None = None

    def update(self, step: int, value: float) -> Alert | None:
        """Feed one step; returns the alert when it newly opens (None otherwise)."""
        self.values.append(value)
        if self.reference is None or self.reference <= 0 or len(self.values) < self.window:
            return None
        med = statistics.median(self.values)
        if med > self.reference * (1.0 + self.rel):
            if self.open is not None:
                self.open.last_step = step
                self.open.measured = max(self.open.measured, med)
                return None
            self.open = Alert(
                self.run, self.metric, self.rank, step - self.window + 1, step, med,
                self.reference, self.rel,
            )  # fmt: skip
            return self.open
        self.open = None
        return None


class LevelRule:
    """`metric` fires when a value exceeds `fraction` x `capacity` (memory: no window, a
    peak is already a maximum)."""

    def __init__(
        self, run: str, metric: str, rank: int, capacity: float | None, fraction: float
    ) -> None:
        self.run, self.metric, self.rank = run, metric, rank
        self.capacity, self.fraction = capacity, fraction
        self.open: Alert | None = None

    def update(self, step: int, value: float) -> Alert | None:
        if not self.capacity or value <= self.capacity * self.fraction:
            self.open = None
            return None
        if self.open is not None:
            self.open.last_step = step
            self.open.measured = max(self.open.measured, value)
            return None
        self.open = Alert(
            self.run, self.metric, self.rank, step, step, value, self.capacity, self.fraction
        )
        return self.open


def straggler_ranks(per_rank: dict[int, list[float]], rel: float, window: int) -> list[int]:
    """Ranks whose median of their last `window` local compute times exceeds the median of
    the other ranks' medians by more than `rel` (needs >= 2 ranks with `window` values)."""
    meds = {r: statistics.median(v[-window:]) for r, v in per_rank.items() if len(v) >= window}
    if len(meds) < 2:
        return []
    out = []
    for r, m in meds.items():
        typical = statistics.median(v for q, v in meds.items() if q != r)
        if typical > 0 and m > typical * (1.0 + rel):
            out.append(r)
    return sorted(out)
