"""Simulated nccl-tests: one collective (or several at once on the same links), timed.

Scenario: `n` ranks `stride` apart run `collective` on a buffer of `size_bytes` (nccl-tests
sizes: per-rank buffer for all-reduce and broadcast, gathered total for all-gather and
reduce-scatter); `concurrent` identical collectives start together and share the links, as
the rings of several groups on one node do. Reported as nccl-tests reports it: ``algbw =
size / time`` and ``busbw = algbw * factor`` (`simulator.costmodel.collectives`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import simpy

from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from simulator.costmodel.collectives import algbw, busbw
from simulator.costmodel.network import group_span
from simulator.des.collectives import (
    Collective,
    for_group,
    hierarchical_all_reduce,
    ring,
    run,
    tree_all_reduce,
)
from simulator.des.link import Network
from simulator.des.topology import Cluster, Placement

Algorithm = Literal["auto", "ring", "tree", "hierarchical"]


@dataclass(frozen=True)
class Measurement:
    """One simulated nccl-tests point."""

    collective: str
    algorithm: str
    size_bytes: float
    n: int
    time_s: float
    """Time of the slowest of the concurrent collectives."""
    times_s: tuple[float, ...]
    algbw_bytes_per_s: float
    busbw_bytes_per_s: float


def build(
    hw: HardwareProfile,
    collective: str,
    size_bytes: float,
    n: int,
    stride: int = 1,
    algorithm: Algorithm = "auto",
    detailed: bool = False,
    cluster: Cluster | None = None,
) -> Collective:
    """The collective of rank 0's group (`n` ranks, `stride` apart) as phases on its links."""
    cl = cluster or Cluster(hw, Placement((stride, 1, n, 1)))
    route = cl.group_route(0, "dp")
    if algorithm == "auto":
        return for_group(hw, collective, size_bytes, n, stride, route)
    if algorithm == "ring":
        return ring(collective, size_bytes, n, route, detailed)
    if collective != "all_reduce":
        raise UserError(f"algorithm: {algorithm!r} is for all_reduce, not {collective!r}")
    if algorithm == "tree":
        return tree_all_reduce(size_bytes, n, route, detailed)
    if algorithm == "hierarchical":
        gpn = hw.node.gpus_per_node
        k_local, n_nodes = (int(x) for x in group_span(n, stride, gpn))
        # inside: the k members of a node; across: every GPU of the node drives its shard
        intra = cl.route(0, k_local, stride, rail_aligned=True)
        inter = cl.route(0, n_nodes, gpn, rail_aligned=True)
        return hierarchical_all_reduce(size_bytes, k_local, n_nodes, intra, inter)
    raise UserError(f"algorithm: {algorithm!r} must be auto, ring, tree or hierarchical")


def measure(
    hw: HardwareProfile,
    collective: str,
    size_bytes: float,
    n: int,
    stride: int = 1,
    algorithm: Algorithm = "auto",
    concurrent: int = 1,
    contention: bool = True,
    detailed: bool = False,
) -> Measurement:
    """Simulate `concurrent` copies of one collective started together; time and bandwidth."""
    if concurrent < 1:
        raise UserError(f"concurrent: {concurrent} must be >= 1")
    coll = build(hw, collective, size_bytes, n, stride, algorithm, detailed)
    env = simpy.Environment()
    net = Network(env) if contention else None
    ends: list[float] = []

    def one() -> simpy.events.ProcessGenerator:
        yield from run(env, net, coll)
        ends.append(env.now)

    for _ in range(concurrent):
        env.process(one())
    env.run()
    t = max(ends) if ends else 0.0
    return Measurement(
        collective,
        coll.algorithm,
        size_bytes,
        n,
        t,
        tuple(ends),
        algbw(size_bytes, t) if t > 0 else 0.0,
        busbw(collective, size_bytes, t, n) if t > 0 else 0.0,
    )
