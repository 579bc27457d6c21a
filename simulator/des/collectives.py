"""Collectives built from transfers over links: ring, tree, hierarchical, broadcast, send/recv.

Scenario: a collective of `n` ranks is a list of `Phase`s; each phase pays its latency terms
(steps * alpha) and then moves its bytes as one transfer on the representative rank's route.
A ring all-reduce, step by step, is 2(n-1) phases of size/n bytes; the default *coalesced*
form is one phase of 2(n-1) alphas and 2(n-1)/n * size bytes, which takes the same time on an
uncontended route and the same time under any contention that does not change during the
collective (processor sharing of a fixed set of flows is work-conserving). The tree is the
double binary tree of NCCL (pipelined: 2 log2(n) latency steps, 2 * size bytes per rank); the
hierarchical form is an intra-node reduce-scatter, an inter-node all-reduce of size/k and an
intra-node all-gather.

Sizes follow nccl-tests (`simulator.costmodel.collectives`): the per-rank buffer for
all-reduce and broadcast, the gathered total for all-gather and reduce-scatter. The alpha-beta
formulas are not rewritten here: ring and tree latency steps, bytes and times come from
`simulator.costmodel.collectives` (`ring_time`, `tree_time`). `for_group` picks the algorithm
the cost model's minimum picks, takes the cost model's time of the collective
(`group_collective_time`, which also applies calibrated fits) and that algorithm's latency
terms, and sizes the transfer so that the uncontended time is exactly the cost model's: without
a fit, the transfer is the chosen algorithm's own bytes (ring: size x bus factor, tree:
2 x size).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import simpy

from hwprofiles.profile import HardwareProfile
from simulator.costmodel.collectives import (
    TREE_BYTES_FACTOR,
    bus_factor,
    latency_steps,
    ring_time,
    tree_latency_steps,
    tree_time,
)
from simulator.costmodel.network import collective_latency, group_collective_time
from simulator.des.link import Network
from simulator.des.topology import Route


@dataclass(frozen=True)
class Phase:
    """Latency, then bytes moved by the representative rank on `route`."""

    latency_s: float
    nbytes: float
    route: Route


@lru_cache(maxsize=256)
def _bus_factor(kind: str, n: int) -> float:
    """`bus_factor` of one (kind, group size), as a float (a few per step, asked for often)."""
    return float(bus_factor(kind, n))


@dataclass(frozen=True)
class Collective:
    """One collective call as phases; `uncontended_s` is its alpha-beta time."""

    kind: str
    size_bytes: float
    n: int
    phases: tuple[Phase, ...]
    algorithm: str = "ring"

    @property
    def wire_bytes(self) -> float:
        """Bytes each rank puts on the wire: size x nccl-tests bus factor."""
        return self.size_bytes * _bus_factor(self.kind, self.n) if self.n > 1 else 0.0

    @property
    def uncontended_s(self) -> float:
        return sum(
            p.latency_s + (p.nbytes / p.route.rate if p.nbytes else 0.0) for p in self.phases
        )


def ring(kind: str, size: float, n: int, route: Route, detailed: bool = False) -> Collective:
    """Ring all-reduce / all-gather / reduce-scatter; broadcast and send/recv as one hop."""
    if n <= 1:
        return Collective(kind, size, n, ())
    steps = int(latency_steps(kind, n))
    total = size * float(bus_factor(kind, n))
    if detailed and kind in ("all_reduce", "all_gather", "reduce_scatter"):
        chunk = total / steps  # size / n per step
        phases = tuple(Phase(route.latency_s, chunk, route) for _ in range(steps))
    else:
        phases = (Phase(steps * route.latency_s, total, route),)
    return Collective(kind, size, n, phases, "ring")


def tree_all_reduce(size: float, n: int, route: Route, detailed: bool = False) -> Collective:
    """Double binary tree: reduce up then broadcast down, each log2(n) steps, pipelined."""
    if n <= 1:
        return Collective("all_reduce", size, n, ())
    steps = float(tree_latency_steps(n))
    nbytes = TREE_BYTES_FACTOR * size
    if detailed:
        half = Phase(steps / 2 * route.latency_s, nbytes / 2, route)
        return Collective("all_reduce", size, n, (half, half), "tree")
    return Collective(
        "all_reduce", size, n, (Phase(steps * route.latency_s, nbytes, route),), "tree"
    )


def tree_is_faster(size: float, n: int, route: Route) -> bool:
    """True when the cost model prices a tree all-reduce on `route` below the ring (ties: ring)."""
    args = (size, n, route.rate, route.latency_s)
    return float(tree_time("all_reduce", *args)) < float(ring_time("all_reduce", *args))


def hierarchical_all_reduce(
    size: float, k_local: int, n_nodes: int, intra: Route, inter: Route
) -> Collective:
    """Reduce-scatter inside the node, all-reduce of size/k across nodes, all-gather inside."""
    phases: list[Phase] = []
    if k_local > 1:
        phases += ring("reduce_scatter", size, k_local, intra).phases
    if n_nodes > 1:
        shard = size / k_local
        if tree_is_faster(shard, n_nodes, inter):
            phases += tree_all_reduce(shard, n_nodes, inter).phases
        else:
            phases += ring("all_reduce", shard, n_nodes, inter).phases
    if k_local > 1:
        phases += ring("all_gather", size, k_local, intra).phases
    return Collective("all_reduce", size, k_local * n_nodes, tuple(phases), "hierarchical")


def for_group(
    hw: HardwareProfile, kind: str, size: float, n: int, stride: int, route: Route
) -> Collective:
    """The collective the cost model prices for a parallel group, as one coalesced phase.

    Time on an uncontended route = `group_collective_time` (ring or tree, whichever its minimum
    picks, or a calibrated fit); the latency terms are those of the chosen algorithm and the
    bytes the rest of the time at the route's rate (without a fit: the algorithm's own bytes).
    `route` is the group's (`Cluster.route`: rate and alpha are `group_link`'s).
    """
    if n <= 1 or size <= 0:
        return Collective(kind, size, n, ())
    key = (id(hw), kind, float(size), int(n), int(stride), id(route))
    hit = _FOR_GROUP.get(key)
    if hit is not None and hit[0] is hw and hit[1] is route:
        return hit[2]
    if len(_FOR_GROUP) > 4096:
        _FOR_GROUP.clear()
    coll = _for_group(hw, kind, size, n, stride, route)
    _FOR_GROUP[key] = (hw, route, coll)  # the references keep both ids from being reused
    return coll


_FOR_GROUP: dict[tuple, tuple[HardwareProfile, Route, Collective]] = {}
"""`for_group`'s answers (a step prices the same layer and send collectives many times)."""


def _for_group(
    hw: HardwareProfile, kind: str, size: float, n: int, stride: int, route: Route
) -> Collective:
    t0 = float(group_collective_time(hw, kind, size, n, stride))
    steps = float(latency_steps(kind, n))
    algorithm = "ring"
    if kind == "all_reduce" and tree_is_faster(size, n, route):
        steps, algorithm = float(tree_latency_steps(n)), "tree"
    latency = float(collective_latency(hw, kind, n, stride, t0, steps))  # = steps x route alpha
    nbytes = (t0 - latency) * route.rate
    return Collective(kind, size, n, (Phase(latency, nbytes, route),), algorithm)


def run(
    env: simpy.Environment, net: Network | None, coll: Collective
) -> Generator[simpy.Event, Any, None]:
    """Execute `coll`: latency, then its bytes; on `net` (fair sharing) or alone (`net` None)."""
    if net is None:
        t = coll.uncontended_s
        if t > 0:
            yield env.timeout(t)
        return
    for ph in coll.phases:
        if ph.latency_s > 0:
            yield env.timeout(ph.latency_s)
        if ph.nbytes > 0:
            if ph.route.path:
                yield net.transfer(ph.route.path, ph.nbytes, cap=ph.route.rate)
            else:
                yield env.timeout(ph.nbytes / ph.route.rate)
