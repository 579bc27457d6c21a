"""The closed form's mixture-of-experts terms: expert-parallel all-to-alls and the expert
gradients' own data-parallel group (see `simulator.costmodel.moe` for the layer's kernels).

Per micro-batch and average layer (a MoE layer in `moe_fraction` of the layers):

- the all-to-alls where the step plan puts them (`simulator.plan.layer.ep_all_to_alls`):
  forward dispatch and combine, backward their gradients, full recompute re-runs the forward
  pair. Blocking on the compute stream (the experts need their tokens), except that with
  `Options.moe_a2a_overlap` the dispatch (and its gradient) runs beside the shared experts
  (`plan.rules.beside`; the SimPy engine executes the same pairing).
- each all-to-all's group is the `ep` ranks `etp` apart (Megatron-Core's expert rank order
  tp-ep-dp), so an EP group inside one NVLink domain (an NVL72 rack holds 72) stays on NVLink
  and one spanning domains crosses the NICs (`network.alltoall_time`).

Expert weights are split over ep x etp and their gradients reduced over the expert
data-parallel group (tp cp dp / (ep etp) ranks, `etp * ep` apart), after the dense gradients'
reduction on the same stream; ZeRO-1/2 shard expert states over that group too.
"""

from __future__ import annotations

import numpy as np

from simulator.costmodel.collectives import bus_factor
from simulator.costmodel.memory import expert_params_per_device
from simulator.costmodel.moe import a2a_bytes, routed_factor
from simulator.costmodel.network import alltoall_time, group_collective_time
from simulator.model import ModelSpec
from simulator.options import Options
from simulator.plan.layer import a2a_window, ep_all_to_alls
from simulator.plan.rules import beside


def expert_dp(L) -> np.ndarray:
    """Expert data-parallel degree per layout: tp cp dp / (ep etp)."""
    return np.maximum(1, L.tp * L.cp * L.dp // (L.ep * L.etp))


def a2a_time(model: ModelSpec, hw, s: int, L, e: float, opts: Options):
    """Seconds of one dispatch (or combine) all-to-all of one MoE layer, times the layer's
    MoE share (the average layer), per micro-batch."""
    if not model.is_moe:
        return np.zeros(L.tp.shape)
    r = routed_factor(L.ep, opts.moe_capacity_factor, opts.moe_imbalance)
    size = a2a_bytes(model, L.mb * s / L.cp, L.tp, L.etp, r, e)
    return model.moe_fraction * alltoall_time(hw, size, L.ep, L.etp)


def ep_terms(model, hw, s, L, e, opts, kernel) -> dict[str, np.ndarray]:
    """Per micro-batch and layer: total, exposed and compute-slowdown seconds of the
    expert-parallel all-to-alls, and their wire bytes, as the step plan places them
    (`simulator.plan.layer.ep_all_to_alls`); `kernel` holds each kernel's (forward, backward)
    seconds per layer, the windows of the overlapped ones (`plan.rules.beside`)."""
    zero = np.zeros(L.tp.shape)
    if not model.is_moe:
        return {"ep_total": zero, "ep_exposed": zero, "ep_slow": zero, "ep_wire": zero}
    one = a2a_time(model, hw, s, L, e, opts)
    full = L.recompute == 2
    total = exposed = slow = 0.0
    for backward in (False, True):
        for a in ep_all_to_alls(backward):
            count = 1.0 if backward else 1.0 + full
            k = a2a_window(a, kernel, opts.moe_a2a_overlap, opts.moe_a2a_overlap_1f1b)
            if k is not None:
                exp, sl = beside(one, kernel[k][int(backward)], opts.comm_interference)
            else:
                exp, sl = one, 0.0
            total, exposed, slow = total + count * one, exposed + count * exp, slow + count * sl
    r = routed_factor(L.ep, opts.moe_capacity_factor, opts.moe_imbalance)
    size = a2a_bytes(model, L.mb * s / L.cp, L.tp, L.etp, r, e)
    wire = (4 + 2 * full) * model.moe_fraction * size * bus_factor("all_to_all", L.ep)
    return {"ep_total": total, "ep_exposed": exposed, "ep_slow": slow, "ep_wire": wire}


def expert_params(model: ModelSpec, L, stages) -> np.ndarray:
    """Routed-expert parameters the busiest device holds (split over ep x etp)."""
    return expert_params_per_device(model, L.tp, L.pp, stages, L.ep, L.etp)


def expert_sync(hw, L, p_exp, g_bytes: float, w_bytes: float):
    """(gradient reduction, ZeRO-1/2 parameter all-gather) seconds of the expert gradients
    over the expert data-parallel group: all-reduce (ZeRO-0) or reduce-scatter (ZeRO-1/2)."""
    edp, stride = expert_dp(L), L.etp * L.ep
    ar = group_collective_time(hw, "all_reduce", p_exp * g_bytes, edp, stride)
    rs = group_collective_time(hw, "reduce_scatter", p_exp * g_bytes, edp, stride)
    ag = group_collective_time(hw, "all_gather", p_exp * w_bytes, edp, stride)
    sync = np.where(L.zero == 0, ar, rs)
    ag_after = np.where((L.zero == 1) | (L.zero == 2), ag, 0.0)
    return np.where(p_exp > 0, sync, 0.0), np.where(p_exp > 0, ag_after, 0.0)
