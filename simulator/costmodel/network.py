"""Which links a parallel group crosses, and the bandwidth it gets on them.

Ranks are placed as Megatron places them (order tp, cp, dp, pp: tensor-parallel ranks are
adjacent, so TP stays inside a node, then CP, DP and PP groups stride across nodes). For a
group of `size` ranks whose members are `stride` ranks apart on nodes of `gpn` GPUs:

- `k_local` members share a node, the group spans `n_nodes` nodes;
- inside a node each rank has its scale-up link (NVLink/NVSwitch, xGMI, PCIe);
- across nodes the node's NICs are shared by the gpn / k_local groups of the same kind that
  communicate at the same time (symmetric layouts do), so a group gets
  ``nics * nic_bw * k_local / gpn`` of bus bandwidth (NCCL runs one ring channel per NIC),
  divided by the fabric's oversubscription, and never more than the scale-up bandwidth.
"""

from __future__ import annotations

import numpy as np

from hwprofiles.profile import HardwareProfile
from simulator.costmodel.collectives import collective_time, fitted_time, latency_steps
from simulator.costmodel.nccl import ALGORITHMS, generation, nccl_time
from simulator.costmodel.ops import Num


def group_span(size: Num, stride: Num, gpn: int) -> tuple[Num, Num]:
    """(members per node, nodes spanned) of a group with this size and rank stride."""
    size = np.asarray(size, dtype=float)
    stride = np.asarray(stride, dtype=float)
    k_local = np.where(stride >= gpn, 1.0, np.minimum(size, np.floor(gpn / stride)))
    k_local = np.maximum(k_local, 1.0)
    return k_local, np.ceil(size / k_local)


def group_link(hw: HardwareProfile, size: Num, stride: Num) -> tuple[Num, Num, Num]:
    """(bus bandwidth per rank per direction, latency, nodes spanned) for a group."""
    node = hw.node
    gpn = node.gpus_per_node
    k_local, n_nodes = group_span(size, stride, gpn)
    intra_bw = node.scale_up.effective_bandwidth
    inter_bw = (
        node.scale_out.effective_bandwidth
        * node.nics_per_node
        * k_local
        / gpn
        / hw.fabric.oversubscription
    )
    inter_bw = np.where(k_local > 1, np.minimum(inter_bw, intra_bw), inter_bw)
    bw = np.where(n_nodes > 1, inter_bw, intra_bw)
    alpha = np.where(n_nodes > 1, node.scale_out.latency_s, node.scale_up.latency_s)
    return bw, alpha, n_nodes


NCCL_LINKS = ("nvlink", "pcie", "xgmi")
"""Scale-up links NCCL (RCCL on xGMI) drives with its own algorithms; others (`shm`, a user's
or a test's link) are priced by their alpha-beta inside a node."""


def nccl_inside(hw: HardwareProfile) -> bool:
    """True when collectives inside a node run through NCCL's algorithms (`costmodel.nccl`)."""
    return hw.collective_backend == "nccl" and hw.node.scale_up.name.startswith(NCCL_LINKS)


def group_collective_time(
    hw: HardwareProfile,
    collective: str,
    size_bytes: Num,
    n: Num,
    stride: Num,
    algos: frozenset[str] = ALGORITHMS,
) -> Num:
    """Seconds for one collective of a parallel group, uncontended.

    All-reduce, all-gather and reduce-scatter run as NCCL runs them (`costmodel.nccl`) on the
    links NCCL drives; broadcast, send/recv and host/user links use the link's alpha-beta. A
    calibrated profile's measured fit for (collective, n) is used for groups inside one node.
    `algos` restricts NCCL's choice (as NCCL_ALGO). Both engines price collectives with this
    function (the SimPy engine sizes its transfers from it, `simulator.des.collectives`).
    """
    collective = hw.collective_as_run(collective)  # gloo's reduce-scatter (hwprofiles.host)
    bw, alpha, n_nodes = group_link(hw, n, stride)
    across = np.asarray(n_nodes) > 1
    inside = nccl_inside(hw)
    by_nccl = collective in ("all_reduce", "all_gather", "reduce_scatter")
    # the link's alpha-beta, where NCCL does not price every group
    t = None if by_nccl and inside else collective_time(collective, size_bytes, n, bw, alpha)
    if by_nccl and (inside or np.any(across)):
        # the collective as NCCL runs it: its fastest algorithm (ring, tree, NVLS, NVLS-tree)
        # and protocol, with NCCL's base and per-step latencies (costmodel.nccl); inside a node
        # only on links NCCL drives (NVLink, PCIe, xGMI), a user or host link keeps alpha-beta
        node = hw.node
        k_local, _ = group_span(n, stride, node.gpus_per_node)
        nccl = nccl_time(
            collective, size_bytes, n, k_local, n_nodes, bw,
            node.scale_up.effective_bandwidth, node.scale_up.latency_s,
            node.scale_out.latency_s, node.scale_up.name,
            generation(hw.accelerator.name, node.scale_up.name), algos,
        )  # fmt: skip
        t = np.where(across, nccl, nccl if inside else t)
    if not hw.collectives:
        return t
    n_arr = np.asarray(n, dtype=float)
    for fit in hw.collectives:
        if fit.collective != collective:
            continue
        use = (n_arr == fit.world_size) & (np.asarray(n_nodes) == 1)
        t = np.where(use, fitted_time(fit.alpha_s, fit.beta_s_per_byte, size_bytes), t)
    return t


def collective_latency(
    hw: HardwareProfile, collective: str, n: Num, stride: Num, t: Num, steps: Num | None = None
) -> Num:
    """Rule "latency part": the seconds of a `t`-second collective of a group that are its
    latency terms, not bytes on the link: the algorithm's steps (`latency_steps`, a ring's
    n - 1; `steps` for another algorithm) x the group link's per-step latency (`group_link`),
    at most `t`. The rest of `t` is bytes at the link's rate. Both engines split a
    collective this way: the SimPy engine's phase (`simulator.des.collectives.for_group`)
    and the closed form's link time of ZeRO-3's two streams (`analysis.step_comm`), where
    the latency terms of concurrent collectives run side by side and only the bytes share
    the link. (A 1-byte collective's time is not it: NCCL picks another protocol and
    algorithm there, with lower latency than the bandwidth-bound ring at size.)"""
    alpha = group_link(hw, n, stride)[1]
    k = latency_steps(collective, n) if steps is None else steps
    return np.minimum(k * alpha, t)


def p2p_time(hw: HardwareProfile, size_bytes: Num, stride: Num) -> Num:
    """Seconds for one pipeline send/recv between ranks `stride` apart."""
    return group_collective_time(hw, "send_recv", size_bytes, 2, stride)


def alltoall_time(hw: HardwareProfile, size_bytes: Num, n: Num, stride: Num) -> Num:
    """Seconds for one all-to-all of a group of `n` ranks `stride` apart, uncontended; each
    rank holds `size_bytes` (nccl-tests' size: (n-1)/n of it goes to the other ranks).

    NCCL runs an all-to-all as one grouped send/recv to every peer, all posted at once, so it
    pays one latency of the slowest link it crosses. The peers on the rank's own node (the
    NVLink domain) get ``size (k_local - 1) / n`` over the scale-up link; the peers on other
    nodes get ``size (n - k_local) / n`` through the rank's share of the node's NICs (every rank
    of the node sends at once: nics x NIC bandwidth / gpus per node, over the fabric's
    oversubscription). The two parts use different links and run concurrently.
    """
    node = hw.node
    n_arr = np.asarray(n, dtype=float)
    k_local, n_nodes = group_span(n_arr, stride, node.gpus_per_node)
    nic = (
        node.scale_out.effective_bandwidth
        * node.nics_per_node
        / node.gpus_per_node
        / hw.fabric.oversubscription
    )
    intra = size_bytes * (k_local - 1) / np.maximum(n_arr, 1) / node.scale_up.effective_bandwidth
    inter = size_bytes * (n_arr - k_local) / np.maximum(n_arr, 1) / nic
    alpha = np.where(n_nodes > 1, node.scale_out.latency_s, node.scale_up.latency_s)
    return np.where(n_arr > 1, alpha + np.maximum(intra, inter), 0.0)
