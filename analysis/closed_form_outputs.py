"""The closed form's outputs beyond the step time: bytes on the wire by parallel dimension,
the MoE all-to-alls' keys and energy per GPU (`analysis.closed_form.evaluate`)."""

from __future__ import annotations

import numpy as np

from analysis.step_comm import take_on
from simulator.costmodel.collectives import bus_factor
from simulator.plan.layer import layer_passes


def present(flags) -> list[bool]:
    """Which of False, True occur in a boolean layout array (skip the branch no layout takes)."""
    arr = np.asarray(flags, dtype=bool)
    return [v for v in (False, True) if bool(np.any(arr == v))]


def moe_keys(model, per_step, t, ep_exp):
    """The expert-parallel all-to-alls' breakdown, totals and bytes (MoE models only)."""
    if not model.is_moe:
        return {}
    return {
        "breakdown/comm_ep": ep_exp,
        "comm_total/ep": per_step * t["ep_total"],
        "comm_bytes/ep": per_step * t["ep_wire"],
    }


def comm_bytes(zero, m, n_layers, plan, t):
    """Bytes each GPU puts on the wire per step, by parallel dimension (size x bus factor):
    one layer's TP and CP bytes from `t` (`layer_wire`), the rest from the step plan's
    entries."""
    tp = m * n_layers * t["wire_tp"]
    cp = m * n_layers * t["wire_cp"]
    sends = plan.sends
    pp = np.where(sends.where, m * sends.per_microbatch * sends.nbytes, 0.0)
    factors: dict[tuple[str, int], object] = {}  # bus factor per (kind, group array)

    def factor(kind, group):
        key = (kind, id(group))
        if key not in factors:
            factors[key] = bus_factor(kind, group)
        return factors[key]

    z012 = 0.0
    for b in (*plan.grads, *plan.params):
        where = np.asarray(b.where, dtype=bool)
        if where.any():  # an entry no layout runs adds nothing
            z012 = z012 + np.where(where, b.total * factor(b.kind, b.group), 0.0)
    dp = z012
    sel = np.flatnonzero(zero == 3)
    if sel.size:  # ZeRO-3's units, on the ZeRO-3 layouts only
        n, taken = np.size(zero), {}
        z3 = 0.0
        for u in plan.zero3:
            group = take_on(u.group, sel, n, taken)
            ag, rs = factor("all_gather", group), factor("reduce_scatter", group)
            count, gather, reduce = (take_on(x, sel, n, taken) for x in (u.count, u.gather,
                                                                         u.reduce))  # fmt: skip
            z3 = z3 + count * (2 * gather * ag + reduce * rs)
        dp = np.array(np.broadcast_to(z012, np.shape(zero)), dtype=float)
        dp[sel] = take_on(m, sel, n, taken) * z3
    return {"comm_bytes/tp": tp, "comm_bytes/cp": cp, "comm_bytes/pp": pp, "comm_bytes/dp": dp}


def layer_wire(L, msg):
    """Bytes one layer's TP and CP collectives put on the wire per micro-batch, each size x
    its bus factor (arrays over the layouts)."""
    full = L.recompute == 2
    fwd_count = 1.0 + full
    has_cp = bool(np.any(np.asarray(L.cp) > 1))
    sps = present(L.sp)
    per_layer = {}
    wire: dict[tuple[str, str], object] = {}
    for sp in sps:
        total = {"tp": 0.0, "cp": 0.0}
        for backward, lc in layer_passes(sp):
            if lc.dim == "cp" and not has_cp:
                continue
            if (lc.dim, lc.kind) not in wire:  # bytes on the wire of one such collective
                nbytes, n = (msg.tp, L.tp) if lc.dim == "tp" else (msg.cp, L.cp)
                wire[(lc.dim, lc.kind)] = nbytes * bus_factor(lc.kind, n)
            count = 1.0 if backward else fwd_count
            total[lc.dim] = total[lc.dim] + count * wire[(lc.dim, lc.kind)]
        per_layer[sp] = total

    def by_sp(key):
        if len(sps) == 1:
            return per_layer[sps[0]][key]
        return np.where(L.sp, per_layer[True][key], per_layer[False][key])

    return by_sp("tp"), by_sp("cp")


def energy(hw, out, m, n_layers, t):
    """Energy per GPU per step: compute at full activity, exposed comm at comm activity,
    optimizer, buffer copies and framework hooks at memory-bound activity, bubbles and waits
    at idle (PowerModel states)."""
    pw = hw.power
    step = out["step_time_s"]
    busy = out["breakdown/compute"]
    comm = sum(
        out[k]
        for k in (
            "breakdown/comm_tp",
            "breakdown/comm_cp",
            "breakdown/comm_pp",
            "breakdown/comm_zero3",
            "breakdown/comm_dp",
        )
    ) + out.get("breakdown/comm_ep", 0.0)
    opt = out["breakdown/optimizer"] + out["breakdown/copies"] + out["breakdown/hooks"]
    idle = np.maximum(0.0, step - busy - comm - opt)
    energy = (
        pw.power(1.0) * busy
        + pw.power(pw.comm_activity) * comm
        + pw.power(pw.memory_bound_activity) * opt
        + pw.power(0.0) * idle
    )
    return {"energy_per_gpu_j": energy}
