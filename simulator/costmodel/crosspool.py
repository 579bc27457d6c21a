"""The link between two pools: what a pipeline send that crosses from one pool to the next pays.

Scenario: two pools of different GPUs in one data centre, each with its own scale-out fabric,
joined by a pool-to-pool uplink (the aggregation layer above the two fabrics). A pipeline send
from a rank of pool A to its neighbour stage in pool B leaves through A's NICs, crosses the
uplink and enters through B's NICs. Every rank of that stage boundary (tp x cp x dp of them)
sends at once, in the same direction (activations forward, gradients backward), so each gets

    rate = min(A's NIC share per GPU, B's NIC share per GPU, uplink / senders)

(the NIC share per GPU as the one-pool model prices a pipeline send: the node's NICs over its
GPUs, over the fabric's oversubscription, `costmodel.network.group_link`), and pays the larger
of the two fabrics' latencies. The uplink is a per-direction bandwidth in bytes/s.

Default uplink: the smaller pool's total scale-out bandwidth over ``UPLINK_OVERSUBSCRIPTION``.
Data-centre fabrics oversubscribe the layer that joins separately built GPU fabrics: Meta
joins its non-blocking "AI zones" through an aggregator (ATSW) layer that is deliberately
oversubscribed, and places jobs so that little traffic crosses it (Gangidi et al., "RDMA over
Ethernet for Distributed AI Training at Meta Scale", SIGCOMM 2024, Sec. 3). The ratio 7 is
llmcap's assumption for such a layer, not a measured figure; give the real uplink when known.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile

UPLINK_OVERSUBSCRIPTION = 7.0
"""Default pool-to-pool oversubscription (dimensionless): an assumption, see the module
docstring (cross-zone aggregation layers are oversubscribed; Gangidi et al. SIGCOMM 2024)."""


@dataclass(frozen=True)
class PoolLink:
    """The pool-to-pool uplink: bandwidth per direction (bytes/s) and where the figure came
    from."""

    bandwidth_bytes_per_s: float
    source: str

    def __post_init__(self) -> None:
        bw = self.bandwidth_bytes_per_s
        if not (isinstance(bw, (int, float)) and bw > 0 and bw < float("inf")):
            raise UserError("pool_uplink", bw, "must be a finite bandwidth > 0 (bytes/s)")


def nic_share_per_gpu(hw: HardwareProfile) -> float:
    """Scale-out bytes/s per GPU per direction for a pipeline send (one GPU of the node's
    group; `group_link` with k_local = 1)."""
    node = hw.node
    return (
        node.scale_out.effective_bandwidth
        * node.nics_per_node
        / node.gpus_per_node
        / hw.fabric.oversubscription
    )


def default_uplink(pools: list[tuple[HardwareProfile, int]]) -> PoolLink:
    """The default uplink for pools (profile, GPUs): the smallest pool's NICs over
    `UPLINK_OVERSUBSCRIPTION`."""
    totals = [hw.node.scale_out_bytes_per_s * gpus / hw.node.gpus_per_node for hw, gpus in pools]
    bw = min(totals) / UPLINK_OVERSUBSCRIPTION
    return PoolLink(
        bw,
        f"default: the smallest pool's scale-out ({min(totals) / 1e9:.0f} GB/s) over "
        f"{UPLINK_OVERSUBSCRIPTION:g}:1 (assumed oversubscribed aggregation layer; Gangidi et "
        "al. SIGCOMM 2024)",
    )


def cross_rate(
    a: HardwareProfile, b: HardwareProfile, senders: int, uplink: PoolLink
) -> tuple[float, float]:
    """(bytes/s per rank per direction, latency s) of a send from pool `a` to pool `b` while
    `senders` ranks cross at once."""
    if senders < 1:
        raise UserError("senders", senders, "must be >= 1")
    rate = min(nic_share_per_gpu(a), nic_share_per_gpu(b), uplink.bandwidth_bytes_per_s / senders)
    return rate, max(a.node.scale_out.latency_s, b.node.scale_out.latency_s)


def cross_send_time(
    a: HardwareProfile, b: HardwareProfile, size_bytes: float, senders: int, uplink: PoolLink
) -> float:
    """Seconds for one pipeline send of `size_bytes` across the pools, uncontended."""
    rate, latency = cross_rate(a, b, senders, uplink)
    return latency + size_bytes / rate


def uplink_limited(a: HardwareProfile, b: HardwareProfile, senders: int, uplink: PoolLink) -> bool:
    """True when the uplink, not a NIC, sets the crossing rate."""
    return uplink.bandwidth_bytes_per_s / senders < min(nic_share_per_gpu(a), nic_share_per_gpu(b))
