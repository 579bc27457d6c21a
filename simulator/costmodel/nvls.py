"""NVLink SHARP (NVLS): collectives reduced inside the NVSwitch (H100/H200/B200 nodes, NVL72).

Mechanism (NVIDIA, "NVLink SHARP" in the NVSwitch 3 / Hopper architecture whitepaper, 2022;
NCCL 2.17 release notes, NVLS algorithm): a GPU reads its 1/n shard of the buffer with one
`multimem.ld_reduce`, the switch fetches that shard from all n GPUs and returns the sum, then
the GPU writes the reduced shard with one `multimem.st` that the switch multicasts to all n.
Per GPU and per direction its NVLink port carries size x (1 + 1/n) bytes (its whole buffer out
to the switch's reads plus its shard's store; the reduced shard plus every shard's multicast
in), against 2 (n-1)/n x size for a ring all-reduce: 1.75/1.125 = 1.56x fewer at n = 8. An
all-gather or reduce-scatter still moves (n-1)/n x size into (or out of) every GPU, as a ring
does; NVLS only shortens its latency there.

Efficiency: the switch path does not reach the link rate a ring reaches; NCCL's tuner carries
that as `nvlsEfficiency` (src/graph/tuning.cc, NVIDIA/nccl v2.30: Hopper 0.85, Blackwell 0.74,
none before Hopper), applied here to the catalogue's ring-effective NVLink bandwidth.
Pipeline: NVLS runs in loops of channels x heads chunks through 2-4 warp-group stages; the
chunk shrinks for mid-size buffers (enqueue.cc), so a 16-256 MiB all-reduce pays a fill and
drain of a few loops that a 16 GiB one does not (`pipeline_fill_s`).
Latency: tuning.cc v2.27.7 hwLat[NVLINK][NVLS][Simple] = 25 us (baseLat 0), NVLS only runs
the Simple protocol; NVLS-tree adds 2 log2(nodes) network hops of hwLat[NET][NVLSTree][Simple]
= 14 us. NCCL disables NVLS across nodes without CollNet (enqueue.cc) and NVLS-tree on one node.
"""

from __future__ import annotations

import numpy as np

from simulator.costmodel.ops import Num

NVLS_EFFICIENCY = {"nvlink4": 0.85, "nvlink5": 0.74}
"""tuning.cc (NVIDIA/nccl v2.30) nvlsEfficiency[Hopper] = 0.85, [Blackwell] = 0.74; links
without an entry (NVLink 2/3, PCIe, xGMI) have no NVLink SHARP."""
NVLS_LAT_S = 25e-6
"""tuning.cc v2.27.7 hwLat[NVLINK][NVLS|NVLSTree][Simple] = 25 us (baseLat 0)."""
NVLS_TREE_NET_LAT_S = 14e-6
"""tuning.cc v2.27.7 hwLat[NET][NVLSTree][Simple] = 14 us per inter-node tree step."""
TUNER_RATIO = 5.0 / 6.0
"""tuning.cc v2.27.7: NCCL's tuner prices an NVLS / NVLS-tree all-reduce at 5/6 of the graph's
bandwidth (min(bwIntra, bwInter), NVLS-tree bwInter / 2 beyond 2 nodes); an NVLS all-gather or
reduce-scatter at bwIntra x (n-1)/n. It picks the algorithm with that, not with the physics."""
NVLS_CHANNELS = {"nvlink4": (16, 16), "nvlink5": (24, 32)}
"""Channels (CTAs) NVLS runs on, one node / several: transport/nvls.cc v2.27.7
NVLS_NCHANNELS_SM90 = 16; NVLS_NCHANNELS_SM100_NVL = 24, NVLS_NCHANNELS_SM100 = 32."""
NVLS_CHUNK = 128 * 1024
"""transport/nvls.cc v2.27.7: NCCL_NVLS_CHUNKSIZE default 128 KiB (bytes per head and loop)."""
STAGES = {"all_reduce": 3, "all_gather": 2, "reduce_scatter": 2, "tree": 4}
"""Pipeline stages of NCCL's NVLS kernels (src/device/*.h v2.27.7, one warp group each):
all-reduce on one node = scatter, reduce + multicast, gather; all-gather = multicast, gather
(reduce-scatter mirrors it); NVLS-tree = scatter, reduce + send up, receive + multicast, gather."""


def _gen(scale_up_name: str) -> str | None:
    """The NVLink generation a scale-up link name belongs to ("nvlink4-h800" -> "nvlink4")."""
    return next((g for g in NVLS_EFFICIENCY if scale_up_name.startswith(g)), None)


def nvls_algbw(collective: str, n: Num, intra_bw: float, scale_up_name: str) -> Num:
    """Algorithm bandwidth (B/s) of an NVLS collective of `n` GPUs on one NVSwitch."""
    eff = NVLS_EFFICIENCY[_gen(scale_up_name)]
    n = np.maximum(np.asarray(n, dtype=float), 2.0)
    if collective == "all_reduce":
        return intra_bw * eff / (1.0 + 1.0 / n)
    return intra_bw * eff * n / (n - 1.0)


def nvls_chunk(size_bytes: Num, ops: Num, n_nodes: Num, tree: bool) -> Num:
    """Bytes per head and loop NCCL picks for an NVLS collective (enqueue.cc v2.27.7,
    computeColl): from 128 KiB down, while the buffer is short of a number of loops of
    ``ops = channels x heads`` chunks (NVLS: 64 / 8 / 2 loops -> 64 / 32 / 16 KiB; NVLS-tree:
    64 KiB from 4 nodes, then 4 / 1 loops -> 64 / 32 KiB)."""
    s = np.asarray(size_bytes, dtype=float)
    c = np.full_like(s, float(NVLS_CHUNK))
    if tree:
        c = np.where(np.asarray(n_nodes) >= 4, np.minimum(c, 65536.0), c)
        steps = ((4, 65536.0), (1, 32768.0))
    else:
        steps = ((64, 65536.0), (8, 32768.0), (2, 16384.0))
    for loops, smaller in steps:
        c = np.where((s < loops * ops * c) & (c > smaller), smaller, c)
    return c


def pipeline_fill_s(
    stages: int, size_bytes: Num, ops: Num, n_nodes: Num, algbw: Num, tree: bool
) -> Num:
    """The NVLS pipeline's fill and drain (s): a loop of ``ops`` chunks passes `stages` warp
    groups one after another, so the last loop leaves ``stages - 1`` loop times after the
    bandwidth term (the bottleneck stage sets the loop time, ``ops x chunk / algbw``)."""
    return (stages - 1) * ops * nvls_chunk(size_bytes, ops, n_nodes, tree) / algbw


def nvls_time(
    collective: str, size_bytes: Num, n: Num, n_nodes: Num, intra_bw: float, scale_up_name: str
) -> tuple[Num, Num] | None:
    """NVLS all-reduce / all-gather / reduce-scatter inside one node: (NCCL's tuner time, the
    time it takes) in s; inf across nodes; None where the fabric has no NVLink SHARP."""
    if _gen(scale_up_name) is None or collective not in (
        "all_reduce", "all_gather", "reduce_scatter"
    ):  # fmt: skip
        return None
    algbw = nvls_algbw(collective, n, intra_bw, scale_up_name)
    ops = NVLS_CHANNELS[_gen(scale_up_name)][0] * np.asarray(n, dtype=float)  # heads = ranks
    fill = pipeline_fill_s(STAGES[collective], size_bytes, ops, 1, algbw, tree=False)
    t = NVLS_LAT_S + size_bytes / algbw + fill
    nf = np.maximum(np.asarray(n, dtype=float), 2.0)
    tuner_bw = intra_bw * (TUNER_RATIO if collective == "all_reduce" else (nf - 1) / nf)
    model = NVLS_LAT_S + size_bytes / tuner_bw
    across = np.asarray(n_nodes, dtype=float) > 1
    return np.where(across, np.inf, model), np.where(across, np.inf, t)


def nvls_tree_time(
    collective: str, size_bytes: Num, k_local: Num, n_nodes: Num, intra_bw: float,
    net_bw: Num, scale_up_name: str,
) -> tuple[Num, Num] | None:  # fmt: skip
    """NVLS inside each node, NCCL's double binary tree across nodes, for an all-reduce of a
    group with `k_local` > 1 GPUs per node: (tuner time, time it takes) in s; inf elsewhere.
    The node's NICs carry the buffer once per direction on 2 nodes and twice on more (as the
    tree, `costmodel.nccl`)."""
    if _gen(scale_up_name) is None or collective != "all_reduce":
        return None
    k = np.asarray(k_local, dtype=float)
    nodes = np.asarray(n_nodes, dtype=float)
    intra = nvls_algbw("all_reduce", k, intra_bw, scale_up_name)
    inter = net_bw / np.where(nodes > 2, 2.0, 1.0)
    log_nodes = np.floor(np.log2(np.maximum(nodes, 1.0)))
    algbw = np.minimum(intra, inter)
    ops = NVLS_CHANNELS[_gen(scale_up_name)][1] * k  # one head per GPU of the node
    fill = pipeline_fill_s(STAGES["tree"], size_bytes, ops, nodes, algbw, tree=True)
    lat = NVLS_LAT_S + 2 * log_nodes * NVLS_TREE_NET_LAT_S
    t = lat + size_bytes / algbw + fill
    model = lat + size_bytes / (np.minimum(intra_bw, inter) * TUNER_RATIO)
    ok = (nodes > 1) & (k > 1)
    return np.where(ok, model, np.inf), np.where(ok, t, np.inf)
