"""Nodes, their links and the cluster fabric; where ranks sit and how a group's bytes travel.

Scenario: `num_gpus` accelerators in nodes of `gpus_per_node`. Each accelerator has one port
into the node's scale-up fabric (NVLink/NVSwitch, xGMI, PCIe); each node has its NICs (pooled:
NCCL spreads a group's channels over all of them) into the cluster fabric. A fat-tree with
oversubscription gives each node a share of its leaf's uplinks of ``NICs / oversubscription``;
a rail-optimised fabric connects NIC *i* of every node to rail switch *i*, so rail-aligned
traffic (same local GPU index, which NCCL's rings and PXN arrange) never crosses the spine.

Ranks are placed as Megatron places them (order tp, cp, dp, pp: tensor-parallel ranks adjacent,
so TP stays inside a node); the order is a parameter. A `Route` says which link directions one
representative rank's share of a group's traffic crosses, with the weight on each (how many
identical flows of symmetric ranks it stands for), and its uncontended rate, which is exactly
the closed form's group bandwidth (`simulator.costmodel.network.group_link`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from simulator.costmodel.network import group_link, group_span
from simulator.des.link import Channel, Link

DIMS = ("tp", "cp", "dp", "pp")
MEGATRON_ORDER = ("tp", "cp", "dp", "pp")
"""Megatron-LM's rank order (`RankGenerator` order "tp-cp-ep-dp-pp" without experts)."""


@dataclass(frozen=True)
class Placement:
    """Which global rank a (tp, cp, dp, pp) coordinate gets: the first dim varies fastest."""

    sizes: tuple[int, int, int, int]
    """Degrees in `DIMS` order (tp, cp, dp, pp)."""
    order: tuple[str, ...] = MEGATRON_ORDER

    def __post_init__(self) -> None:
        if sorted(self.order) != sorted(DIMS):
            raise UserError(f"placement: order {self.order} must be a permutation of {DIMS}")
        if any(s < 1 for s in self.sizes):
            raise UserError(f"placement: sizes {self.sizes} must all be >= 1")

    @classmethod
    def parse(cls, sizes: tuple[int, int, int, int], order: str | None) -> Placement:
        """`order` like "tp-cp-dp-pp" (None: Megatron's)."""
        if order is None:
            return cls(sizes)
        return cls(sizes, tuple(o.strip() for o in order.replace(",", "-").split("-")))

    def size(self, dim: str) -> int:
        return self.sizes[DIMS.index(dim)]

    def stride(self, dim: str) -> int:
        """Rank distance between neighbours of a `dim` group."""
        out = 1
        for d in self.order:
            if d == dim:
                return out
            out *= self.size(d)
        raise ValueError(f"placement: unknown dim {dim!r}")

    def rank(self, tp: int = 0, cp: int = 0, dp: int = 0, pp: int = 0) -> int:
        coords = {"tp": tp, "cp": cp, "dp": dp, "pp": pp}
        return sum(coords[d] * self.stride(d) for d in DIMS)


@dataclass(frozen=True)
class Route:
    """How one representative rank's share of a group's traffic crosses the cluster."""

    path: tuple[Channel, ...]
    rate: float
    """Uncontended bytes/s per direction (the closed form's group bus bandwidth)."""
    latency_s: float
    """Per-step latency (alpha) of the group's links."""
    nodes: int
    """Nodes the group spans."""


class Cluster:
    """The links of one simulated cluster, created on first use (only those a run touches)."""

    def __init__(self, hw: HardwareProfile, placement: Placement) -> None:
        self.hw = hw
        self.placement = placement
        self.gpn = hw.node.gpus_per_node
        self._links: dict[str, Link] = {}
        self._routes: dict[tuple[int, int, int, int], Route] = {}
        self._users: dict[tuple[int, str], set[object]] = {}
        self._private: dict[int, bool] = {}

    def _link(self, name: str, bandwidth: float, latency: float) -> Link:
        if name not in self._links:
            self._links[name] = Link(name, bandwidth, latency)
        return self._links[name]

    def node_of(self, rank: int) -> int:
        return rank // self.gpn

    def port(self, rank: int) -> Link:
        """The accelerator's port into its node's scale-up fabric."""
        su = self.hw.node.scale_up
        return self._link(
            f"node{self.node_of(rank)}/gpu{rank % self.gpn}/{su.name}",
            su.effective_bandwidth,
            su.latency_s,
        )

    def nics(self, node: int) -> Link:
        """All NICs of a node, pooled (NCCL runs one channel per NIC)."""
        so = self.hw.node.scale_out
        return self._link(f"node{node}/nics", self.hw.node.scale_out_bytes_per_s, so.latency_s)

    def uplink(self, node: int) -> Link | None:
        """The node's share of its leaf's uplinks, when the fat-tree is oversubscribed."""
        fab = self.hw.fabric
        if fab.oversubscription <= 1.0:
            return None
        bw = self.hw.node.scale_out_bytes_per_s / fab.oversubscription
        return self._link(f"node{node}/leaf-uplink", bw, 0.0)

    def _crosses_spine(self, rail_aligned: bool) -> bool:
        if self.hw.fabric.topology == "rail-optimized":
            return not rail_aligned
        return True

    def group_route(self, rank: int, dim: str, user: object = None) -> Route:
        """Route of `rank`'s share of its `dim` group's collectives, used by `user`."""
        n, stride = self.placement.size(dim), self.placement.stride(dim)
        key = (rank, -1, n, stride)
        if key not in self._routes:
            self._routes[key] = self.route(rank, n, stride, rail_aligned=True)
        return self.use(self._routes[key], user)

    def strided_route(self, rank: int, n: int, stride: int, user: object = None) -> Route:
        """Route of a group of `n` ranks `stride` apart that is not one of the placement's
        dims: a mixture-of-experts model's expert-parallel group (`etp` apart) and expert
        data-parallel group (`etp * ep` apart), Megatron-Core's expert order tp-ep-dp."""
        key = (rank, -1, n, stride)
        if key not in self._routes:
            self._routes[key] = self.route(rank, n, stride, rail_aligned=True)
        return self.use(self._routes[key], user)

    def p2p_route(self, src: int, dst: int, user: object = None) -> Route:
        """Route of a pipeline send from `src` to `dst` (stride = their rank distance)."""
        key = (src, dst, 2, abs(dst - src))
        if key not in self._routes:
            aligned = (src % self.gpn) == (dst % self.gpn)
            self._routes[key] = self.route(src, 2, abs(dst - src), aligned, peer=dst)
        return self.use(self._routes[key], user)

    # ---- who uses which link (contention is only possible between different users) ----
    def use(self, route: Route, user: object) -> Route:
        """Declare that `user` (a serial stream) sends on `route`; returns the route."""
        if user is not None:
            for link, d, _w in route.path:
                self._users.setdefault((id(link), d), set()).add(user)
        return route

    def private(self, route: Route) -> bool:
        """True when one user alone sends on every link of `route`: no flow can ever share
        them, so a transfer there takes its uncontended time (decided on first call, after
        every user has been declared)."""
        key = id(route)
        if key not in self._private:
            self._private[key] = all(
                len(self._users.get((id(link), d), ())) <= 1 for link, d, _w in route.path
            )
        return self._private[key]

    def route(
        self, rank: int, n: int, stride: int, rail_aligned: bool, peer: int | None = None
    ) -> Route:
        bw, alpha, n_nodes = (float(x) for x in group_link(self.hw, n, stride))
        if n <= 1:
            return Route((), bw, 0.0, 1)
        k_local = float(group_span(n, stride, self.gpn)[0])
        port = self.port(rank)
        if n_nodes <= 1 and (peer is None or self.node_of(peer) == self.node_of(rank)):
            dst_port = port if peer is None else self.port(peer)
            return Route(((port, "tx", 1.0), (dst_port, "rx", 1.0)), bw, alpha, 1)
        # every group of this kind on the node communicates at once (symmetric layouts):
        # the representative stands for gpn / k_local flows on the node's NICs
        w = self.gpn / k_local
        node = self.node_of(rank)
        far = node if peer is None else self.node_of(peer)
        path: list[Channel] = [(self.nics(node), "tx", w), (self.nics(far), "rx", w)]
        if self._crosses_spine(rail_aligned):
            up, down = self.uplink(node), self.uplink(far)
            if up is not None and down is not None:
                path += [(up, "tx", w), (down, "rx", w)]
        if k_local > 1:
            path += [(port, "tx", 1.0), (port, "rx", 1.0)]
        return Route(tuple(path), bw, alpha, math.ceil(n_nodes))

    def links(self) -> list[Link]:
        return list(self._links.values())
