"""The critical path of a simulated step, and the step's breakdown along it.

Every recorded activity names the activity whose end released it (`Row.pred`). Walking back
from the last activity gives the chain that set the step time; each link contributes
``end - max(start, pred.end)`` to its category and any wait before it to the pipeline bubble,
so the parts sum exactly to the step time. The rank with the most compute on the path is the
*bottleneck* rank; compute and TP/CP communication met on the other ranks (pipeline fill and
drain) count as bubble, as the closed form's ``(pp - 1) / vpp * t_stage`` does.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from simulator.des.engine import Row

BREAKDOWN = (
    "compute",
    "comm_tp",
    "comm_cp",
    "comm_ep",
    "pipeline_bubble",
    "comm_pp",
    "comm_zero3",
    "comm_dp",
    "copies",
    "hooks",
    "optimizer",
)
"""Keys of `breakdown/*`, as the closed form names them."""
_STAGE_WORK = ("compute", "recompute", "comm_tp", "comm_cp", "comm_ep")


def critical_path(rows: list[Row], last: int) -> list[int]:
    """Row indices from the first to `last` along the releasing chain."""
    path: list[int] = []
    i = last
    seen = set()
    while i >= 0 and i not in seen:
        seen.add(i)
        path.append(i)
        i = rows[i].pred
    return path[::-1]


class Busy:
    """Union of one rank's compute-stream kernels, for "how much of [a, b] was computing"."""

    def __init__(self, spans: list[tuple[float, float]]) -> None:
        spans = sorted(spans)
        self.starts = np.array([a for a, _ in spans])
        self.ends = np.array([b for _, b in spans])
        self.before = np.concatenate([[0.0], np.cumsum(self.ends - self.starts)])

    def _upto(self, t: float) -> float:
        """Computing time in [0, t] (kernels of one stream do not overlap)."""
        i = int(np.searchsorted(self.starts, t, side="right"))
        if i == 0:
            return 0.0
        return float(self.before[i - 1] + min(t, self.ends[i - 1]) - self.starts[i - 1])

    def within(self, a: float, b: float) -> float:
        return self._upto(b) - self._upto(a) if b > a else 0.0


def busy_by_rank(rows: list[Row]) -> dict[int, Busy]:
    """Compute-kernel spans of every rank."""
    spans: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        if r.category in ("compute", "recompute"):
            spans[r.rank].append((r.start, r.end))
    return {k: Busy(v) for k, v in spans.items()}


def breakdown(rows: list[Row], path: list[int]) -> tuple[dict[str, float], int]:
    """(seconds per `BREAKDOWN` key along `path`, bottleneck rank).

    A communication on the path counts as exposed only while its rank's compute stream was
    idle; while that rank computed beside it, the time counts as compute (the closed form's
    "exposed" = what compute does not hide).
    """
    busy = busy_by_rank(rows)
    parts: list[tuple[int, str, float]] = []
    bubble = 0.0
    prev_end = 0.0
    for i in path:
        r = rows[i]
        start = max(r.start, prev_end)
        bubble += max(0.0, r.start - prev_end)
        t = max(0.0, r.end - start)
        if r.category.startswith("comm_") and r.rank in busy:
            hidden = busy[r.rank].within(start, r.end)
            parts.append((r.rank, "compute", hidden))
            t -= hidden
        parts.append((r.rank, r.category, t))
        prev_end = max(prev_end, r.end)
    compute_by_rank: dict[int, float] = defaultdict(float)
    for rank, cat, t in parts:
        if cat in ("compute", "recompute"):
            compute_by_rank[rank] += t
    bottleneck = max(sorted(compute_by_rank), key=lambda k: compute_by_rank[k], default=-1)
    out = dict.fromkeys(BREAKDOWN, 0.0)
    out["pipeline_bubble"] = bubble
    for rank, cat, t in parts:
        if cat in _STAGE_WORK and rank != bottleneck:
            out["pipeline_bubble"] += t
        elif cat == "recompute":
            out["compute"] += t
        else:
            out[cat] += t
    return out, bottleneck
