"""The step-level plan: what one rank of a pipeline stage does around its layers in a step.

`layer` plans one transformer layer; this module plans the rest of the step for one
representative rank of a pipeline stage, as dataclasses whose sizes are numbers for one layout
(the SimPy engine, one stage at a time) or numpy arrays over many layouts (the closed form,
for the planner):

- `Buckets`: a data-parallel collective over the stage's gradients or parameters, issued
  bucket by bucket on the data-parallel stream (torch DDP / Megatron-Core buckets): the
  gradient all-reduce (ZeRO-0) or reduce-scatter (ZeRO-1/2) beside the last micro-batch's
  backward, the ZeRO-1/2 parameter all-gather behind the first forward (or after the
  optimizer), and the routed experts' own reduction and gather over their group.
- `Zero3Unit`: a ZeRO-3 / FSDP unit (each layer, the embedding, the output head): gathered
  before its forward and again before its backward, its gradients reduce-scattered after its
  backward, every micro-batch; `prefetch` units are gathered ahead of the one computing.
- `PipelineSends`: the point-to-point sends of activations (forward) and their gradients
  (backward), one per micro-batch and virtual stage.
- `StageMemory`: what the rank holds: weights, gradients and optimizer states (sharded by ZeRO),
  the activations one layer stores per micro-batch (its recompute class), the last stage's
  logits, ZeRO-3's gathered buffers.

`step_plan` builds them once; the closed form (`analysis.closed_form`) evaluates them, the SimPy
engine (`simulator.des.step`) executes them. Where the closed form summarises what the engine
executes, the rule is named in `rules`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.costmodel.memory import (
    activation_bytes_per_layer,
    gradients_at_peak,
    logits_bytes,
    loss_head_bytes,
    param_state_bytes,
    sharded_state_bytes,
    stack_extra_bytes,
    zero_shards,
)
from simulator.costmodel.moe import routed_factor
from simulator.costmodel.ops import Num
from simulator.model import ModelSpec
from simulator.options import Options
from simulator.parallel import BYTES_PER_PARAM, RECOMPUTE_MODES


@dataclass(frozen=True, slots=True)
class Buckets:
    """A data-parallel collective of `total` bytes issued in buckets of `bucket` bytes."""

    name: str
    """"grad", "param", "expert grad" or "expert param"."""
    kind: str
    """"all_reduce", "reduce_scatter" or "all_gather"."""
    total: Num
    """Bytes over all buckets (the stage rank's gradients or parameters)."""
    bucket: Num
    """Bytes per bucket (`Options.bucket_size`); `total` for one collective."""
    dim: str
    """Its group: "dp" (the data-parallel group, tp cp apart) or "expert_dp" (the routed
    experts' data-parallel group, ep etp apart)."""
    group: Num
    """Ranks in the group."""
    stride: Num
    """Rank distance between the group's members."""
    where: Num
    """Whether the layout runs it (bool, or a bool array over layouts)."""
    window: str
    """What it may overlap: "backward" (each bucket as soon as the last micro-batch's
    backward has produced it), "forward" (the first forward, ZeRO-1/2's gather of the
    parameters the previous optimizer step updated)."""
    overlapped: bool
    """`Options.overlap_grad_reduce` ("backward") or `overlap_param_gather` ("forward"); off:
    after the whole backward, or after the optimizer step."""

    def count(self) -> Num:
        """Buckets issued."""
        return np.maximum(1.0, np.ceil(self.total / self.bucket))

    def full(self) -> Num:
        """Bytes of one full bucket."""
        return np.minimum(self.bucket, self.total)

    def remainder(self) -> Num:
        """Bytes of the one bucket that is not full."""
        return self.total - (self.count() - 1) * self.bucket

    def split(self, pieces: list[float], from_end: bool) -> list[tuple[float, int]]:
        """One layout's buckets over `pieces` (bytes, in the order they become ready): (bytes,
        index of the piece holding the bucket's last byte) per bucket, in issue order. Laid
        from the end (gradients: the last bucket is full) or from the start (parameters)."""
        total, bb = sum(pieces), float(self.bucket)
        if total <= 0:
            return []
        n = int(-(-total // bb))
        if from_end:
            bounds = [max(0.0, total - (n - 1 - j) * bb) for j in range(n)]
        else:
            bounds = [min(total, (j + 1) * bb) for j in range(n)]
        out, cum, piece, lo = [], 0.0, 0, 0.0
        for hi in bounds:
            while piece < len(pieces) - 1 and cum + pieces[piece] < hi * (1 - 1e-12):
                cum += pieces[piece]
                piece += 1
            if hi > lo:
                out.append((hi - lo, piece))
            lo = hi
        return out


@dataclass(frozen=True, slots=True)
class Zero3Unit:
    """A ZeRO-3 / FSDP unit: per micro-batch, an all-gather of `gather` bytes before its
    forward and again before its backward, a reduce-scatter of `reduce` bytes after it."""

    name: str
    """"embedding", "layer" or "head"."""
    params: Num
    """Parameters of one such unit per TP rank (the dense ones: routed experts stay sharded
    over their expert-parallel group)."""
    count: Num
    """How many such units the stage's rank holds."""
    gather: Num
    reduce: Num
    group: Num
    stride: Num
    prefetch: int
    """Units gathered ahead of the one computing (1 with `Options.overlap_param_gather`,
    FSDP's forward and backward prefetch; 0: each gather waits for the compute before it)."""
    ahead: Num = 1.0
    """Share of the unit's gather issued ahead under the stack's prefetch limit
    (`prefetch_share`); the rest is gathered when the unit computes, the compute waiting."""
    regather: Num = 1.0
    """Gathers before the unit's backward per micro-batch (`regathers`): 1 resharded after its
    forward, 0 kept gathered."""


@dataclass(frozen=True, slots=True)
class PipelineSends:
    """The stage's point-to-point sends: activations to the next virtual stage after each
    forward, their gradients to the previous one after each backward."""

    nbytes: Num
    """One send (activations scattered over TP, `layer.messages`)."""
    stride: Num
    """Rank distance to the next pipeline rank (tp cp dp, Megatron's order)."""
    per_microbatch: Num
    """Sends of one micro-batch on one rank: forward and backward per model chunk (2 vpp)."""
    fill_drain: Num
    """Sends on the warm-up and cool-down chains, which nothing hides: 2 (pp - 1)."""
    where: Num
    """pp > 1."""
    overlapped: bool
    """`Options.overlap_p2p`: steady-state sends run beside compute."""


@dataclass(frozen=True, slots=True)
class StageMemory:
    """Bytes the stage's rank holds (`costmodel.memory` formulas)."""

    weights: Num
    gradients: Num
    optimizer: Num
    """Static, each sharded by its ZeRO shard count (dense over dp, experts over their group)."""
    activations: Num
    """One layer's stored activations for one micro-batch, for the layout's recompute class
    (allocated by the forward, freed by the backward)."""
    logits: Num
    """The loss head at its backward: fp32 logits of one micro-batch, three of them under an
    unfused cross-entropy (`costmodel.memory.loss_head_bytes`; last stage only)."""
    zero3_buffers: Num
    """ZeRO-3's gathered parameters and gradients at once, two layers (the one computing and
    the one prefetched); the SimPy engine allocates and frees them unit by unit."""


@dataclass(frozen=True, slots=True)
class StepPlan:
    """Everything one stage's rank does in a step beyond its layers' kernels."""

    grads: tuple[Buckets, ...]
    """The gradient reductions, in the order they run on the data-parallel stream."""
    params: tuple[Buckets, ...]
    """ZeRO-1/2's parameter all-gathers (dense, experts)."""
    zero3: tuple[Zero3Unit, ...]
    """ZeRO-3 units in forward order of kinds: embedding, layers, head."""
    sends: PipelineSends
    memory: StageMemory
    optimizer_params: Num
    """Parameters the rank's optimizer steps over (its ZeRO shard, dense and experts)."""
    w_bytes: float
    """Bytes per gathered weight (the compute dtype)."""
    g_bytes: float
    """Bytes per reduced gradient element (`Options.grad_reduce_bytes`)."""


def regathers(opts: Options, unit: str) -> float:
    """Gathers a ZeRO-3 unit (`Zero3Unit.name`) needs before its backward, per micro-batch:
    0 for the root unit's embedding and head with `Options.zero3_root_kept` (torch FSDP2
    keeps the root gathered from forward to backward), else 1 (resharded after the forward,
    gathered again). Both engines read it."""
    return 0.0 if opts.zero3_root_kept and unit in ("embedding", "head") else 1.0


def kept_params(units: tuple[Zero3Unit, ...]) -> Num:
    """Parameters of the ZeRO-3 units that stay gathered from forward to backward (gathered
    once per micro-batch, `regathers`): for the framework's copies (`copy_bytes(kept=)`)."""
    return sum((u.params * u.count * (1.0 - u.regather) for u in units), 0.0)


def end_params(model: ModelSpec, tp: Num, pp: Num) -> tuple[Num, Num]:
    """(embedding, output head) parameters per TP rank beyond the layers: the first stage holds
    the embedding; with pp > 1 the last stage holds its own copy of the output matrix, V*h/tp
    (Megatron), with pp = 1 the untied output matrix is the head (0 if tied)."""
    head = np.where(pp > 1, model.vocab_size * model.hidden_size, model.lm_head_params()) / tp
    return model.embedding_params() / tp, head if np.ndim(head) else float(head)


def prefetch_share(model: ModelSpec, tp: Num, limit: float | None, unit: str = "layer") -> Num:
    """Share of a ZeRO-3 unit's gather issued ahead of its compute under a prefetch limit of
    `limit` parameters (`Options.zero3_prefetch_params`; None: all of it). DeepSpeed fetches
    submodule by submodule: each of a layer's weight matrices (QKV, attention output, MLP in,
    MLP out, per TP rank) is prefetched up to `limit` while the module before it computes,
    and its remainder is fetched when it is needed (DeepSpeed ZeRO-3 docs, 'stage3_prefetch_
    bucket_size': 'the size of the fixed buffer for prefetching parameters'). Norms and biases
    are negligible. The embedding and the head are one matrix each."""
    if limit is None:
        return 1.0
    if unit != "layer":
        emb = model.vocab_size * model.hidden_size / np.asarray(tp, dtype=float)
        return np.minimum(1.0, limit / emb)
    h, f = model.hidden_size, model.intermediate_size
    dense = 1.0 - model.moe_fraction
    out = model.attention_out_params()
    n_in = 2 if model.gated_mlp else 1
    pieces = [model.attention_params() - out, out, dense * h * f * n_in, dense * f * h]
    tp = np.asarray(tp, dtype=float)
    total = sum(p / tp for p in pieces)
    return sum(np.minimum(p / tp, limit) for p in pieces) / total


def layer_unit_params(model: ModelSpec, tp: Num) -> Num:
    """Dense parameters of one layer per TP rank (a ZeRO-3 unit; routed experts excluded)."""
    return (model.layer_params() - model.expert_layer_params()) / tp


def activations(
    model: ModelSpec,
    mb: Num,
    s: Num,
    tp: Num,
    cp: Num,
    sp: Num,
    recompute: Num | str,
    act_bytes: float,
    opts: Options,
    ep: Num,
    etp: Num,
) -> Num:
    """One layer's stored activations per micro-batch for the recompute class (a name, or
    codes 0 none / 1 selective / 2 full over layouts)."""
    r = routed_factor(ep, opts.moe_capacity_factor, opts.moe_imbalance)

    def of(name: str) -> Num:
        return activation_bytes_per_layer(
            model, mb, s, tp, cp, sp, name, act_bytes, opts.attention, opts.dropout, etp, r
        )

    if isinstance(recompute, str):
        return of(recompute)
    out = np.zeros(np.shape(recompute))
    for code, name in enumerate(RECOMPUTE_MODES):
        out = np.where(recompute == code, of(name), out)
    return out


def step_plan(
    model: ModelSpec,
    precision: str,
    opts: Options,
    *,
    tp: Num,
    cp: Num,
    dp: Num,
    pp: Num,
    vpp: Num,
    zero: Num,
    dense: Num,
    expert: Num,
    edp: Num,
    estride: Num,
    layers: Num,
    has_emb: Num,
    has_head: Num,
    p2p_bytes: Num,
    act_per_layer: Num,
    logits: Num,
    microbatches: Num | None = None,
) -> StepPlan:
    """The step plan of one stage's rank holding `dense` and `expert` parameters (before ZeRO
    sharding), `layers` layers, the embedding if `has_emb` and the output head if `has_head`
    (the first / last pipeline stage); `edp` ranks `estride` apart reduce its experts."""
    w, g = BYTES_PER_PARAM[precision], opts.grad_reduce_bytes
    stride = tp * cp
    z12 = (zero == 1) | (zero == 2)
    bb = opts.bucket_size(dp)
    e_grad, e_param = expert * g, expert * w
    # the experts' first: on the SimPy engine's DP stream their gradients are final from the
    # last backward's first layer on
    grads = (
        Buckets("expert grad", "all_reduce", e_grad, _one(e_grad), "expert_dp", edp, estride,
                (zero == 0) & (expert > 0), "backward", opts.overlap_grad_reduce),
        Buckets("expert grad", "reduce_scatter", e_grad, _one(e_grad), "expert_dp", edp,
                estride, z12 & (expert > 0), "backward", opts.overlap_grad_reduce),
        Buckets("grad", "all_reduce", dense * g, bb, "dp", dp, stride, zero == 0, "backward",
                opts.overlap_grad_reduce),
        Buckets("grad", "reduce_scatter", dense * g, bb, "dp", dp, stride, z12, "backward",
                opts.overlap_grad_reduce),
    )  # fmt: skip
    params = (
        Buckets("param", "all_gather", dense * w, bb, "dp", dp, stride, z12, "forward",
                opts.overlap_param_gather),
        Buckets("expert param", "all_gather", e_param, _one(e_param), "expert_dp", edp,
                estride, z12 & (expert > 0), "forward", opts.overlap_param_gather),
    )  # fmt: skip
    emb, head = end_params(model, tp, pp)
    lp = layer_unit_params(model, tp)
    prefetch = 1 if opts.overlap_param_gather else 0
    lim = opts.zero3_prefetch_params if prefetch else None
    zero3 = tuple(
        Zero3Unit(name, p, n, p * w, p * g, dp, stride, prefetch,
                  prefetch_share(model, tp, lim, name), regathers(opts, name))
        for name, p, n in (("layer", lp, layers), ("embedding", emb, np.where(has_emb, 1.0, 0.0)),
                           ("head", head, np.where(has_head, 1.0, 0.0)))
    )  # fmt: skip
    sends = PipelineSends(p2p_bytes, tp * cp * dp, 2 * vpp, 2 * (pp - 1), pp > 1, opts.overlap_p2p)
    memory, local = stage_memory(
        model, precision, opts, tp=tp, pp=pp, dp=dp, zero=zero, dense=dense, expert=expert,
        edp=edp, layers=layers, act_per_layer=act_per_layer, logits=logits,
        microbatches=microbatches,
    )  # fmt: skip
    return StepPlan(grads, params, zero3, sends, memory, local, w, g)


def stage_memory(
    model: ModelSpec,
    precision: str,
    opts: Options,
    *,
    tp: Num,
    pp: Num,
    dp: Num,
    zero: Num,
    dense: Num,
    expert: Num,
    edp: Num,
    layers: Num,
    act_per_layer: Num,
    logits: Num,
    microbatches: Num | None = None,
) -> tuple[StageMemory, Num]:
    """(`StepPlan.memory`, `StepPlan.optimizer_params`) of the rank `step_plan` describes,
    alone: what the planner reads of every layout before pricing any
    (`analysis.closed_form.memory_and_floor`)."""
    st = sharded_state_bytes(dense, expert, precision, zero, dp, edp, opts)
    wb, gb, _ = param_state_bytes(precision)  # the gathered unit in the compute dtype
    z3_buf = np.where(zero == 3, 2 * model.layer_params() / tp * (wb + gb), 0.0)
    head = loss_head_bytes(logits, opts)
    grad_mem = st["gradients"]
    if microbatches is not None:  # torch frees gradients between steps (Options)
        buckets = stack_extra_bytes(
            dense + expert, param_state_bytes(precision, opts)[1], zero, precision, opts
        )[1]
        single = (np.asarray(microbatches) == 1) & (np.asarray(pp) == 1)
        grad_mem = gradients_at_peak(grad_mem, buckets, layers * act_per_layer + head, single, opts)
    memory = StageMemory(st["weights"], grad_mem, st["optimizer"], act_per_layer, head, z3_buf)
    local = dense / zero_shards(zero, dp)[2] + expert / zero_shards(zero, edp)[2]
    return memory, local


def _one(total: Num) -> Num:
    """Bucket size for one collective of `total` bytes (1 where nothing moves)."""
    return np.where(total > 0, total, 1.0) if np.ndim(total) else max(float(total), 1.0)


__all__ = [
    "Buckets",
    "PipelineSends",
    "StageMemory",
    "StepPlan",
    "Zero3Unit",
    "activations",
    "end_params",
    "layer_unit_params",
    "logits_bytes",
    "stage_memory",
    "step_plan",
]
