"""The closed-form step model: one training step's time, memory and energy, vectorised.

Evaluates many parallel layouts of one model on one hardware profile at once (numpy arrays),
which is what the planner searches with. The structure of a step (Megatron-LM 1F1B):

    step = m * t_mb(last stage)              compute + exposed TP/CP comm per micro-batch, the
                                             layer's collectives as the step plan places them
                                             (simulator.plan.layer), each overlap priced by
                                             simulator.plan.rules.beside
         + (sum of the other stages) / vpp   pipeline bubble (Narayanan et al. 2021, Sec. 2.2;
                                             the busiest rank of an uneven split sets m * t)
         + exposed pipeline p2p              fill and drain chains; all if not overlapped
         + exposed ZeRO-3 gathers            per micro-batch, beyond the compute hiding them
         + exposed DP gradient reduction     beyond the last micro-batch's backward
         + framework buffer copies           torch DDP buckets, FSDP2 copy-in/out (Options)
         + framework hooks                   FSDP2's host time per unit (Options)
         + optimizer step                    memory-bound AdamW over the local shard (+ host
                                             time per tensor with Options.host_overheads)

Every time comes from the shared cost model (`simulator.costmodel`) and the hardware profile's
efficiency curves and links. What it ignores: data loading, logging, kernel-launch gaps between
ops beyond those inside the efficiency curves, stage imbalance other than the first/last stage
ends, and contention between different groups' collectives (the SimPy engine models that).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

import numpy as np

from analysis import closed_form_moe as moe_terms
from analysis.closed_form_outputs import comm_bytes, energy, layer_wire, moe_keys, present
from analysis.grouped import ZERO3_SHAPE, Grouped
from analysis.layouts import Layouts
from analysis.pipeline_passes import Grads, pass_times, pins, uneven_chunks
from analysis.step_comm import (
    grouped_times_gen,
    price_together,
    priced_where,
    sum_buckets_gen,
    zero3_gen,
)
from analysis.step_compose import Fixed, Pipe, by_recursion, compose
from hwprofiles.profile import HardwareProfile
from simulator.costmodel import memory as mem
from simulator.costmodel.framework import copies_time, copy_bytes, host_times
from simulator.costmodel.network import p2p_time
from simulator.costmodel.ops import embedding_ops
from simulator.costmodel.stack import stack_head_ops, stack_layer_ops
from simulator.costmodel.timing import ACT_BYTES, copy_time, op_times
from simulator.model import ModelSpec
from simulator.options import Options
from simulator.pipeline_split import split_arrays
from simulator.plan import rules
from simulator.plan.layer import kernel_order, layer_passes, messages, mlp_names
from simulator.plan.rules import beside
from simulator.plan.step import activations, kept_params, stage_memory, step_plan


class Refine(Protocol):
    """`evaluate`'s `refine` (the planner's branch and bound, `planner.bounds.Refine`)."""

    def skip(self, step: np.ndarray, uneven: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which `uneven` layouts cannot be among the best, a lower bound of every step),
        from the step times of the others (`step` on them)."""
        ...

    def __call__(self, step: np.ndarray, bounded: np.ndarray) -> np.ndarray:
        """Which layouts `bounded` (step times still lower bounds) to price exactly."""
        ...


GEMM_FWD_PLUS_BWD = 3.0
"""A GEMM's forward plus backward time over its forward time: the backward computes dX and dW,
each a GEMM of the forward's FLOPs (dimensionless; the backward "requires double the number
of FLOPs" of the forward, Narayanan et al. 2021, appendix on floating-point operations)."""
ATTENTION_FWD_PLUS_BWD = 3.5
"""Fused attention's forward plus backward over its forward: the backward is 2.5x the forward's
FLOPs (5 matmuls against 2; Dao 2023, FlashAttention-2, arXiv 2307.08691, Sec. 4.1)."""


class _Kernels:
    """(forward, backward) time per kernel name of a layer, summed only when asked for (the
    overlap windows); iterating gives the names in the cost model's order."""

    def __init__(self) -> None:
        self._ops: dict[str, list[tuple]] = {}
        self._sum: dict[str, tuple] = {}

    def add(self, name: str, tf, tb) -> None:
        self._ops.setdefault(name, []).append((tf, tb))

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    def __iter__(self):
        return iter(self._ops)

    def __getitem__(self, name: str) -> tuple:
        if name not in self._sum:
            parts = self._ops[name]
            self._sum[name] = (sum(p[0] for p in parts), sum(p[1] for p in parts))
        return self._sum[name]


def _stage_times(model, hw, s, L, precision, opts, msg):
    """Per micro-batch times on one device of a stage (arrays), split by part."""
    acc = hw.accelerator
    e = ACT_BYTES[precision]
    ops = stack_layer_ops(model, L.mb, s, L.tp, L.cp, L.sp, precision, opts, L.ep, L.etp)
    fwd = bwd = sel = 0.0
    kernel = _Kernels()  # forward and backward time of each kernel of the plan
    for op in ops:
        tf, tb = op_times(acc, op, precision)
        fwd = fwd + tf
        bwd = bwd + tb
        if op.recompute_selective:
            sel = sel + tf
        kernel.add(op.name, tf, tb)
    full = L.recompute == 2
    rc = np.where(full, fwd, np.where(L.recompute == 1, sel, 0.0))
    head_f = head_b = 0.0
    for op in stack_head_ops(model, L.mb, s, L.tp, L.cp, precision, opts):
        tf, tb = op_times(acc, op, precision)
        head_f, head_b = head_f + tf, head_b + tb
    emb_f = emb_b = 0.0
    for op in embedding_ops(model, L.mb, s, L.cp, e):
        tf, tb = op_times(acc, op, precision)
        emb_f, emb_b = emb_f + tf, emb_b + tb

    # the layer's TP and CP collectives as the step plan places them, each beside its partner
    # kernel when overlapped (TP: with Options.overlap_tp_comm; CP: always); full recompute
    # repeats the forward's
    names = mlp_names(kernel_order(list(kernel)))  # a MoE-only layer's stand-ins for mlp/*
    phi = opts.comm_interference
    size = {"tp": (msg.tp, L.tp, 1), "cp": (msg.cp, L.cp, L.tp)}
    part = {
        (sp, key): 0.0 for sp in (False, True) for key in ("tp", "cp", "tp_x", "cp_x", "slow", "fx")
    }
    fwd_count = 1.0 + full  # full recompute repeats the forward's collectives
    sps = present(L.sp)
    has_cp = bool(np.any(np.asarray(L.cp) > 1))  # cp = 1 everywhere: no exchange to price
    # every collective of the layer priced up front, each kind in one call (`priced_where`),
    # only on the layouts that run it (a group of one costs nothing; the all-reduce is non-SP
    # only, all-gather and reduce-scatter SP only); the CP exchange does not depend on sp
    first_sp: dict[tuple[str, str], int] = {}
    for sp in sps:
        for _, lc in layer_passes(sp, names):
            if lc.dim == "cp" and (not has_cp or sp != sps[0]):
                continue
            first_sp.setdefault((lc.dim, lc.kind), sp)
    requests = [
        (kind, (L.tp > 1) & (L.sp == sp) if dim == "tp" else L.cp > 1, *size[dim])
        for (dim, kind), sp in first_sp.items()
    ]
    times = dict(zip(first_sp, priced_where(hw, requests), strict=True))
    for sp in sps:
        # collectives not overlapped cost their time: tallied per (kind, direction) first, so
        # the arrays are touched once per kind rather than once per collective
        plain: dict[tuple[str, str, bool], int] = {}
        for backward, lc in layer_passes(sp, names):
            if lc.dim == "cp" and (not has_cp or sp != sps[0]):
                continue  # the CP exchange does not depend on sp: priced once, below
            tc = times[(lc.dim, lc.kind)]
            tp_hidden = opts.overlap_tp_comm or (backward and opts.overlap_tp_comm_backward)
            if lc.dim == "tp" and not tp_hidden:
                key = (lc.dim, lc.kind, backward)
                plain[key] = plain.get(key, 0) + 1
                continue
            count = 1.0 if backward else fwd_count
            exp, slow = beside(tc, kernel[lc.partner][int(backward)], phi)
            for s_ in sps if lc.dim == "cp" else (sp,):
                part[(s_, lc.dim)] = part[(s_, lc.dim)] + count * tc
                part[(s_, lc.dim + "_x")] = part[(s_, lc.dim + "_x")] + count * exp
                part[(s_, "slow")] = part[(s_, "slow")] + count * slow
                if not backward:  # the forward pass's own (recompute's are the backward's)
                    part[(s_, "fx")] = part[(s_, "fx")] + exp + slow
        for (dim, kind, backward), k in plain.items():
            t = (k if backward else k * fwd_count) * times[(dim, kind)]
            part[(sp, dim)] = part[(sp, dim)] + t
            part[(sp, dim + "_x")] = part[(sp, dim + "_x")] + t
            if not backward:
                part[(sp, "fx")] = part[(sp, "fx")] + k * times[(dim, kind)]

    def by_sp(key):
        if len(sps) == 1:
            return part[(sps[0], key)]
        return np.where(L.sp, part[(True, key)], part[(False, key)])

    layer = fwd + bwd + rc
    ep = moe_terms.ep_terms(model, hw, s, L, e, opts, kernel)
    return ep | {
        "layer": layer,
        "fwd": fwd,
        "bwd": bwd,
        "rc": rc,
        "slow": by_sp("slow") + ep["ep_slow"],
        "tp_total": by_sp("tp"),
        "tp_exposed": by_sp("tp_x"),
        "cp_total": by_sp("cp"),
        "cp_exposed": by_sp("cp_x"),
        "head": head_f + head_b,
        "emb": emb_f + emb_b,
        # the forward pass's share (`pipeline_passes`): its own collectives' exposed time
        # and slowdown, the expert all-to-alls' in proportion, the embedding's and head's
        "fwd_pass": fwd
        + by_sp("fx")
        + (ep["ep_exposed"] + ep["ep_slow"]) * fwd / np.maximum(layer, 1e-30),
        "head_f": head_f,
        "emb_f": emb_f,
    }


LAYER_SHAPE = ("tp", "cp", "sp", "mb", "recompute", "ep", "etp")
"""The layout columns a layer's kernels and collectives depend on (`_stage_times` reads no
other): many layouts share them, so they are priced once per distinct combination."""


def per_layer_times(
    model: ModelSpec,
    hw: HardwareProfile,
    s: int,
    L: Layouts,
    precision: str,
    opts: Options,
) -> dict[str, np.ndarray]:
    """Per micro-batch times of one layer, the embedding and the head on one device of every
    layout (`_stage_times`), computed once per distinct `LAYER_SHAPE` combination and spread
    back (the same numbers, elementwise, as over all layouts at once). `evaluate` takes them
    precomputed (`per_layer`, the planner's chunks share one table)."""
    U, index = L.distinct(LAYER_SHAPE)
    e = ACT_BYTES[precision]
    msg = messages(model, U.mb, s, U.tp, U.cp, e)
    t = _stage_times(model, hw, s, U, precision, opts, msg)
    t["wire_tp"], t["wire_cp"] = layer_wire(U, msg)
    t["act"] = activations(model, U.mb, s, U.tp, U.cp, U.sp, U.recompute, e, opts, U.ep, U.etp)
    return {k: np.asarray(v)[index] if np.ndim(v) else v for k, v in t.items()}


def _busiest(model, L, t):
    """(micro-batches, the split, one layer's time, `_busiest_stage`, the busiest rank's
    parameters, its experts' parameters)."""
    m = L.gbs / (L.mb * L.dp)
    stages = split_arrays(model.num_hidden_layers, L.pp, L.vpp, L.first, L.last)
    per_layer = t["layer"] + t["slow"] + t["tp_exposed"] + t["cp_exposed"] + t["ep_exposed"]
    # the busiest pipeline rank sets the pace (uneven splits: `simulator.pipeline_split`)
    busiest = _busiest_stage(stages, per_layer, t["emb"], t["head"], L.pp)
    params = mem.params_per_device(model, L.tp, L.pp, stages, L.ep, L.etp)
    return m, stages, per_layer, busiest, params, moe_terms.expert_params(model, L, stages)


def _busiest_plan(model, s, L, precision, opts, t):
    """`_busiest` and the busiest rank's step plan (`simulator.plan.step`: DP buckets, ZeRO-3
    units, pipeline sends, memory), evaluated by the closed form, executed by the SimPy
    engine."""
    m, stages, per_layer, busiest, params, p_exp = _busiest(model, L, t)
    msg = messages(model, L.mb, s, L.tp, L.cp, ACT_BYTES[precision])  # the plan's sizes
    n_layers, _, has_emb, has_head = busiest
    plan = step_plan(
        model, precision, opts, tp=L.tp, cp=L.cp, dp=L.dp, pp=L.pp, vpp=L.vpp, zero=L.zero,
        dense=params - p_exp, expert=p_exp, edp=moe_terms.expert_dp(L), estride=L.etp * L.ep,
        layers=n_layers, has_emb=has_emb, has_head=has_head, p2p_bytes=msg.p2p,
        act_per_layer=t["act"], logits=mem.logits_bytes(model, L.mb, s, L.tp, L.cp),
        microbatches=m,
    )  # fmt: skip
    return m, stages, per_layer, busiest, params, p_exp, plan


def memory_and_floor(
    model: ModelSpec,
    hw: HardwareProfile,
    seq_len: int,
    layouts: Layouts,
    precision: str,
    options: Options,
    per_layer: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """(`evaluate`'s memory per GPU, bytes; a lower bound of its step time, s) of every
    layout, from the busiest rank's memory (`plan.step.stage_memory`) without pricing the
    step: its compute and exposed TP/CP/EP time over all micro-batches, the `bubble` rule's
    fill and drain where it prices the pipeline, and the optimizer's streaming (every other
    part of the step is at least 0; the pass recursion's bubble too). What the planner reads
    first: a layout whose bound cannot beat the best priced is not priced
    (`analysis.planner.bounds`)."""
    L, opts, t = layouts, options, per_layer
    m, stages, layer, (n_layers, ends, _, _), params, p_exp = _busiest(model, L, t)
    memory, local = stage_memory(
        model, precision, opts, tp=L.tp, pp=L.pp, dp=L.dp, zero=L.zero, dense=params - p_exp,
        expert=p_exp, edp=moe_terms.expert_dp(L), layers=n_layers, act_per_layer=t["act"],
        logits=mem.logits_bytes(model, L.mb, seq_len, L.tp, L.cp), microbatches=m,
    )  # fmt: skip
    t_opt = copy_time(hw.accelerator, local * opts.optimizer_bytes_per_param)
    last = n_layers * layer + ends
    # the `bubble` rule's fill and drain, where it prices the pipeline
    total = model.num_hidden_layers * layer + t["head"] + t["emb"]
    uneven = uneven_chunks(model.num_hidden_layers, L)
    pipe = m * last + np.where(uneven, 0.0, rules.bubble(total, last, L.vpp))
    # where the pass recursion prices it: the last rank starts after the first micro-batch's
    # forwards on the stages before it and ends before their backwards of the last one
    # (`makespan.bound`'s first path), each chunk at least the smallest's layers
    first, pin = pins(L)
    smallest = np.where((first != 0) | (pin != 0), 0, model.num_hidden_layers // (L.pp * L.vpp))
    last_rank = m * (stages["last"] * layer + t["head"]) + (L.pp - 1) * smallest * layer + t["emb"]
    pipe = np.where(uneven, np.maximum(pipe, last_rank), pipe)
    return _memory(memory, L, m, stages)["memory_per_gpu_bytes"], pipe + t_opt


def evaluate(
    model: ModelSpec,
    hw: HardwareProfile,
    seq_len: int,
    layouts: Layouts,
    precision: str,
    options: Options | None = None,
    per_layer: Mapping[str, np.ndarray] | None = None,
    keys: Collection[str] | None = None,
    recursion: bool = True,
    refine: Refine | None = None,
) -> dict[str, np.ndarray]:
    """Step time, its breakdown, memory and energy for every layout (arrays of equal length).
    `per_layer`: `per_layer_times` of these layouts, where already computed. `keys`: only these
    outputs (None: all); the totals, wire bytes, memory and energy no asked key needs are not
    computed (the planner's search asks for the step time and the memory). `recursion`:
    False prices interleaving with uneven chunks by the `bubble` rule too, not by the pass
    recursion. `refine` (the planner's branch and bound, `planner.bounds.Refine`): those
    layouts are first priced at a lower bound of the recursion's step (no recursion:
    `pipeline_passes.pass_times(lower=True)`); called with the step times and which of them
    are still bounds, `refine` returns which of those to price by the recursion, until it
    returns none; the others keep their bound."""
    opts = options or Options()
    L = layouts
    s = seq_len
    acc = hw.accelerator
    acc.peak(precision)  # clear error if the device lacks this dtype
    t = per_layer if per_layer is not None else per_layer_times(model, hw, s, L, precision, opts)
    m, stages, per_layer, (n_layers, ends, _, _), params, p_exp, plan = _busiest_plan(
        model, s, L, precision, opts, t
    )
    last = n_layers * per_layer + ends
    total = model.num_hidden_layers * per_layer + t["head"] + t["emb"]
    # compute counts kernels slowed by the collectives beside them (`plan.rules.beside`)
    compute_mb = n_layers * (t["fwd"] + t["bwd"] + t["rc"] + t["slow"]) + ends

    # pipeline: bubble and p2p sends
    sends = plan.sends
    t_p2p = np.where(sends.where, p2p_time(hw, sends.nbytes, sends.stride), 0.0)
    bubble = rules.bubble(total, last, L.vpp)
    p2p_steady = sends.per_microbatch * m * t_p2p
    p2p_exposed = sends.fill_drain * t_p2p + (0.0 if sends.overlapped else p2p_steady)
    bubble = bubble + rules.ring_sends(L.pp, L.vpp, t_p2p, sends.overlapped)

    # data parallel (ZeRO-0/1/2): the gradient buckets beside the last backward, ZeRO-1/2's
    # parameter gathers behind the first forward
    phi = opts.comm_interference
    grp = Grouped(L)  # layouts whose step-level collectives are the same, priced once
    z3 = L.zero == 3
    dense_b = next(b for b in plan.grads if b.name == "grad")
    # every step-level collective of a kind in one pricing call (`price_together`)
    grad_sync, (tail,), ag_after, z3_terms = price_together(
        hw,
        sum_buckets_gen(hw, plan.grads, grp),
        grouped_times_gen(grp, hw, "all_reduce", (dense_b.full(), L.dp, dense_b.stride)),
        sum_buckets_gen(hw, plan.params, grp),
        zero3_gen(hw, plan.zero3, grp.coarser(L, ZERO3_SHAPE), where=z3),  # 0 elsewhere
    )
    grad_win = rules.grad_window(n_layers, t["bwd"] + t["rc"], L.pp, L.vpp)
    grad_exp, grad_slow = rules.grad_exposed(
        grad_sync, grad_win, tail, phi, opts.overlap_grad_reduce, L.dp
    )
    # rule "pass recursion" (`simulator.plan.makespan`): interleaving with uneven chunks;
    # each rank's own reduction beside its own drain (`rules.reduction_per_rank`)
    uneven = uneven_chunks(model.num_hidden_layers, L) if recursion else np.zeros(L.pp.shape, bool)
    # the routed experts' gradients reduce over their own group, after the dense ones
    # (`simulator.des.step`): those layouts keep the busiest stage's rules
    own_dp = uneven & ~z3 & (p_exp == 0)
    rule = pipe = Pipe(bubble, p2p_exposed, grad_exp, grad_slow)
    if uneven.any():
        grads = Grads(
            np.where(own_dp, grad_sync, 0.0), tail, L.dp,
            mem.stage_params(model, L.tp, 1, 0, L.ep, L.etp) / params,
            mem.stage_params(model, L.tp, 0, 1, L.ep, L.etp) / params,
            phi, opts.overlap_grad_reduce,
        )  # fmt: skip

        def recurse(where: np.ndarray, low: bool) -> Pipe:
            passes = pass_times(
                model.num_hidden_layers, L, m, t, per_layer, t_p2p, not sends.overlapped,
                where, grads, low,
            )  # fmt: skip
            return by_recursion(
                rule, passes, where, own_dp, m * last, t_p2p, not sends.overlapped, low
            )

        if refine is None:
            pipe = recurse(uneven, False)
    if opts.overlap_param_gather:
        ag_exposed, ag_slow = beside(
            ag_after, rules.param_window(n_layers, t["fwd"], L.pp, L.vpp), phi
        )
    else:
        ag_exposed, ag_slow = ag_after, 0.0
    dp_total = np.where(z3, 0.0, grad_sync + ag_after)
    # ZeRO-3 / FSDP: every unit's gathers and reduce-scatter, per micro-batch
    z3_mb, first_gather, z3_waited, z3_tail, z3_rs, z3_fwd_first, z3_shared, z3_link = z3_terms
    if opts.overlap_param_gather:  # the forward's first gather shares the link ("one group")
        first_gather = first_gather + rules.zero3_link_shared(z3_fwd_first, z3_tail, m)
    z3_exposed_mb, z3_slow_mb = rules.zero3_exposed(
        z3_mb, compute_mb, first_gather, phi, opts.overlap_param_gather, z3_waited, z3_shared,
        z3_link,
    )  # fmt: skip
    z3_total = np.where(z3, m * z3_mb, 0.0)
    bwd_mb = compute_mb * (t["bwd"] + t["rc"]) / np.maximum(t["fwd"] + t["bwd"] + t["rc"], 1e-30)
    z3_tail = rules.zero3_drain_backlog(z3_tail, z3_link, z3_mb - z3_rs, bwd_mb, phi, L.pp)
    tail = z3_tail if opts.overlap_param_gather else 0.0  # else already all exposed
    # every stage's passes wait for their ZeRO-3 gathers (`rules.zero3_bubble`, `compose`)
    z3_waits = first_gather + z3_waited if opts.overlap_param_gather else z3_mb - z3_rs

    # optimizer: streaming in place over the local (ZeRO-sharded) parameters and states
    t_opt = copy_time(acc, plan.optimizer_params * opts.optimizer_bytes_per_param)

    # the framework's buffer copies around the DP collectives (torch DDP buckets, FSDP2), and
    # its host time per parameter tensor (in the optimizer) and per FSDP2 unit (hooks)
    w_bytes, g_bytes = plan.w_bytes, plan.g_bytes
    kept = kept_params(plan.zero3)  # FSDP2's root, gathered once per micro-batch
    t_copies = copies_time(
        acc, copy_bytes(params, L.dp, L.zero, m, w_bytes, g_bytes, opts, kept=kept), hw.host
    )
    t_host_opt, t_hooks = host_times(hw.host, model, n_layers, L.zero, m, opts, precision)
    t_opt = t_opt + t_host_opt

    tp_exp = m * n_layers * t["tp_exposed"]
    cp_exp = m * n_layers * t["cp_exposed"]
    ep_exp = m * n_layers * t["ep_exposed"]
    fixed = Fixed(
        z3=z3, last=last, z3_waits=z3_waits, z3_slow_mb=z3_slow_mb,
        z3_exposed=np.where(z3, np.minimum(m * z3_exposed_mb + tail, z3_total), 0.0),
        ag_exposed=ag_exposed, ag_slow=ag_slow, compute=m * compute_mb,
        z3_slow=np.where(z3, m * z3_slow_mb, 0.0),
        drain=rules.drain_slowdown(
            L.pp, L.vpp, np.where(z3 | own_dp, 0.0, rule.grad_slow), grad_sync, grad_win
        ),
        before=(tp_exp, cp_exp, ep_exp), after=(t_copies, t_hooks, t_opt),
    )  # fmt: skip
    if refine is not None and uneven.any():  # branch and bound (`planner.bounds`)
        # the uneven layouts that could still be best are priced at a lower bound of the
        # recursion (`pass_times(lower=True)`), the others at `refine`'s floor; then by the
        # recursion those whose bound reaches the best rates, until none does
        skip, floor = refine.skip(compose(rule, fixed)["step_time_s"], uneven)
        if (uneven & ~skip).any():
            pipe = recurse(uneven & ~skip, True)
        bounded = uneven.copy()
        while True:
            parts = compose(pipe, fixed)
            parts["step_time_s"] = np.where(skip, floor, parts["step_time_s"])
            rows = refine(parts["step_time_s"], bounded)
            if len(rows) == 0:
                break
            where = np.zeros(bounded.shape, dtype=bool)
            where[rows] = True
            pipe = pipe.merged(recurse(where, False), where)
            bounded &= ~where
    else:
        parts = compose(pipe, fixed)

    out: dict[str, np.ndarray] = {
        "step_time_s": parts["step_time_s"],
        "num_microbatches": m,
        "breakdown/compute": parts["compute"],
        "breakdown/comm_tp": tp_exp,
        "breakdown/comm_cp": cp_exp,
        **moe_keys(model, m * n_layers, t, ep_exp),
        "breakdown/pipeline_bubble": parts["pipeline_bubble"],
        "breakdown/comm_pp": parts["comm_pp"],
        "breakdown/comm_zero3": parts["comm_zero3"],
        "breakdown/comm_dp": parts["comm_dp"],
        "breakdown/copies": t_copies,
        "breakdown/hooks": t_hooks,
        "breakdown/optimizer": t_opt,
    }
    wanted = None if keys is None else set(keys)

    def asked(*prefixes: str) -> bool:
        return wanted is None or any(k.startswith(prefixes) for k in wanted)

    if asked("comm_total/"):
        out["comm_total/tp"] = m * n_layers * t["tp_total"]
        out["comm_total/cp"] = m * n_layers * t["cp_total"]
        out["comm_total/pp"] = p2p_steady + 2 * (L.pp - 1) * t_p2p
        out["comm_total/dp"] = dp_total
        out["comm_total/zero3"] = z3_total
    if asked("comm_bytes/"):
        out.update(comm_bytes(L.zero, m, n_layers, plan, t))
    out["compute_mb_s"] = compute_mb
    if asked("recompute_s"):
        out["recompute_s"] = m * n_layers * t["rc"]
    if asked("memory"):
        out.update(_memory(plan.memory, L, m, stages))
    if asked("energy"):
        out.update(energy(hw, out, m, n_layers, t))
    return {k: _read_only(v, L.tp.shape) for k, v in out.items() if wanted is None or k in wanted}


def _read_only(v, shape):
    """`v` as a read-only float array of `shape` (broadcast where it is not of it yet)."""
    a = np.asarray(v, dtype=float)
    if a.shape != shape:
        return np.broadcast_to(a, shape)
    a = a.view()
    a.flags.writeable = False
    return a


def _busiest_stage(split, per_layer, emb, head, pp):
    """(layers, embedding/head time, holds the embedding, holds the head) of the pipeline rank
    with the longest micro-batch: the first (embedding), the last (output layer and loss) or
    the busiest middle rank."""
    one = pp == 1
    t_first = split["first"] * per_layer + emb + np.where(one, head, 0.0)
    t_last = np.where(one, 0.0, split["last"] * per_layer + head)
    t_mid = split["middle"] * per_layer
    last = t_last >= t_first
    n = np.where(last, split["last"], split["first"])
    ends = np.where(one, emb + head, np.where(last, head, emb))
    best = np.maximum(t_first, t_last)
    mid = t_mid > best
    n = np.where(mid, split["middle"], n)
    ends = np.where(mid, 0.0, ends)
    return n, ends, one | (~last & ~mid), one | (last & ~mid)


def _memory(plan, L, m, split):
    """Memory per GPU from the plan's `StageMemory`: the busiest rank's layers' activations at
    the first rank's micro-batches in flight (an upper bound)."""
    in_flight = mem.in_flight_microbatches(L.pp, L.vpp, m)
    acts = plan.activations * split["max"] * in_flight + plan.logits
    total = plan.weights + plan.gradients + plan.optimizer + acts + plan.zero3_buffers
    return {
        "memory/weights": plan.weights,
        "memory/gradients": plan.gradients,
        "memory/optimizer": plan.optimizer,
        "memory/activations": acts,
        "memory/zero3_buffers": plan.zero3_buffers,
        "memory_per_gpu_bytes": total,
    }
