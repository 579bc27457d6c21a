"""The critical path of a simulated step, and the step's breakdown along it.

Every recorded activity names the activity whose end released it (`Row.pred`). Walking back
from the last activity gives the chain that set the step time. The breakdown follows the
closed form's definitions (`breakdown`): the bottleneck rank's own stage work, the step-level
communication met on the path, and the pipeline bubble as the rest, so the parts sum exactly
to the step time.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from simulator.des.engine import Row
from simulator.engine_step import BREAKDOWN as BREAKDOWN_LABELS

BREAKDOWN = tuple(BREAKDOWN_LABELS)
"""Keys of the breakdown (defined once in `simulator.engine_step`)."""
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


def busy_by_rank(rows: list[Row], stage_comm: bool = False) -> dict[int, Busy]:
    """Compute-kernel spans of every rank; with `stage_comm`, merged with its TP/CP/EP
    collectives' (time already counted as the rank's stage work)."""
    cats = _STAGE_WORK if stage_comm else ("compute", "recompute")
    spans: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        if r.category in cats and r.end > r.start:
            spans[r.rank].append((r.start, r.end))
    return {k: Busy(_merge(v)) for k, v in spans.items()}


class _BusyOnDemand(dict):
    """`busy_by_rank`'s answer, each rank's `Busy` built when first asked for."""

    def __init__(self, spans: dict[int, list[tuple[float, float]]]) -> None:
        super().__init__()
        self._spans = spans

    def __contains__(self, rank: object) -> bool:
        return rank in self._spans

    def get(self, rank: int, default: Busy | None = None) -> Busy | None:  # type: ignore[override]
        return self[rank] if rank in self._spans else default

    def __missing__(self, rank: int) -> Busy:
        busy = self[rank] = Busy(_merge(self._spans[rank]))
        return busy


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of intervals as disjoint sorted intervals."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def breakdown(rows: list[Row], path: list[int]) -> tuple[dict[str, float], int]:
    """(seconds per `BREAKDOWN` key, bottleneck rank), by the rule the closed form follows.

    Stage work (compute, exposed TP, CP and EP communication) is the bottleneck rank's own over
    the whole step: the rank with the most compute (kernels slowed by communication beside
    them included), like the closed form's ``m * t_mb`` of its heaviest stage. A TP/CP
    collective is exposed only while its rank's compute stream was idle. The step-level parts
    (pipeline sends, DP and ZeRO-3 collectives, copies, hooks, optimizer) are measured along
    the critical path, each exposed only while its rank was neither computing nor running a
    TP/CP/EP collective (counted once, as stage work). The pipeline
    bubble is the rest of the step: the time the bottleneck rank's pipeline kept it waiting.
    """
    # one pass over the rows: each rank's compute time, its compute spans, and those merged
    # with its stage collectives (`busy_by_rank`, built only for the ranks asked about)
    compute_by_rank: dict[int, float] = defaultdict(float)
    compute: dict[int, list[tuple[float, float]]] = defaultdict(list)
    stage: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        cat = r.category
        if cat in _STAGE_WORK:
            if cat == "compute" or cat == "recompute":
                compute_by_rank[r.rank] += r.end - r.start
                if r.end > r.start:
                    compute[r.rank].append((r.start, r.end))
            if r.end > r.start:
                stage[r.rank].append((r.start, r.end))
    busy, work = _BusyOnDemand(dict(compute)), _BusyOnDemand(dict(stage))
    bottleneck = max(sorted(compute_by_rank), key=lambda k: compute_by_rank[k], default=-1)
    out = dict.fromkeys(BREAKDOWN, 0.0)
    out["compute"] = compute_by_rank.get(bottleneck, 0.0)
    own = busy.get(bottleneck)
    for r in rows:
        if r.rank == bottleneck and r.category in ("comm_tp", "comm_cp", "comm_ep"):
            hidden = own.within(r.start, r.end) if own is not None else 0.0
            out[r.category] += max(0.0, r.end - r.start - hidden)
    # step-level collectives are exposed only while their rank neither computed nor ran a
    # stage collective (those are counted above)
    prev_end = 0.0
    for i in path:
        r = rows[i]
        start = max(r.start, prev_end)
        prev_end = max(prev_end, r.end)
        if r.category in _STAGE_WORK:
            continue
        t = max(0.0, r.end - start)
        if r.category.startswith("comm_") and r.rank in work:
            t -= work[r.rank].within(start, r.end)
        out[r.category] += t
    step = rows[path[-1]].end if path else 0.0
    bubble = step - sum(v for k, v in out.items() if k != "pipeline_bubble")
    # the remainder of a sum of floats: rounding alone (|x| < 1e-9 of the step) is no bubble,
    # and must not print as -0.0 or -1e-18 in a breakdown
    out["pipeline_bubble"] = 0.0 if abs(bubble) <= 1e-9 * step else bubble
    return out, bottleneck
