"""What a validation run's ranks are told about monitoring and injected faults.

`MonitorSpec` travels inside `RunSpec` (plain JSON) to each rank: the prediction to compare
with, the thresholds, and the Prometheus base port. `parse_inject` reads
``--inject slow-rank=1:2.0,hang-rank=1@step20,link-drop=200Mbit@step10``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from hwprofiles.errors import UserError
from validation.monitor.thresholds import DEFAULTS, Thresholds


@dataclass(frozen=True)
class MonitorSpec:
    """Monitoring settings of one run (SI units; None = not predicted)."""

    predicted_step_time_s: float | None = None
    predicted_power_w: float | None = None
    memory_capacity_bytes: float | None = None
    thresholds: Thresholds = field(default_factory=lambda: DEFAULTS)
    metrics_port: int = 0
    """Prometheus base port (rank r serves on base + r); 0 = no endpoint."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorSpec:
        d = dict(d)
        d["thresholds"] = Thresholds(**d.get("thresholds", {}))
        return cls(**d)


@dataclass(frozen=True)
class Slowdown:
    """Rank `rank` runs `factor` times slower from step `step` on (a straggler): after its
    forward pass it sleeps (factor - 1) x three times its forward time (forward + backward)."""

    rank: int
    factor: float
    step: int = 0


DROP_APPLIED = "link_drop.applied"
"""File the launcher writes in the run directory once an injected link drop is in place."""
DROP_WAIT_S = 30.0
"""Longest rank 0 holds for the launcher to apply a link drop (s); past it the run goes on
and the event's `applied_at_step` says where the drop really landed."""


@dataclass(frozen=True)
class LinkDrop:
    """The rate-limited links drop to `bytes_per_s` (per direction) once a rank starts step
    `step` (needs `--link-bandwidth`, root). Rank 0 holds at the start of that step until the
    launcher has applied the new rate (it writes `DROP_APPLIED` in the run directory), so the
    drop lands at exactly that step however late the launcher polls."""

    bytes_per_s: float
    step: int


@dataclass(frozen=True)
class Injections:
    slow: Slowdown | None = None
    hang: tuple[int, int] | None = None
    """(rank, step): that rank hangs when it reaches the step."""
    link_drop: LinkDrop | None = None


KINDS = ("slow-rank", "hang-rank", "link-drop")


def _step(key: str, text: str) -> int:
    body = text.strip()
    if not body.startswith("step") or not body[4:].isdigit():
        raise UserError(key, text, "must name a step as stepN, e.g. step20")
    return int(body[4:])


def _rank(key: str, text: str, nproc: int) -> int:
    if not text.strip().isdigit():
        raise UserError(key, text, "must be a rank number")
    rank = int(text)
    if rank >= nproc:
        raise UserError(key, rank, f"is not a rank of a run with at most {nproc} ranks")
    return rank


def parse_inject(text: str, nproc: int) -> Injections:
    """Parse ``--inject``; `nproc`: the largest rank count of the matrix."""
    from validation.netns import parse_rate

    out: dict[str, Any] = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        kind, sep, value = item.partition("=")
        key = f"--inject {kind}"
        if not sep or kind not in KINDS:
            raise UserError("--inject", item, f"must be KIND=VALUE with KIND in {', '.join(KINDS)}")
        if kind == "slow-rank":
            rank_s, sep2, rest = value.partition(":")
            factor_s, _, step_s = rest.partition("@")
            try:
                factor = float(factor_s)
            except ValueError:
                raise UserError(key, value, "must be RANK:FACTOR[@stepN], e.g. 1:2.0") from None
            if not sep2 or not math.isfinite(factor) or factor <= 1.0:
                raise UserError(key, value, "must be RANK:FACTOR with a finite FACTOR > 1")
            step = _step(key, step_s) if step_s else 0
            out["slow"] = Slowdown(_rank(key, rank_s, nproc), factor, step)
        elif kind == "hang-rank":
            rank_s, sep2, step_s = value.partition("@")
            if not sep2:
                raise UserError(key, value, "must be RANK@stepN, e.g. 1@step20")
            out["hang"] = (_rank(key, rank_s, nproc), _step(key, step_s))
        else:
            rate_s, sep2, step_s = value.partition("@")
            if not sep2:
                raise UserError(key, value, "must be RATE@stepN, e.g. 200Mbit@step10")
            out["link_drop"] = LinkDrop(parse_rate(rate_s), _step(key, step_s))
    return Injections(**out)
