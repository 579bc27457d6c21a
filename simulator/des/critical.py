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

from simulator.des.engine import Row

BREAKDOWN = (
    "compute",
    "comm_tp",
    "comm_cp",
    "pipeline_bubble",
    "comm_pp",
    "comm_zero3",
    "comm_dp",
    "optimizer",
)
"""Keys of `breakdown/*`, as the closed form names them."""
_STAGE_WORK = ("compute", "recompute", "comm_tp", "comm_cp")


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


def breakdown(rows: list[Row], path: list[int]) -> tuple[dict[str, float], int]:
    """(seconds per `BREAKDOWN` key along `path`, bottleneck rank)."""
    parts: list[tuple[int, str, float]] = []
    bubble = 0.0
    prev_end = 0.0
    for i in path:
        r = rows[i]
        start = max(r.start, prev_end)
        bubble += max(0.0, r.start - prev_end)
        parts.append((r.rank, r.category, max(0.0, r.end - start)))
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
