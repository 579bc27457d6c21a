"""`Layouts`: many parallel layouts as parallel numpy arrays, for vectorised evaluation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.parallel import RECOMPUTE_MODES, ParallelConfig


@dataclass(frozen=True)
class Layouts:
    """Resolved layouts (dp known) as equal-length integer arrays.

    `recompute` is coded 0 = none, 1 = selective, 2 = full; `sp` is 0/1.
    """

    tp: np.ndarray
    pp: np.ndarray
    vpp: np.ndarray
    cp: np.ndarray
    dp: np.ndarray
    mb: np.ndarray
    gbs: np.ndarray
    zero: np.ndarray
    sp: np.ndarray
    recompute: np.ndarray
    first: np.ndarray | None = None
    """Layers pinned on the first pipeline stage; 0 = the default split (None = all 0)."""
    last: np.ndarray | None = None
    """Layers pinned on the last pipeline stage; 0 = the default split (None = all 0)."""
    ep: np.ndarray | None = None
    """Expert-parallel degree (None: 1 everywhere, filled in at construction)."""
    etp: np.ndarray | None = None
    """Expert tensor-parallel degree (None: 1)."""

    def __post_init__(self) -> None:
        for k in ("first", "last"):
            if getattr(self, k) is None:
                object.__setattr__(self, k, np.zeros(self.tp.shape, dtype=np.int64))
        for k in ("ep", "etp"):
            if getattr(self, k) is None:
                object.__setattr__(self, k, np.ones(self.tp.shape, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.tp.shape[0])

    @classmethod
    def from_arrays(cls, **arrays: Sequence[int] | np.ndarray) -> Layouts:
        cols = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
        n = max(c.size for c in cols.values())
        return cls(**{k: np.broadcast_to(v, (n,)).astype(np.int64) for k, v in cols.items()})

    @classmethod
    def from_configs(cls, configs: Sequence[ParallelConfig]) -> Layouts:
        """From resolved `ParallelConfig`s (dp and global batch filled in)."""
        return cls.from_arrays(
            tp=[c.tp for c in configs],
            pp=[c.pp for c in configs],
            vpp=[c.vpp for c in configs],
            cp=[c.cp for c in configs],
            dp=[c.dp for c in configs],
            mb=[c.micro_batch_size for c in configs],
            gbs=[c.global_batch_size for c in configs],
            zero=[c.zero_stage for c in configs],
            sp=[int(c.sequence_parallel) for c in configs],
            recompute=[RECOMPUTE_MODES.index(c.recompute) for c in configs],
            first=[c.first_stage_layers or 0 for c in configs],
            last=[c.last_stage_layers or 0 for c in configs],
            ep=[c.ep for c in configs],
            etp=[c.expert_tp for c in configs],
        )

    def row(self, i: int) -> dict[str, int]:
        return {k: int(getattr(self, k)[i]) for k in self.__dataclass_fields__}

    def take(self, index: np.ndarray) -> Layouts:
        """The layouts at `index` (an integer array), in that order."""
        return Layouts(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})

    def distinct(self, columns: Sequence[str]) -> tuple[Layouts, np.ndarray]:
        """(one layout per distinct combination of `columns`, the index of each layout's
        combination in it): what depends only on `columns` is computed on the first and
        spread back with ``value[index]``."""
        first, index = self.groups(columns)
        return self.take(first), index

    def groups(self, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(the first layout of each distinct combination of `columns`, the index of each
        layout's combination among those): `group_index` over the columns."""
        return group_index([getattr(self, k) for k in columns])


def group_index(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(the first row of each distinct combination of the integer `columns`, the index of
    each row's combination among those). The combinations are coded as one integer (mixed
    radix over the columns' ranges), so this is one 1-D unique."""
    cols = [np.asarray(c, dtype=np.int64) for c in columns]
    lows = [int(c.min(initial=0)) for c in cols]
    radix = [int(c.max(initial=0)) - lo + 1 for c, lo in zip(cols, lows, strict=True)]
    if math.prod(radix) >= 2**62:  # too many combinations for one int64 code
        _, first, index = np.unique(np.stack(cols, axis=1), axis=0, return_index=True,
                                    return_inverse=True)  # fmt: skip
        return first, index.reshape(-1)
    code = np.zeros(cols[0].shape, dtype=np.int64)
    for c, lo, r in zip(cols, lows, radix, strict=True):
        code = code * r + (c - lo)
    _, first, index = np.unique(code, return_index=True, return_inverse=True)
    return first, index.reshape(-1)


def chunk_bounds(n: int, chunk: int) -> list[tuple[int, int]]:
    """(start, end) of each chunk of `n` layouts: `chunk` each, the last one taking a
    remainder of under a quarter chunk rather than leaving it alone (each `evaluate` call
    costs a few ms of fixed overhead; memory stays under 1.25 chunks)."""
    out, lo = [], 0
    while lo < n:
        hi = min(lo + chunk, n)
        if n - hi < chunk // 4:
            hi = n
        out.append((lo, hi))
        lo = hi
    return out
