"""Where a gang of GPUs goes inside one pool: whole nodes, packed under as few leaves as possible.

Rules (a topology-aware, best-fit policy; a planning assumption, not a vendor's scheduler):

- a job smaller than a node shares a node: it takes the node with the fewest free GPUs that
  still fits it (best fit keeps whole nodes free for large jobs);
- a job of a node or more takes whole nodes (``ceil(gpus / gpus_per_node)``; GPUs beyond its
  count stay allocated and idle, as under Slurm's exclusive node allocation);
- whole nodes come from one leaf when one leaf has enough free nodes (the leaf with the fewest
  that suffice, so that large holes stay whole); otherwise from the leaves with the most free
  nodes first, which spans the fewest leaves.

The step model prices every job on its pool's fabric as if placed compactly; the number of
leaves a job spans is recorded, not priced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from simulator.cluster.jobs import Pool


@dataclass(frozen=True)
class Placement:
    """GPUs taken on each node of one pool."""

    pool: str
    nodes: tuple[tuple[int, int], ...]
    """(node index, GPUs taken) pairs, in node order."""
    leaves: int
    """Leaf switches the job spans."""

    @property
    def gpus(self) -> int:
        """GPUs allocated (for whole-node jobs, possibly more than the job uses)."""
        return sum(g for _, g in self.nodes)


class PoolState:
    """Free GPUs per node of one pool."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.free = [pool.gpus_per_node] * pool.nodes
        self.free_gpus = pool.gpus

    def copy(self) -> PoolState:
        out = PoolState.__new__(PoolState)
        out.pool, out.free, out.free_gpus = self.pool, list(self.free), self.free_gpus
        return out

    def take(self, p: Placement) -> None:
        for n, g in p.nodes:
            if self.free[n] < g:
                raise RuntimeError(f"pool {self.pool.name}: node {n} has {self.free[n]} < {g}")
            self.free[n] -= g
        self.free_gpus -= p.gpus

    def give(self, p: Placement) -> None:
        for n, g in p.nodes:
            self.free[n] += g
        self.free_gpus += p.gpus

    def place(self, gpus: int) -> Placement | None:
        """Where a job of `gpus` GPUs would go now, or None if it does not fit."""
        gpn = self.pool.gpus_per_node
        if gpus > self.free_gpus:
            return None
        if gpus < gpn:
            best = -1
            for n, f in enumerate(self.free):
                if f >= gpus and (best < 0 or f < self.free[best]):
                    best = n
            return None if best < 0 else Placement(self.pool.name, ((best, gpus),), 1)
        need = -(-gpus // gpn)
        per_leaf = self.pool.nodes_per_leaf
        leaves: list[list[int]] = []
        for lo in range(0, len(self.free), per_leaf):
            leaves.append(
                [n for n in range(lo, min(lo + per_leaf, len(self.free))) if self.free[n] == gpn]
            )
        if sum(len(f) for f in leaves) < need:
            return None
        fits = [i for i, f in enumerate(leaves) if len(f) >= need]
        if fits:
            i = min(fits, key=lambda i: (len(leaves[i]), i))
            return Placement(self.pool.name, tuple((n, gpn) for n in leaves[i][:need]), 1)
        chosen: list[int] = []
        used = 0
        for i in sorted(range(len(leaves)), key=lambda i: (-len(leaves[i]), i)):
            if not leaves[i]:
                break
            chosen += leaves[i][: need - len(chosen)]
            used += 1
            if len(chosen) == need:
                break
        return Placement(self.pool.name, tuple((n, gpn) for n in sorted(chosen)), used)


def earliest_start(
    state: PoolState, gpus: int, now: float, releases: Iterable[tuple[float, int, Placement]]
) -> tuple[float, PoolState] | None:
    """When a job of `gpus` GPUs could start on this pool if nothing else starts meanwhile.

    `releases` are (end time, job id, placement) of the jobs running on the pool. Returns the
    time and the pool's state at that time (before the job is placed), or None if it never fits.
    """
    s = state.copy()
    if s.place(gpus) is not None:
        return now, s
    for end, _, p in sorted(releases, key=lambda r: (r[0], r[1])):
        s.give(p)
        if s.place(gpus) is not None:
            return max(end, now), s
    return None
