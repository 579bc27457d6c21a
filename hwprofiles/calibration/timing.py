"""Repeated timing with warm-up: median, min, max and count of one operation's duration.

Each sample times `inner` back-to-back calls and divides, so that operations far shorter than
the timer's resolution and the Python call overhead are still measured; `inner` is chosen once
after warm-up so that one sample lasts about `sample_s`. The spread is kept: a measurement
whose (max - min) / median exceeds `NOISY_SPREAD` is flagged noisy, not dropped.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

NOISY_SPREAD = 0.2
"""(max - min) / median above which a measurement is reported as noisy (project convention)."""


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one operation over `count` samples."""

    median_s: float
    min_s: float
    max_s: float
    count: int

    @property
    def spread(self) -> float:
        """(max - min) / median, dimensionless."""
        return (self.max_s - self.min_s) / self.median_s if self.median_s > 0 else 0.0

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY_SPREAD

    @classmethod
    def from_samples(cls, samples: list[float]) -> Timing:
        if not samples:
            raise ValueError("timing: no samples")
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    def scaled(self, factor: float) -> Timing:
        """The same timing with every duration times `factor` (a part measured for a whole)."""
        if factor == 1:
            return self
        return Timing(self.median_s * factor, self.min_s * factor, self.max_s * factor, self.count)

    def as_row(self) -> dict[str, float | int | bool]:
        return {
            "median_s": self.median_s,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "count": self.count,
            "noisy": self.noisy,
        }


@dataclass(frozen=True)
class Repeats:
    """How hard to measure: warm-up calls, samples, and a time budget per configuration."""

    warmup: int = 2
    samples: int = 5
    min_samples: int = 3
    """Samples kept even when the budget is spent (the spread needs a few)."""
    budget_s: float = 1.0
    """Stop adding samples past this many seconds (after `min_samples`)."""
    sample_s: float = 0.01
    """Target duration of one sample; short calls are looped `inner` times per sample."""


def time_op(
    fn: Callable[[], object],
    repeats: Repeats,
    sync: Callable[[], None] | None = None,
) -> Timing:
    """Time `fn` (seconds per call) with warm-up; `sync` waits for queued device work."""
    sync = sync or (lambda: None)
    t0 = time.perf_counter()
    for _ in range(max(repeats.warmup, 1)):
        fn()
    sync()
    one = (time.perf_counter() - t0) / max(repeats.warmup, 1)
    inner = max(1, min(10_000, math.ceil(repeats.sample_s / max(one, 1e-9))))
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < repeats.samples:
        s0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        samples.append((time.perf_counter() - s0) / inner)
        spent = time.perf_counter() - start
        if len(samples) >= repeats.min_samples and spent > repeats.budget_s:
            break
    return Timing.from_samples(samples)
