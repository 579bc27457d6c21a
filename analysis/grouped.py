"""Price an elementwise function once per group of layouts with equal arguments.

The planner evaluates thousands of layouts at once, and most of the step's collectives take
the same (bytes, group size, rank stride) on many of them: every micro-batch size, sequence
parallelism and recompute mode of one (tp, pp, vpp, cp, dp, zero, ...) layout reduces the same
gradients. `Grouped` groups the layouts by such integer columns (`Layouts.groups`), and calls
a function on one layout per group only where each array argument is indeed equal inside every
group (checked, so the result never depends on which columns were chosen); the result is
spread back by the group index (along its last axis). The function must be elementwise over
the layouts (the collective times are): then every layout gets exactly the number it would
get alone.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

from analysis.layouts import Layouts

STEP_SHAPE = ("tp", "pp", "vpp", "cp", "dp", "zero", "first", "last", "ep", "etp")
"""Layout columns that set the step-level collectives' sizes and groups (parameters per
device, data-parallel group and stride, ZeRO stage); not the micro-batch size, sequence
parallelism or recompute mode, which change only the layers' work."""
ZERO3_SHAPE = ("tp", "cp", "dp", "pp")
"""Layout columns that set a ZeRO-3 unit's collectives (`simulator.plan.step.Zero3Unit`: a
unit's parameters per TP rank and their prefetch share, the head's own copy with pp > 1, the
data-parallel group and its stride); a subset of `STEP_SHAPE` (`Grouped.coarser`)."""


class Grouped:
    """Layouts grouped by some of their columns; call it as ``grouped(fn, *args)``."""

    def __init__(self, layouts: Layouts, columns: Sequence[str] = STEP_SHAPE) -> None:
        self.first, self.index = layouts.groups(columns)
        self.n = len(layouts)
        self._seen: dict[int, tuple[Any, Any]] = {}  # id -> (argument, its per-group values)

    def coarser(self, layouts: Layouts, columns: Sequence[str]) -> Grouped:
        """The same layouts grouped by `columns`, a subset of the columns grouped by here (each
        group here lies inside one of the new ones): the groups' first layouts grouped."""
        first, index = layouts.take(self.first).groups(columns)
        sub = object.__new__(Grouped)
        sub.n, sub.first, sub.index, sub._seen = self.n, self.first[first], index[self.index], {}
        return sub

    def restrict(self, mask: np.ndarray) -> Grouped:
        """The same grouping of the layouts where `mask` (whole groups, or parts of them)."""
        present = np.zeros(len(self.first), dtype=bool)
        present[self.index[mask]] = True
        sub = object.__new__(Grouped)
        sub.n = int(np.count_nonzero(mask))
        sub.index = (np.cumsum(present) - 1)[self.index[mask]]
        # one kept layout of each group present (any will do: `_pick` checks the others)
        sub.first = np.empty(int(np.count_nonzero(present)), dtype=np.int64)
        sub.first[sub.index] = np.arange(sub.n)
        sub._seen = {}
        return sub

    def _pick(self, a: Any) -> Any:
        """`a`'s value per group (a scalar as is); None where it differs inside a group."""
        if np.ndim(a) == 0:
            return a
        hit = self._seen.get(id(a))
        if hit is not None and hit[0] is a:
            return hit[1]
        arr = np.asarray(a)
        rep = arr[self.first] if arr.shape == (self.n,) else None
        if rep is not None and not np.array_equal(rep[self.index], arr):
            rep = None
        self._seen[id(a)] = (a, rep)  # the reference keeps the id from being reused
        return rep

    def defer(self, gen: Callable[..., Generator], *args: Any) -> Generator:
        """`__call__` for a generator function `gen` (a pricing generator,
        `analysis.step_comm.price_together`): its requests pass through, its result is spread
        back over the layouts."""
        if len(self.first) == self.n or all(np.ndim(a) == 0 for a in args):
            return (yield from gen(*args))
        picked = [self._pick(a) for a in args]
        if any(p is None for p in picked):
            return (yield from gen(*args))
        out = np.asarray((yield from gen(*picked)))
        return out[..., self.index] if out.ndim else out

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)`, computed once per group where every argument allows it."""
        if len(self.first) == self.n or all(np.ndim(a) == 0 for a in args):
            return fn(*args)
        picked = [self._pick(a) for a in args]
        if any(p is None for p in picked):
            return fn(*args)
        out = np.asarray(fn(*picked))
        return out[..., self.index] if out.ndim else out
