"""Price only the layouts that could be among the best: branch and bound over a search.

A search wants the best `top_n` fitting layouts by tokens per second, not every layout's
price. Two lower bounds of the step let it skip most of the pricing, with the same result
as pricing everything:

1. `closed_form.memory_and_floor`, for every layout: the busiest rank's compute and exposed
   TP/CP/EP time, the `bubble` rule's fill and drain where it prices the pipeline (where the
   pass recursion does, at least the last rank's work plus the first micro-batch's forwards
   and the last one's backwards on the stages before it), and the optimizer (every other part
   of the step is at least 0). Layouts are priced best floor
   first; once a layout's floor rate (``gbs / floor``) falls below the `top_n`-th best rate
   priced, no layout after it can be among the best. Over the Llama-3-70B question of
   benchmarks/search_rate.py (4 hardware x 5 cluster sizes x 2 precisions) 9.5 % of the
   layouts were priced (5.7-37 % by candidate, at least the first `FIRST`: the fewer
   micro-batches per GPU, the more the step is communication and bubble, the more are
   priced; 2026-12-03).
2. Among those priced, interleaved layouts with uneven chunks are first priced at a lower
   bound of the pass recursion (`evaluate(refine=...)`, `pipeline_passes.pass_times(lower=
   True)`), and by the recursion only where that bound reaches the `top_n`-th best rate,
   best bound first, in rounds of `BATCH` x `top_n`, doubling (`Refine`).

Both bounds are at most the price (the recursion's ends are held at or above
`makespan.bound`, which bounds the weaker one; tests/test_planner_refine.py checks the
result against pricing every layout).
"""

from __future__ import annotations

import numpy as np

from analysis.closed_form import Options, evaluate, memory_and_floor
from analysis.layouts import Layouts, chunk_bounds
from hwprofiles.profile import HardwareProfile
from simulator.model import ModelSpec

BATCH = 4
"""Uneven-chunk layouts priced by the recursion in the first round: this many times `top_n`,
best bound first, doubling every round (a speed choice; the result does not depend on it:
where the bound is loose, as on 4,096 B200 for Llama-3-70B, fixed rounds took 69 of them)."""
FIRST = 2048
"""Layouts priced in the first `evaluate` call, best floor first: enough that the `top_n`-th
best rate they set rules most others out, few enough to cost little more than `evaluate`'s
fixed few milliseconds (a speed choice: Llama-3-70B on 1,024 H100 has 1,633 layouts that
could be best, priced in one call at 2,048 and two at 1,024, 33 against 45 ms; the
`plan()` of benchmarks/search_rate.py took the same time with either, 2026-12-03)."""
TIE = 1e-9
"""Relative margin under the `top_n`-th best rate within which a bound is still priced: the
floor and the step sum the same times in different orders (rounding), and a layout tied
with the `top_n`-th must be priced for ties to go, as always, to the first enumerated."""


class TopRates:
    """The best `k` rates (tokens per second over the sequence) priced so far."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.rates = np.zeros(0)

    def kth(self, more: np.ndarray | None = None) -> float:
        """The `k`-th best of these rates and `more` (-inf while there are fewer)."""
        r = self.rates if more is None else np.concatenate([self.rates, more])
        return -np.inf if r.size < self.k else float(np.partition(r, r.size - self.k)[-self.k])

    def add(self, rates: np.ndarray) -> None:
        self.rates = np.sort(np.concatenate([self.rates, rates]))[-self.k :]


class Refine:
    """`evaluate`'s `refine` for one call: which uneven-chunk layouts, still at their
    bound, to price by the recursion (those whose bound reaches the `k`-th best rate)."""

    def __init__(self, gbs: np.ndarray, top: TopRates, floor: np.ndarray) -> None:
        self.gbs, self.top, self.floor = gbs, top, floor
        self.bounded = np.zeros(gbs.shape, dtype=bool)  # left at their bound, when done
        self.priced = 0
        self.rounds = 0

    def skip(self, step: np.ndarray, uneven: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The uneven layouts whose floor cannot reach the `k`-th best rate of the others
        (`step`: priced) and of those priced before (they stay at their floor, no bound of
        the recursion is needed for them); the floors."""
        kth = self.top.kth(self.gbs[~uneven] / step[~uneven])
        return uneven & (self.gbs / self.floor < kth * (1 - TIE)), self.floor

    def __call__(self, step: np.ndarray, bounded: np.ndarray) -> np.ndarray:
        rate = self.gbs / step
        kth = self.top.kth(rate[~bounded])
        open_ = np.flatnonzero(bounded & (rate >= kth * (1 - TIE)))
        if open_.size == 0:
            self.bounded = bounded.copy()
            return open_
        size = BATCH * self.top.k * 2**self.rounds  # doubling: a loose bound takes few rounds
        pick = open_[np.argsort(-rate[open_], kind="stable")[:size]]
        self.priced += pick.size
        self.rounds += 1
        return np.sort(pick)


def best_layouts(
    model: ModelSpec,
    hw: HardwareProfile,
    seq_len: int,
    layouts: Layouts,
    precision: str,
    options: Options,
    layers: dict[str, np.ndarray],
    usable_bytes: float,
    top_n: int,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(memory per GPU of every layout, bytes; step time, s, of those priced, NaN
    elsewhere): every fitting layout that could be among the `top_n` by tokens per second
    is priced, the layouts priced in at most `chunk` at a time."""
    n = len(layouts)
    mem, floor = np.empty(n), np.empty(n)
    for lo, hi in chunk_bounds(n, chunk):
        mem[lo:hi], floor[lo:hi] = memory_and_floor(
            model, hw, seq_len, layouts.take(np.arange(lo, hi)), precision, options,
            {k: v[lo:hi] if np.ndim(v) else v for k, v in layers.items()},
        )  # fmt: skip
    gbs = np.asarray(layouts.gbs, dtype=float)
    fits = np.flatnonzero(mem <= usable_bytes)
    order = fits[np.argsort(-(gbs[fits] / floor[fits]), kind="stable")]
    ceiling = gbs[order] / floor[order]  # the most each could reach, in decreasing order
    step = np.full(n, np.nan)
    top = TopRates(top_n)
    pos = 0
    while pos < order.size and ceiling[pos] >= top.kth() * (1 - TIE):
        end = min(pos + (FIRST if pos == 0 else chunk), order.size)
        end = pos + int(np.count_nonzero(ceiling[pos:end] >= top.kth() * (1 - TIE)))
        rows = order[pos:end]
        refine = Refine(gbs[rows], top, floor[rows])
        step[rows] = evaluate(
            model, hw, seq_len, layouts.take(rows), precision, options,
            {k: v[rows] if np.ndim(v) else v for k, v in layers.items()},
            keys=("step_time_s",), refine=refine,
        )["step_time_s"]  # fmt: skip
        top.add(gbs[rows][~refine.bounded] / step[rows][~refine.bounded])
        pos = end
    return mem, step
