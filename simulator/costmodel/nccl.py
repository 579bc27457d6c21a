"""NCCL's ring protocols (LL, LL128, Simple): base latency, per-step latency and bandwidth
share, and the pick NCCL's tuner makes (the fastest). Numbers from NCCL's own cost model,
src/graph/tuning.cc (NVIDIA/nccl, 2.1x series: `baseLat`, `hwLat`, the busBw refinements in
`ncclTopoTuneModel` and the ring plateau in `ncclTopoGetAlgoTime`).

The catalogue's link latency (`Link.latency_s`) is NCCL's LL per-step latency of that link
class; LL128 and Simple scale it by NCCL's ratios for the class, so a calibrated or user link
keeps its own alpha. Small messages pay LL's base latency and half-or-less bandwidth; large
ones Simple's longer per-step latency (9.6 us per network step), which is what makes rings
of thousands of ranks latency-bound.
"""

from __future__ import annotations

import numpy as np

from simulator.costmodel.collectives import bus_factor, latency_steps
from simulator.costmodel.ops import Num

PROTOCOLS = ("LL", "LL128", "Simple")
BASE_LAT_S = {"LL": 3.6e-6, "LL128": 10.0e-6, "Simple": 8.4e-6}
"""tuning.cc baseLat[Ring][LL, LL128, Simple] (us -> s): fixed cost of one ring collective."""
HW_LAT_US = {
    "nvlink": {"LL": 0.47, "LL128": 1.9, "Simple": 3.4},
    "pci": {"LL": 1.0, "LL128": 2.5, "Simple": 5.7},
    "net": {"LL": 2.7, "LL128": 4.0, "Simple": 9.6},
}
"""tuning.cc hwLat[NVLINK|PCI|NET][Ring][LL, LL128, Simple] in us per ring step; used here as
ratios to the LL figure, which is the catalogue link's own latency."""
RING_PLATEAU = 1.9
"""tuning.cc ncclTopoGetAlgoTime: a multi-node ring all-reduce with Simple on a buffer of at
least nRanks/16 x 64 KiB has its latency x 1.9 ("plateau effect of ring")."""


def bw_share(protocol: str, collective: str, n_nodes: Num) -> Num:
    """Share of the link's bus bandwidth the protocol moves data at (tuning.cc: LL busBw x 1/4
    for all-reduce or across nodes, else 1/3; LL128 x 0.92 = 120/128; Simple 1)."""
    if protocol == "LL":
        multi = (np.asarray(n_nodes) > 1) | (collective == "all_reduce")
        return np.where(multi, 0.25, 1.0 / 3.0)
    if protocol == "LL128":
        return 0.92
    return 1.0


def _intra_class(scale_up_name: str) -> str:
    return "pci" if scale_up_name.startswith("pcie") else "nvlink"


def ring_protocol_time(
    collective: str,
    size_bytes: Num,
    n: Num,
    n_nodes: Num,
    bw: Num,
    intra_ll: Num,
    inter_ll: Num,
    intra_cls: str,
) -> Num:
    """Fastest of NCCL's three ring protocols (s): base + per-step latency + bytes at the
    protocol's bandwidth share. Steps crossing nodes pay the network's latency, the others the
    scale-up link's ((nsteps - nInterSteps) intra + nInterSteps inter, tuning.cc). LL128 is
    left out across nodes (NCCL enables it by default only on NVLink rings, protoEnable)."""
    n = np.asarray(n, dtype=float)
    nodes = np.asarray(n_nodes, dtype=float)
    steps = latency_steps(collective, n)
    inter_steps = latency_steps(collective, nodes)
    factor = bus_factor(collective, n)
    best = None
    for p in PROTOCOLS:
        intra = intra_ll * HW_LAT_US[intra_cls][p] / HW_LAT_US[intra_cls]["LL"]
        inter = inter_ll * HW_LAT_US["net"][p] / HW_LAT_US["net"]["LL"]
        if p == "LL":
            intra = np.where(nodes > 1, intra * 1.8, intra)  # tuning.cc: LL intraLat x 1.8
        lat = BASE_LAT_S[p] + (steps - inter_steps) * intra + inter_steps * inter
        if p == "Simple" and collective == "all_reduce":
            big = np.asarray(size_bytes) >= n / 16.0 * 65536
            lat = np.where((nodes > 1) & big, lat * RING_PLATEAU, lat)
        t = lat + size_bytes * factor / (bw * bw_share(p, collective, nodes))
        if p == "LL128":
            t = np.where(nodes > 1, np.inf, t)
        best = t if best is None else np.minimum(best, t)
    return best


TREE_BASE_LAT_S = {"LL": 4.4e-6, "LL128": 4.4e-6, "Simple": 0.0}
"""tuning.cc baseLat[Tree][LL, LL128, Simple] (us -> s)."""
TREE_HW_LAT_US = {
    "nvlink": {"LL": 0.52, "LL128": 1.2, "Simple": 28.0},
    "pci": {"LL": 1.0, "LL128": 1.9, "Simple": 28.0},
    "net": {"LL": 5.0, "LL128": 8.5, "Simple": 50.0},
}
"""tuning.cc hwLat[NVLINK|PCI|NET][Tree][LL, LL128, Simple] in us per tree step."""
TREE_BW_SHARE = {"LL": 0.9 / 3.8, "LL128": 0.9 * 7.0 / 9.0, "Simple": 0.9}
"""tuning.cc: tree busBw x 0.9, then LL x 1/3.8 and LL128 x 7/9 (single-node figure)."""


def tree_protocol_time(
    size_bytes: Num,
    k_local: Num,
    n_nodes: Num,
    bw: Num,
    intra_ll: Num,
    inter_ll: Num,
    intra_cls: str,
) -> Num:
    """Fastest of NCCL's tree protocols for an all-reduce (s): base + 2 x ((ranks per node - 1)
    intra steps + log2(nodes) inter steps) of latency (tuning.cc), and twice the buffer at the
    protocol's share of the bandwidth (the reduce up and the broadcast down)."""
    k = np.asarray(k_local, dtype=float)
    nodes = np.asarray(n_nodes, dtype=float)
    log_nodes = np.floor(np.log2(np.maximum(nodes, 1.0)))
    best = None
    for p in PROTOCOLS:
        intra = intra_ll * TREE_HW_LAT_US[intra_cls][p] / HW_LAT_US[intra_cls]["LL"]
        inter = inter_ll * TREE_HW_LAT_US["net"][p] / HW_LAT_US["net"]["LL"]
        lat = TREE_BASE_LAT_S[p] + 2 * ((k - 1) * intra + log_nodes * inter)
        t = lat + 2.0 * size_bytes / (bw * TREE_BW_SHARE[p])
        best = t if best is None else np.minimum(best, t)
    return best


def nccl_time(
    collective: str,
    size_bytes: Num,
    n: Num,
    k_local: Num,
    n_nodes: Num,
    bw: Num,
    intra_ll: float,
    inter_ll: float,
    scale_up_name: str,
) -> Num:
    """One all-reduce / all-gather / reduce-scatter as NCCL's tuner prices it: the ring's best
    protocol, and for all-reduce the tree's too, whichever is faster (s; 0 for one rank)."""
    cls = _intra_class(scale_up_name)
    t = ring_protocol_time(collective, size_bytes, n, n_nodes, bw, intra_ll, inter_ll, cls)
    if collective == "all_reduce":
        tree = tree_protocol_time(size_bytes, k_local, n_nodes, bw, intra_ll, inter_ll, cls)
        t = np.minimum(t, tree)
    return np.where(np.asarray(n, dtype=float) > 1, t, 0.0)
