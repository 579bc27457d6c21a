"""NCCL's collective algorithms and protocols, priced the way NCCL's own tuner prices them.

Constants are NCCL's published tuning model, src/graph/tuning.cc of NVIDIA/nccl at tag
v2.27.7-1 (the release the 8x H200 sweep in `analysis/data/collective_rows.csv` ran):
`baseLat`, `hwLat`, `llMaxBws`, the busBw refinements of `ncclTopoTuneModel`, the tree
correction and ring plateau of `ncclTopoGetAlgoTime`. The NVLS efficiency is `nvlsEfficiency`
of the same file at v2.30.x (NVIDIA/nccl master, 2026), where NCCL first writes it as its own
constant. Latencies in NCCL are in us; here in s.

Algorithms (NCCL picks the fastest enabled one, per message size):
- ring, protocols LL / LL128 / Simple: ``base + steps * hop + bytes * busfactor / (bw * share)``;
- tree (all-reduce): a double binary tree across nodes, a chain inside; each node's NICs carry
  the whole buffer once per direction on 2 nodes and twice on more (every node is an inner
  node of one tree and a leaf of the other), each GPU's link twice (reduce up, broadcast down);
- NVLS (NVLink SHARP, `simulator.costmodel.nvls`): reduction in the NVSwitch, one node;
- NVLS-tree: NVLS inside each node, the tree across nodes.

The catalogue link latency (`Link.latency_s`) is NCCL's ring LL hop of that link class; the
other (algorithm, protocol) hops scale it by NCCL's ratios, so a calibrated link keeps its alpha.
"""

from __future__ import annotations

import numpy as np

from simulator.costmodel.collectives import bus_factor, latency_steps
from simulator.costmodel.nvls import nvls_time, nvls_tree_time
from simulator.costmodel.ops import Num

PROTOCOLS = ("LL", "LL128", "Simple")
ALGORITHMS = frozenset({"ring", "tree", "nvls", "nvls_tree"})
BASE_LAT_US = {
    "ring": {"LL": 6.6, "LL128": 14.0, "Simple": 8.4},
    "tree": {"LL": 6.8, "LL128": 14.0, "Simple": 8.4},
}
"""tuning.cc v2.27.7 baseLat[Tree|Ring][LL, LL128, Simple] (us): fixed cost of one collective."""
HW_LAT_US = {
    "nvlink": {"ring": {"LL": 0.6, "LL128": 1.9, "Simple": 3.4},
               "tree": {"LL": 0.6, "LL128": 1.25, "Simple": 4.0}},
    "pci": {"ring": {"LL": 1.0, "LL128": 2.5, "Simple": 5.7},
            "tree": {"LL": 1.0, "LL128": 1.9, "Simple": 4.0}},
    "net": {"ring": {"LL": 2.7, "LL128": 4.0, "Simple": 14.0},
            "tree": {"LL": 5.0, "LL128": 8.5, "Simple": 14.0}},
}  # fmt: skip
"""tuning.cc v2.27.7 hwLat[NVLINK|PCI|NET][Tree|Ring][LL, LL128, Simple] (us per step)."""
NET_OVERHEAD_US = 1.0
"""tuning.cc v2.27.7 getNetOverhead: 1 us per network post on Intel x86 hosts (2 us on AMD),
x3 for Simple; a multi-node ring pays it on every step (intraLat = max(intraLat, overhead))."""
RING_PLATEAU = {"volta": 1.9, "ampere": 1.4, "hopper": 1.4, "blackwell": 1.4}
"""tuning.cc v2.27.7 ncclTopoGetAlgoTime: a multi-node ring all-reduce with Simple has its
latency x 1.9 (compute capability < 8.0) or x 1.4 ("plateau effect of ring")."""
LL_MAX_BW = {"volta": 39.0e9, "ampere": 87.7e9, "hopper": 141.0e9, "blackwell": 282.0e9}
"""tuning.cc v2.27.7 llMaxBws[gen][N1] (GB/s -> B/s): LL's ceiling inside one node."""
LL_MAX_BW_NET = {2: 39.0e9, 3: 20.4e9}
"""tuning.cc v2.27.7 llMaxBws[Intel][N2, N4]: LL's ceiling on 2 nodes, on more (Intel hosts)."""
TREE_CORRECTION = {
    "LL": (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0,
           1.0, 1.0, 1.0),
    "LL128": (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9,
              .9, .9, 1.0, 1.0),
    "Simple": (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7,
               .8, .9, .9),
}  # fmt: skip
"""tuning.cc v2.27.7 treeCorrectionFactor[protocol][log2(bytes / 64)]: measured tree bandwidth
relative to the model, 64 B .. 256 MiB (1.0 beyond)."""


def generation(accelerator_name: str, scale_up_name: str) -> str:
    """NCCL's compute-capability class of the GPU (volta/ampere/hopper/blackwell)."""
    a = accelerator_name.lower()
    for key, gen in (("v100", "volta"), ("a100", "ampere"), ("a800", "ampere"),
                     ("h100", "hopper"), ("h200", "hopper"), ("h800", "hopper"),
                     ("gh200", "hopper"), ("b200", "blackwell"), ("b300", "blackwell"),
                     ("gb200", "blackwell"), ("gb300", "blackwell")):  # fmt: skip
        if key in a:
            return gen
    by_link = {"nvlink2": "volta", "nvlink3": "ampere", "nvlink4": "hopper"}
    return by_link.get(scale_up_name, "blackwell" if scale_up_name == "nvlink5" else "hopper")


def hop(cls: str, algo: str, protocol: str, ll_hop: Num) -> Num:
    """Per-step latency (s) of `algo`/`protocol` on a link class whose ring LL hop is `ll_hop`."""
    return ll_hop * HW_LAT_US[cls][algo][protocol] / HW_LAT_US[cls]["ring"]["LL"]


def _ll_cap(gen: str, nodes: Num) -> Num:
    nodes = np.asarray(nodes, dtype=float)
    return np.where(
        nodes > 2, LL_MAX_BW_NET[3], np.where(nodes > 1, LL_MAX_BW_NET[2], LL_MAX_BW[gen])
    )


def ring_protocol_time(
    collective: str, size_bytes: Num, n: Num, n_nodes: Num, bw: Num,
    intra_ll: Num, inter_ll: Num, intra_cls: str, gen: str,
) -> Num:  # fmt: skip
    """Fastest of NCCL's three ring protocols (s). Steps that cross nodes pay the network hop,
    the others the scale-up hop, at least NCCL's network post overhead on a multi-node ring.
    LL moves data at half the bus bandwidth (8-byte lines carry a 4-byte flag) up to NCCL's LL
    ceiling, LL128 at 120/128 = 0.92 of it (tuning.cc); LL128 needs NVLink inside the node."""
    n = np.asarray(n, dtype=float)
    nodes = np.asarray(n_nodes, dtype=float)
    steps = latency_steps(collective, n)
    inter_steps = latency_steps(collective, nodes)
    factor = bus_factor(collective, n)
    best = None
    for p in PROTOCOLS:
        if p == "LL128" and intra_cls != "nvlink":
            continue
        intra = hop(intra_cls, "ring", p, intra_ll)
        overhead = NET_OVERHEAD_US * (3.0 if p == "Simple" else 1.0) * 1e-6
        intra = np.where(nodes > 1, np.maximum(intra, overhead), intra)
        inter = hop("net", "ring", p, inter_ll)
        lat = BASE_LAT_US["ring"][p] * 1e-6 + (steps - inter_steps) * intra + inter_steps * inter
        if p == "Simple" and collective == "all_reduce":
            lat = np.where(nodes > 1, lat * RING_PLATEAU[gen], lat)
        share = {"LL": 0.5, "LL128": 0.92, "Simple": 1.0}[p]
        eff = bw * share
        if p == "LL":
            eff = np.minimum(eff, _ll_cap(gen, nodes))
        t = lat + size_bytes * factor / eff
        best = t if best is None else np.minimum(best, t)
    return best


def tree_protocol_time(
    size_bytes: Num, k_local: Num, n_nodes: Num, bw: Num, intra_bw: Num,
    intra_ll: Num, inter_ll: Num, intra_cls: str, gen: str,
) -> tuple[Num, Num]:  # fmt: skip
    """NCCL's tree all-reduce, its protocol picked as NCCL's tuner picks it: (the tuner's time,
    the time it takes) in s. Latency (tuning.cc): base + 2 ((ranks per node - 1) intra hops +
    log2(nodes) network hops). The tuner's bandwidth: the group's bus bandwidth x 0.92, LL
    x 1/3.8, LL128 x 120/128 across nodes (7/9 inside), then half of it (two trees, up and
    down), with NCCL's measured size correction (treeCorrectionFactor). The time it takes: each
    GPU's link carries 2 x size (reduce up, broadcast down) and the node's NICs (`bw`, the
    group's share) size once per direction on 2 nodes (each node is the other's root), twice on
    more (every node is an inner node of one tree and a leaf of the other)."""
    k = np.asarray(k_local, dtype=float)
    nodes = np.asarray(n_nodes, dtype=float)
    log_nodes = np.floor(np.log2(np.maximum(nodes, 1.0)))
    nic = bw / np.where(nodes > 2, 2.0, 1.0)
    algbw = np.where(nodes > 1, np.minimum(intra_bw / 2.0, nic), intra_bw / 2.0)
    algbw = np.where(k > 1, algbw, nic)  # one GPU per node: no chain inside
    log_size = np.clip(np.floor(np.log2(np.maximum(np.asarray(size_bytes, float) / 64, 1))), 0, 23)
    idx = log_size.astype(int)
    best_model, best_phys = None, None
    for p in PROTOCOLS:
        if p == "LL128" and intra_cls != "nvlink":
            continue
        intra = hop(intra_cls, "tree", p, intra_ll)
        inter = hop("net", "tree", p, inter_ll)
        lat = BASE_LAT_US["tree"][p] * 1e-6 + 2 * ((k - 1) * intra + log_nodes * inter)
        share = 0.92 * {"LL": 1 / 3.8, "LL128": 1.0, "Simple": 1.0}[p]
        share = share * np.where(nodes > 1, 120 / 128, 7 / 9) if p == "LL128" else share
        corr = np.asarray(TREE_CORRECTION[p] + (1.0,))[idx]
        phys_bw, model_bw = algbw * share * corr, bw * share * corr / 2.0
        if p == "LL":
            phys_bw = np.minimum(phys_bw, _ll_cap(gen, nodes) / 2.0)
            model_bw = np.minimum(model_bw, _ll_cap(gen, nodes) / 2.0)
        t_model, t_phys = lat + size_bytes / model_bw, lat + size_bytes / phys_bw
        if best_model is None:
            best_model, best_phys = t_model, t_phys
        else:
            better = t_model < best_model
            best_model = np.where(better, t_model, best_model)
            best_phys = np.where(better, t_phys, best_phys)
    return best_model, best_phys


def nccl_time(
    collective: str, size_bytes: Num, n: Num, k_local: Num, n_nodes: Num, bw: Num,
    intra_bw: float, intra_ll: float, inter_ll: float, scale_up_name: str, gen: str,
    algos: frozenset[str] = ALGORITHMS,
) -> Num:  # fmt: skip
    """One all-reduce / all-gather / reduce-scatter as NCCL runs it (s; 0 for one rank): of ring
    (its best protocol), tree (all-reduce), NVLS and NVLS-tree where the node has NVLink SHARP,
    the one NCCL's tuner prices fastest, at the time that algorithm really takes (`pick`).
    `bw` is the group's bus bandwidth (the scale-up link inside a node, its share of the NICs
    across nodes), `intra_bw` the scale-up link's. `algos` restricts the choice as NCCL_ALGO
    does (the ring is always kept)."""
    cls = "pci" if scale_up_name.startswith("pcie") else "nvlink"
    ring = ring_protocol_time(collective, size_bytes, n, n_nodes, bw, intra_ll, inter_ll, cls, gen)
    candidates = [(ring, ring)]  # the ring's tuner time is its time
    if collective == "all_reduce" and "tree" in algos:
        candidates.append(
            tree_protocol_time(
                size_bytes, k_local, n_nodes, bw, intra_bw, intra_ll, inter_ll, cls, gen
            )
        )
    nv = nvls_time(collective, size_bytes, n, n_nodes, intra_bw, scale_up_name)
    if nv is not None and "nvls" in algos:
        candidates.append(nv)
    nt = nvls_tree_time(collective, size_bytes, k_local, n_nodes, intra_bw, bw, scale_up_name)
    if nt is not None and "nvls_tree" in algos:
        candidates.append(nt)
    t = pick(candidates)
    return np.where(np.asarray(n, dtype=float) > 1, t, 0.0)


def pick(candidates: list[tuple[Num, Num]]) -> Num:
    """The time of the candidate NCCL's tuner prices fastest: NCCL runs the algorithm its own
    model prefers (ncclTopoGetAlgoInfo), which is not always the one that would be fastest."""
    best_model, best = candidates[0]
    for model, phys in candidates[1:]:  # as argmin over them: the first minimum, a NaN first
        better = (model < best_model) | (np.isnan(model) & ~np.isnan(best_model))
        best_model, best = np.where(better, model, best_model), np.where(better, phys, best)
    return best
