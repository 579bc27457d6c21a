"""The smallest cluster of one hardware that trains the token budget within a deadline.

A solver over whole nodes (any count, not only powers of two): bisection on the node count
with the planner's search (closed form, the fastest layout that fits) as the test. Time to
train falls with the GPU count except where the divisibility rules leave a count without a
good layout, so a count is judged by itself and the next `LOOKAHEAD - 1` counts (the first of
them that meets the deadline is the answer); that keeps the test monotone enough to bisect.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.planner.request import PlanRequest
from analysis.planner.search import search_candidate
from hwprofiles.profile import HardwareProfile

LOOKAHEAD = 4
"""Node counts tried from each bisection point (divisibility makes some counts poor)."""


@dataclass(frozen=True)
class Smallest:
    """The answer for one (hardware, precision)."""

    hardware: str
    precision: str
    gpus: int | None
    """None: not even `max_gpus` meets the deadline."""
    days: float | None
    layout: dict | None
    counts_tried: int
    max_gpus: int


def smallest_cluster(
    req: PlanRequest, hw: HardwareProfile, precision: str, max_gpus: int
) -> Smallest:
    """The fewest GPUs (whole nodes; or fewer than a node) of `hw` meeting `req.deadline_s`."""
    if req.deadline_s is None:
        raise ValueError("smallest_cluster needs a deadline")
    gpn = hw.node.gpus_per_node
    cache: dict[int, tuple[float, dict] | None] = {}

    def days_at(gpus: int) -> tuple[float, dict] | None:
        if gpus not in cache:
            found = search_candidate(
                req.model,
                hw,
                gpus,
                precision,
                req.sequence_length,
                req.batch,
                options=req.options,
                space=req.space,
                usable_memory_fraction=req.usable_memory_fraction,
                top_n=1,
            )
            cache[gpus] = (
                None
                if not found.feasible
                else (req.tokens / found.best["tokens_per_s"], found.best)  # type: ignore[index]
            )
        return cache[gpus]

    def meets(nodes: int) -> int | None:
        """The first GPU count from `nodes` nodes on (LOOKAHEAD counts) meeting the deadline."""
        for k in range(nodes, nodes + LOOKAHEAD):
            g = k * gpn
            if g > max_gpus:
                break
            r = days_at(g)
            if r is not None and r[0] <= req.deadline_s:  # type: ignore[operator]
                return g
        return None

    top = max(1, max_gpus // gpn)
    best: int | None = meets(top)
    if best is not None:
        lo, hi = 1, top  # meets(hi) holds; find the smallest that does
        while lo < hi:
            mid = (lo + hi) // 2
            g = meets(mid)
            if g is not None:
                hi, best = mid, g
            else:
                lo = mid + 1
        best = meets(lo) or best
    if best is None:
        return Smallest(hw.name, precision, None, None, None, len(cache), max_gpus)
    secs, layout = cache[best]  # type: ignore[misc]
    return Smallest(hw.name, precision, best, secs / 86400.0, layout, len(cache), max_gpus)
