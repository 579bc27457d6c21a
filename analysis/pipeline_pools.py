"""Pipeline stages on different pools: the closed form of a stage plan, and the plan search.

Scenario: every data-parallel replica spans the pools; pool i hosts ``k_i`` consecutive
pipeline stages (``k_i = gpus_i pp / total``, so each stage's tp x cp x dp ranks, and its
data-parallel group, lie in one pool) and the layers are split so that the stages' times per
micro-batch balance (more layers on the faster pool). The closed form is the one-pool model's
(`analysis.closed_form`, Narayanan et al. 2021's 1F1B) with per-stage times:

    step = m * max_s T_s + (sum_s T_s - max_s T_s)      T_s = n_s t_layer(pool of s) + ends
         + fill and drain sends: 2 sum_b t_send(b)     t_send across pools: crosspool.py
    (max_s T_s becomes the neighbour-stage cycle when a send is slow: `steady_period`)
         + gradient reduction of each stage in its own pool, beyond its last backward
         + the slowest stage's optimizer step (after the gradient-norm barrier)

Every per-layer, embedding, head, collective and optimizer time comes from the same cost
model as the one-pool closed form; with every stage on one pool it reproduces that model.
Memory is counted per stage (its layers, its micro-batches in flight ``min(m, pp - s)``, the
embedding on the first, the output layer and logits on the last).

Not modelled: vpp > 1, ZeRO-3 and mixture-of-experts layers with stages over pools
(`simulator.des.pools.check_stages` refuses them), contention (the SimPy engine models it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from analysis.closed_form import _stage_times
from analysis.layouts import Layouts
from analysis.step_comm import sum_buckets
from hwprofiles.profile import HardwareProfile
from simulator.costmodel import memory as mem
from simulator.costmodel.crosspool import PoolLink, cross_send_time
from simulator.costmodel.framework import copies_time, copy_bytes, host_times
from simulator.costmodel.network import group_collective_time, p2p_time
from simulator.costmodel.timing import ACT_BYTES, copy_time
from simulator.des.pools import check_stages
from simulator.options import Options
from simulator.parallel import Workload
from simulator.plan import rules
from simulator.plan.layer import messages
from simulator.plan.rules import beside
from simulator.plan.step import (
    StepPlan,
    activations,
    end_params,
    kept_params,
    layer_unit_params,
    step_plan,
)

USABLE_MEMORY_FRACTION = 0.9
"""Share of device memory a stage may use (the planner's margin, `analysis.planner.search`)."""


def _f(x: Any) -> float:
    return float(np.asarray(x).reshape(-1)[0])


def layer_times(w: Workload, hw: HardwareProfile, opts: Options) -> dict[str, float]:
    """Per micro-batch times of one layer, the embedding and the head on `hw` (closed form)."""
    p = w.parallel
    L = Layouts.from_configs([p])
    msg = messages(w.model, L.mb, w.seq_len, L.tp, L.cp, ACT_BYTES[p.precision])
    t = _stage_times(w.model, hw, w.seq_len, L, p.precision, opts, msg)
    keys = ("layer", "fwd", "bwd", "rc", "slow", "emb", "head", "tp_exposed", "cp_exposed")
    out = {k: _f(t[k]) for k in keys}
    out["per_layer"] = out["layer"] + out["slow"] + out["tp_exposed"] + out["cp_exposed"]
    return out


def p2p_bytes(w: Workload) -> float:
    """Bytes of one pipeline send per rank (the step plan's message)."""
    p = w.parallel
    return _f(messages(w.model, p.micro_batch_size, w.seq_len, p.tp, p.cp,
                       ACT_BYTES[p.precision]).p2p)  # fmt: skip


def _times(w: Workload, stage_hw: Sequence[HardwareProfile], opts: Options) -> list[dict]:
    cache: dict[int, dict[str, float]] = {}
    for hw in stage_hw:
        if id(hw) not in cache:
            cache[id(hw)] = layer_times(w, hw, opts)
    return [cache[id(hw)] for hw in stage_hw]


def stage_params(w: Workload, stage: int, layers: int) -> float:
    """Dense parameters per device of `stage` holding `layers` layers (embedding on the first
    stage, Megatron's copy of the output matrix on the last; `simulator.plan.step`)."""
    p = w.parallel
    emb, head = end_params(w.model, p.tp, p.pp)
    out = layers * layer_unit_params(w.model, p.tp)
    return out + (emb if stage == 0 else 0.0) + (head if stage == p.pp - 1 else 0.0)


def stage_plan(w: Workload, opts: Options, stage: int, layers: int) -> StepPlan:
    """The step plan (`simulator.plan.step`: DP buckets, sends, memory) of `stage`'s rank."""
    p, m = w.parallel, w.model
    e = ACT_BYTES[p.precision]
    act = activations(m, p.micro_batch_size, w.seq_len, p.tp, p.cp, p.sequence_parallel,
                      p.recompute, e, opts, p.ep, p.expert_tp)  # fmt: skip
    logits = mem.logits_bytes(m, p.micro_batch_size, w.seq_len, p.tp, p.cp)
    return step_plan(
        m, p.precision, opts, tp=p.tp, cp=p.cp, dp=p.dp, pp=p.pp, vpp=p.vpp, zero=p.zero_stage,
        dense=stage_params(w, stage, layers), expert=0.0, edp=p.expert_dp,
        estride=p.expert_tp * p.ep, layers=layers, has_emb=stage == 0,
        has_head=stage == p.pp - 1, p2p_bytes=p2p_bytes(w),
        act_per_layer=float(act), logits=float(logits),
    )  # fmt: skip


def stage_memory(w: Workload, opts: Options, stage: int, layers: int) -> float:
    """Peak bytes per device of `stage`: its plan's states, one layer's activations times its
    layers and its micro-batches in flight under 1F1B (``min(m, pp - stage)``), the logits on
    the last stage."""
    p = w.parallel
    mm = stage_plan(w, opts, stage, layers).memory
    in_flight = min(p.num_microbatches, p.pp - stage)
    total = _f(mm.weights) + _f(mm.gradients) + _f(mm.optimizer)
    total += _f(mm.activations) * layers * in_flight
    return total + (_f(mm.logits) if stage == p.pp - 1 else 0.0)


def send_time(w: Workload, a: HardwareProfile, b: HardwareProfile, uplink: PoolLink) -> float:
    """One pipeline send between neighbour stages on pools `a` and `b` (the plan's sends)."""
    p = w.parallel
    size = p2p_bytes(w)
    if a is b:
        return _f(p2p_time(a, size, p.tp * p.cp * p.dp))
    return cross_send_time(a, b, size, p.tp * p.cp * p.dp, uplink)


def steady_period(T: Sequence[float], sends: Sequence[float]) -> float:
    """Seconds per micro-batch in 1F1B's steady state with overlapped sends: the busiest
    stage's time, or the cycle between two neighbour stages when a send between them is slow.

    In 1F1B, stage s+1 receives micro-batch i's activations from stage s and returns its
    gradients, and each alternates one forward and one backward: the dependency cycle
    B_s, F_s -> send -> F_{s+1}, B_{s+1} -> send -> B_s spans two micro-batches, so the period
    is at least ``(T_s + T_{s+1}) / 2 + send_s`` (a max-plus cycle mean; llmcap's derivation,
    which the SimPy engine reproduces: with a 10x narrower uplink it alternates 218.5 and
    240.5 ms per micro-batch, mean 229.5 ms = (218.5 + 214.4) / 2 + 13.05). With sends far
    shorter than the stages' imbalance this is the busiest stage's time (the one-pool rule).
    """
    pairs = [(T[b] + T[b + 1]) / 2 + sends[b] for b in range(len(sends))]
    return max([max(T), *pairs])


def stages_step(
    w: Workload,
    stage_hw: Sequence[HardwareProfile],
    split: Sequence[int],
    uplink: PoolLink,
    opts: Options | None = None,
) -> dict[str, Any]:
    """Closed-form step of stage s on `stage_hw[s]` with `split[s]` layers (module docstring)."""
    opts = opts or Options()
    check_stages(w, stage_hw, split)
    p = w.parallel
    m, pp = p.num_microbatches, p.pp
    ts = _times(w, stage_hw, opts)
    T, compute_mb = [], []
    for s, (t, n) in enumerate(zip(ts, split, strict=True)):
        ends = (t["emb"] if s == 0 else 0.0) + (t["head"] if s == pp - 1 else 0.0)
        T.append(n * t["per_layer"] + ends)
        compute_mb.append(n * (t["fwd"] + t["bwd"] + t["rc"] + t["slow"]) + ends)
    busiest = int(np.argmax(T))
    sends = [send_time(w, stage_hw[b], stage_hw[b + 1], uplink) for b in range(pp - 1)]
    period = steady_period(T, sends) if opts.overlap_p2p else T[busiest]
    pipe = m * period + _f(rules.bubble(sum(T), T[busiest], 1))
    steady = 2 * m * max(sends, default=0.0)  # the plan's 2 vpp sends per micro-batch
    p2p_exposed = 2 * sum(sends) + (0.0 if opts.overlap_p2p else steady)
    # data parallel: each stage's plan, its gradients over its own pool's dp group
    phi = opts.comm_interference
    exposed, slows, tails, energy, stages = [], [], [], [], []
    for s, (hw, t, n) in enumerate(zip(stage_hw, ts, split, strict=True)):
        plan = stage_plan(w, opts, s, n)
        sync = _f(sum_buckets(hw, plan.grads))
        win = rules.grad_window(n, t["bwd"] + t["rc"], pp, 1)
        g0 = next(b for b in plan.grads if b.name == "grad")  # the dense gradients'
        tail = group_collective_time(hw, "all_reduce", g0.full(), p.dp, g0.stride)
        g_exp, g_slow = rules.grad_exposed(sync, win, tail, phi, opts.overlap_grad_reduce, p.dp)
        ag = _f(sum_buckets(hw, plan.params))
        a_exp, a_slow = beside(ag, n * t["fwd"], phi) if opts.overlap_param_gather else (ag, 0.0)
        exposed.append(_f(g_exp) + _f(a_exp))
        slows.append((_f(g_slow), _f(a_slow)))
        acc = hw.accelerator
        dense = stage_params(w, s, n)
        copies = copy_bytes(
            dense, p.dp, p.zero_stage, m, plan.w_bytes, plan.g_bytes, opts,
            kept=kept_params(plan.zero3),
        )  # fmt: skip
        t_host, t_hooks = host_times(hw.host, w.model, n, p.zero_stage, m, opts, p.precision)
        t_opt = _f(copy_time(acc, plan.optimizer_params * opts.optimizer_bytes_per_param))
        tails.append(_f(copies_time(acc, copies, hw.host)) + _f(t_hooks) + t_opt + _f(t_host))
    # the busiest stage's slowdowns count as compute, the others' gradient slowdowns join the
    # drain (rule "drain", per stage)
    slow = sum(g for g, _ in slows) + slows[busiest][1]
    step = pipe + p2p_exposed + slow + max(exposed) + max(tails)
    for s, (hw, n) in enumerate(zip(stage_hw, split, strict=True)):
        busy = m * compute_mb[s]
        comm = m * n * (ts[s]["tp_exposed"] + ts[s]["cp_exposed"]) + exposed[s]
        idle = max(0.0, step - busy - comm - tails[s])
        pw = hw.power
        e = pw.power(1.0) * busy + pw.power(pw.comm_activity) * comm
        e += pw.power(pw.memory_bound_activity) * tails[s] + pw.power(0.0) * idle
        energy.append(e)
        need = stage_memory(w, opts, s, n)
        stages.append({
            "stage": s, "hardware": hw.name, "layers": int(n),
            "time_per_microbatch_s": T[s], "memory_per_gpu_bytes": need,
            "fits_in_memory": need <= USABLE_MEMORY_FRACTION * hw.accelerator.memory_bytes,
        })  # fmt: skip
    cross = [b for b in range(pp - 1) if stage_hw[b] is not stage_hw[b + 1]]
    cross_busy = sum(2 * m * sends[b] for b in cross)
    # the steady state's wait on a slow crossing send (the binding neighbour cycle crosses)
    pairs = [(T[b] + T[b + 1]) / 2 + sends[b] for b in range(pp - 1)]
    binding = int(np.argmax(pairs)) if pairs else -1
    waits = m * (period - T[busiest]) if binding in cross else 0.0
    return {
        "step_time_s": step,
        "energy_per_step_j": sum(energy) * p.tp * p.cp * p.dp,
        "gated_by_stage": busiest,
        "stages": stages,
        "sends_s": sends,
        "cross_pool": {
            "boundaries": cross,
            "send_s": max((sends[b] for b in cross), default=0.0),
            "busy_share": cross_busy / step,
            "exposed_s": sum(2 * sends[b] for b in cross)
            + (waits if opts.overlap_p2p else cross_busy),
        },
    }


def balance_split(
    w: Workload, stage_hw: Sequence[HardwareProfile], opts: Options | None = None
) -> tuple[int, ...]:
    """Layers per stage, one at a time to the stage that stays fastest (min-max of the stage
    times; unit jobs on related machines), skipping stages whose memory would overflow while
    another one has room."""
    opts = opts or Options()
    p = w.parallel
    layers = w.model.num_hidden_layers
    pp = p.pp
    ts = _times(w, stage_hw, opts)
    ends = [(ts[s]["emb"] if s == 0 else 0.0) + (ts[s]["head"] if s == pp - 1 else 0.0)
            for s in range(pp)]  # fmt: skip
    n = [1] * pp
    cap = [USABLE_MEMORY_FRACTION * hw.accelerator.memory_bytes for hw in stage_hw]
    # a stage's memory is linear in its layers: its value at 1 layer and its slope
    one = [stage_memory(w, opts, s, 1) for s in range(pp)]
    slope = [stage_memory(w, opts, s, 2) - one[s] for s in range(pp)]
    for _ in range(layers - pp):

        def after(s: int) -> float:
            return (n[s] + 1) * ts[s]["per_layer"] + ends[s]

        room = [s for s in range(pp) if one[s] + n[s] * slope[s] <= cap[s]]
        s = min(room or range(pp), key=lambda s: (after(s), s))
        n[s] += 1
    return tuple(n)


def with_dp(w: Workload, dp: int) -> Workload:
    """`w` with another data-parallel degree (same micro-batch and global batch)."""
    return Workload(w.model, replace(w.parallel, dp=dp), w.seq_len)
