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
formulas are not rewritten here: `for_group` takes the cost model's time of the collective
(`group_collective_time`, which also applies calibrated fits) and its latency terms, and sizes
the transfer so that the uncontended time is exactly the cost model's.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

from hwprofiles.profile import HardwareProfile
from simulator.costmodel.collectives import bus_factor, collective_time, latency_steps
from simulator.costmodel.network import group_collective_time
from simulator.des.link import Network
from simulator.des.topology import Route


@dataclass(frozen=True)
class Phase:
    """Latency, then bytes moved by the representative rank on `route`."""

    latency_s: float
    nbytes: float
    route: Route


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
        return self.size_bytes * float(bus_factor(self.kind, self.n)) if self.n > 1 else 0.0

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
    depth = math.ceil(math.log2(max(n, 2)))
    if detailed:
        half = Phase(depth * route.latency_s, size, route)
        return Collective("all_reduce", size, n, (half, half), "tree")
    return Collective(
        "all_reduce", size, n, (Phase(2 * depth * route.latency_s, 2 * size, route),), "tree"
    )


def hierarchical_all_reduce(
    size: float, k_local: int, n_nodes: int, intra: Route, inter: Route
) -> Collective:
    """Reduce-scatter inside the node, all-reduce of size/k across nodes, all-gather inside."""
    phases: list[Phase] = []
    if k_local > 1:
        phases += ring("reduce_scatter", size, k_local, intra).phases
    if n_nodes > 1:
        shard = size / k_local
        ring_t = float(collective_time("all_reduce", shard, n_nodes, inter.rate, inter.latency_s))
        tree = tree_all_reduce(shard, n_nodes, inter)
        use_tree = tree.uncontended_s < ring_t * (1 - 1e-12)
        phases += (tree if use_tree else ring("all_reduce", shard, n_nodes, inter)).phases
    if k_local > 1:
        phases += ring("all_gather", size, k_local, intra).phases
    return Collective("all_reduce", size, k_local * n_nodes, tuple(phases), "hierarchical")


def for_group(
    hw: HardwareProfile, kind: str, size: float, n: int, stride: int, route: Route
) -> Collective:
    """The collective the cost model prices for a parallel group, as one coalesced phase.

    Time on an uncontended route = `group_collective_time` (ring or tree, whichever it picks,
    or a calibrated fit); the latency terms are those of the chosen algorithm.
    """
    if n <= 1 or size <= 0:
        return Collective(kind, size, n, ())
    t0 = float(group_collective_time(hw, kind, size, n, stride))
    steps = float(latency_steps(kind, n))
    algorithm = "ring"
    if kind == "all_reduce":
        ring_t = float(collective_time(kind, size, n, route.rate, route.latency_s))
        tree_t = tree_all_reduce(size, n, route).uncontended_s
        if tree_t < ring_t:
            steps, algorithm = 2 * math.ceil(math.log2(max(n, 2))), "tree"
    latency = min(steps * route.latency_s, t0)
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
