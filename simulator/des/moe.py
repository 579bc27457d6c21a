"""The SimPy engine's mixture-of-experts pieces: the expert-parallel all-to-all as a
collective on its route, where the MoE block's kernels sit in a layer, and which gradients
belong to the dense data-parallel group rather than the experts' own.

Durations come from the cost model (`costmodel.moe`, `network.alltoall_time`); the all-to-all
is one phase on the representative rank's route whose uncontended time is exactly the closed
form's, so the engines agree without contention, while under contention it shares the NVLink
ports or NICs it crosses with the other streams' flows. A MoE model is costed as an average
layer: every layer runs the MoE block's kernels and all-to-alls scaled by `moe_fraction`
(`Op.count`), as the closed form does.
"""

from __future__ import annotations

from typing import Any

from simulator.costmodel.moe import a2a_bytes, routed_factor
from simulator.costmodel.network import alltoall_time
from simulator.costmodel.timing import ACT_BYTES
from simulator.des.collectives import Collective, Phase
from simulator.des.topology import Cluster
from simulator.parallel import Workload


def a2a_collective(w: Workload, hw: Any, cluster: Cluster, rank: int, opts: Any) -> Collective:
    """One dispatch (or combine) all-to-all of `rank`'s EP group, scaled to the average layer."""
    m, p = w.model, w.parallel
    e = ACT_BYTES[p.precision]
    r = routed_factor(p.ep, opts.moe_capacity_factor, opts.moe_imbalance)
    t = p.micro_batch_size * w.seq_len / p.cp
    size = float(a2a_bytes(m, t, p.tp, p.expert_tp, r, e))
    route = cluster.strided_route(rank, p.ep, p.expert_tp, (rank, "compute"))
    if p.ep <= 1 or size <= 0:
        return Collective("all_to_all", 0.0, p.ep, ())
    t0 = float(alltoall_time(hw, size, p.ep, p.expert_tp))
    latency = min(route.latency_s, t0)
    fm = m.moe_fraction
    phase = Phase(fm * latency, fm * (t0 - latency) * route.rate, route)
    return Collective("all_to_all", fm * size, p.ep, (phase,), "pairwise")


def moe_op_params(w: Workload) -> dict[str, float]:
    """Dense parameters (per TP rank) whose gradients the MoE block's kernels produce, averaged
    over layers: router and shared experts (the routed experts' are reduced over their own
    group, `expert_params`)."""
    m, tp = w.model, w.parallel.tp
    fm = m.moe_fraction
    return {
        "moe/router": fm * m.router_params() / tp,
        "moe/shared": fm * m.shared_expert_params() / tp,
    }


def expert_params(w: Workload, layers: int) -> float:
    """Routed-expert parameters of `layers` layers on one device (split over ep x etp)."""
    p = w.parallel
    return layers * w.model.expert_layer_params() / (p.ep * p.expert_tp)
