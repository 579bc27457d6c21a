"""Alert thresholds: what counts as a run going wrong, parsed from ``--alert``.

``--alert step_time=+15%,memory=90%,power=+10%,straggler=+25%,hang=60s,window=5`` sets any
subset; the rest keep their defaults (`DEFAULTS`). The rules they feed are in `rules.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from hwprofiles.errors import UserError


@dataclass(frozen=True)
class Thresholds:
    """When an alert fires. Relative thresholds are fractions (0.15 = 15 %)."""

    step_time: float = 0.15
    """Median step time over `window` steps above the prediction by more than this."""
    memory: float = 0.90
    """Peak memory above this fraction of the device's capacity."""
    power: float = 0.10
    """Median power over `window` steps above the prediction by more than this."""
    straggler: float = 0.25
    """A rank's median local compute time above the median rank's by more than this."""
    hang_s: float = 60.0
    """A rank that has not finished a step for this long (s) while others have."""
    window: int = 5
    """Steps a deviation must last (its median) before it is an alert: one noisy step is not."""


DEFAULTS = Thresholds()
RELATIVE = ("step_time", "power", "straggler")
METRICS = (*RELATIVE, "memory", "hang", "window")


def _percent(key: str, text: str, *, signed: bool) -> float:
    body = text.strip()
    if signed and body.startswith("+"):
        body = body[1:]
    if not body.endswith("%"):
        raise UserError(key, text, "must be a percentage such as " + ("+15%" if signed else "90%"))
    try:
        value = float(body[:-1]) / 100.0
    except ValueError:
        raise UserError(key, text, "must be a number followed by %") from None
    if not math.isfinite(value) or value <= 0:
        raise UserError(key, text, "must be a finite percentage > 0%")
    return value


def parse_thresholds(text: str, base: Thresholds = DEFAULTS) -> Thresholds:
    """``"step_time=+15%,memory=90%"`` -> `Thresholds` (unknown metrics and bad values raise
    `UserError` naming ``--alert <metric>``)."""
    changes: dict[str, float | int] = {}
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        key = f"--alert {name}"
        if not sep:
            raise UserError("--alert", item, "must be METRIC=VALUE, e.g. step_time=+15%")
        if name not in METRICS:
            raise UserError("--alert", name, f"is not a metric (known: {', '.join(METRICS)})")
        if name in RELATIVE:
            changes[name] = _percent(key, value, signed=True)
        elif name == "memory":
            frac = _percent(key, value, signed=False)
            if frac > 1.0:
                raise UserError(key, value, "must be at most 100%")
            changes[name] = frac
        elif name == "hang":
            body = value.strip().removesuffix("s")
            try:
                secs = float(body)
            except ValueError:
                raise UserError(key, value, "must be seconds, e.g. 60s") from None
            if not math.isfinite(secs) or secs <= 0:
                raise UserError(key, value, "must be finite seconds > 0")
            changes["hang_s"] = secs
        else:
            if not value.strip().isdigit() or int(value) < 1:
                raise UserError(key, value, "must be a whole number of steps >= 1")
            changes["window"] = int(value)
    return replace(base, **changes)


def describe(t: Thresholds) -> str:
    """One line for logs and docs: ``step_time=+15%, memory=90%, ...``."""
    parts = []
    for f in fields(t):
        v = getattr(t, f.name)
        if f.name in RELATIVE:
            parts.append(f"{f.name}=+{v * 100:g}%")
        elif f.name == "memory":
            parts.append(f"memory={v * 100:g}%")
        elif f.name == "hang_s":
            parts.append(f"hang={v:g}s")
        else:
            parts.append(f"window={v}")
    return ", ".join(parts)
