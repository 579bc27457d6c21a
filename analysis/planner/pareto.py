"""The Pareto front of candidates that minimise two quantities (time to train and cost)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pareto_mask(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> np.ndarray:
    """True for the points no other point beats: lower-or-equal in both, strictly lower in one.

    Points with a NaN in either coordinate (e.g. no price) are never on the front. Of exact
    duplicates, the first keeps its place (a deterministic choice).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"pareto: x and y differ in shape, {x.shape} != {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    mask = np.zeros(x.shape, dtype=bool)
    idx = np.flatnonzero(ok)
    # sweep in increasing x (ties: increasing y, then index); keep strictly improving y
    order = idx[np.lexsort((idx, y[idx], x[idx]))]
    best_y = np.inf
    for i in order:
        if y[i] < best_y:
            mask[i] = True
            best_y = y[i]
    return mask
