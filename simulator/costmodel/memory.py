"""Memory per device: weights, gradients, optimizer states and activations.

Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
Transformer Models", Sec. 4, Table 2): per layer ``s b h (34 + 5 a s / h)`` bytes for 16-bit
activations with dropout, ``/t`` terms under tensor and sequence parallelism, ``34 s b h / t``
with selective recompute and ``2 s b h`` (the layer input) with full recompute. The terms are
written out per tensor here so that grouped-query attention, gated MLPs, flash attention (no
s^2 tensors stored) and no-dropout models are covered by the same accounting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hwprofiles.precision import PRECISIONS
from simulator.costmodel.ops import Num
from simulator.model import ModelSpec

if TYPE_CHECKING:
    from simulator.options import Options

OPTIMIZER_BYTES_PER_PARAM = PRECISIONS["bf16"].state_bytes[2]
"""Adam in mixed precision: fp32 master weights + first + second moments (4+4+4 bytes);
ZeRO paper (Rajbhandari et al. 2020, Sec. 3.1) counts K = 12."""


def param_state_bytes(precision: str, opts: Options | None = None) -> tuple[float, float, float]:
    """Bytes per parameter of (weights, gradients, optimizer states), as the stack keeps them.

    Mixed precision (fp16/bf16/fp8): 16-bit weights and 12 bytes of Adam state (fp32 master +
    two moments; ZeRO paper, Sec. 3.1, K = 12). The gradient buffer is held in the dtype the
    stack reduces it in (`Options.grad_reduce_bytes`): Megatron-Core allocates its contiguous
    buffer as fp32 when `grad_reduce_in_fp32` is set and in the parameter dtype otherwise
    (megatron/core/distributed/distributed_data_parallel.py, the buffer's `grad_dtype`);
    DeepSpeed ZeRO keeps and reduces 16-bit gradients (ZeRO paper Sec. 3.1 counts 2 bytes;
    DeepSpeed docs, ZeRO stage 2: "the reduced 16-bit gradients"). With 16-bit gradients
    Megatron's fp16 optimizer also keeps an fp32 copy of them beside the master weights
    (`Options.optimizer_fp32_grads`: 4 more bytes, sharded with the optimizer states; Megatron
    Core docs, "Distributed Optimizer": fp16 params and grads take 20 bytes per parameter,
    4 + 16/d distributed). fp32/tf32: fp32 weights and gradients and 8 bytes of Adam moments
    (no separate master copy); so does torch autocast mixed precision (`Options.amp_casts`:
    the model stays fp32, its weights are cast per GEMM, see `stack_extra_bytes`). Without
    `opts`: Megatron-Core's (fp32 gradients).
    """
    w, g, o = PRECISIONS[precision].state_bytes
    if opts is None or w >= 4:
        return w, g, o
    if opts.amp_casts and PRECISIONS[precision].autocast:
        return 4.0, 4.0, 8.0  # torch AMP: fp32 weights (the master copy) and gradients
    g = float(opts.grad_reduce_bytes)
    if opts.optimizer_fp32_grads and g < 4:
        o = o + 4.0
    return w, g, o


def stack_extra_bytes(
    params: Num, grad_bytes: float, zero_stage: Num, precision: str, opts: Options | None
) -> tuple[Num, Num]:
    """(weights, gradients) bytes a torch stack keeps beside the states, on `params`
    parameters (ZeRO-0..2, where every rank holds them all):

    - torch DDP's gradient buckets (`Options.grad_bucket_copies`, ZeRO-0): with
      `gradient_as_bucket_view=False` (its default) every gradient is kept twice, "the saved
      memory size will be equal to the total gradients size" with the view (PyTorch docs,
      `DistributedDataParallel`, gradient_as_bucket_view).
    - torch autocast's weight cache (`Options.amp_casts`): the 16-bit copy of every fp32
      weight cast for a GEMM is cached for the forward and saved for the backward (PyTorch
      docs, `torch.autocast`, cache_enabled default True): 2 bytes per parameter.
    - Transformer Engine's quantised weight cache (`Options.fp8_weight_cache`): two quantised
      copies of every weight, `Precision.quant_bytes` each (embedding and output layer
      counted too, an upper bound: Megatron keeps them in bf16; a few % of a large model).
    """
    zero = 0.0 * params  # the shape of params
    if opts is None:
        return zero, zero
    buckets = (
        np.where(zero_stage == 0, params * grad_bytes, 0.0) if opts.grad_bucket_copies else zero
    )
    prec = PRECISIONS[precision]
    amp = opts.amp_casts and prec.autocast
    cache = np.where(zero_stage < 3, params * 2.0, 0.0) if amp else zero
    if opts.fp8_weight_cache and prec.quantised:
        cache = cache + np.where(zero_stage < 3, params * 2.0 * prec.quant_bytes, 0.0)
    return cache, buckets


def stage_params(
    model: ModelSpec, tp: Num, layers: Num, ends: Num, ep: Num = 1, etp: Num | None = None
) -> Num:
    """Parameters on one device of a pipeline stage of `layers` layers (before ZeRO), with
    the embedding or output matrix where `ends` is 1 (the first and last stage; Megatron
    keeps the output matrix's own copy on the last, `params_per_device`)."""
    return layers * _layer_per_device(model, tp, ep, etp) + ends * model.embedding_params() / tp


def _layer_per_device(model: ModelSpec, tp: Num, ep: Num, etp: Num | None) -> Num:
    """One layer's parameters on one device: the dense ones over tp, the routed experts over
    ep x etp (`_expert_layer`)."""
    return (model.layer_params() - model.expert_layer_params()) / tp + _expert_layer(model, ep, etp)


def params_per_device(
    model: ModelSpec,
    tp: Num,
    pp: Num,
    split: dict | None = None,
    ep: Num = 1,
    etp: Num | None = None,
) -> Num:
    """Parameters held by the busiest pipeline stage's device (before ZeRO sharding).

    Without a pipeline the device holds everything (split over tp). With pp > 1 the first
    stage holds the token (and position) embedding and the last stage its own copy of the
    output matrix (Megatron), so both ends carry about V*h/tp on top of their layers.
    `split` (`pipeline_split.split_arrays`) gives uneven stages' layer counts; without it the
    layers are taken as evenly split. A mixture-of-experts model's routed experts are split
    over ep x etp (etp default 1) instead of tp (`expert_params_per_device`).
    """
    lp = _layer_per_device(model, tp, ep, etp)
    whole = (model.embedding_params() + model.lm_head_params()) / tp
    ends = model.embedding_params() / tp
    if split is None:
        layers = model.num_hidden_layers / pp
        return layers * lp + np.where(pp == 1, whole, ends)
    end_stage = np.maximum(split["first"], split["last"]) * lp + ends
    return np.where(
        pp == 1,
        model.num_hidden_layers * lp + whole,
        np.maximum(end_stage, split["middle"] * lp),
    )


def _expert_layer(model: ModelSpec, ep: Num, etp: Num | None) -> Num:
    """Routed-expert parameters of one (average) layer on one device."""
    return model.expert_layer_params() / (ep * (1 if etp is None else etp))


def expert_params_per_device(
    model: ModelSpec,
    tp: Num,
    pp: Num,
    split: dict | None = None,
    ep: Num = 1,
    etp: Num | None = None,
) -> Num:
    """Routed-expert parameters on the device `params_per_device` describes: its layers'
    share, split over ep x etp."""
    le = _expert_layer(model, ep, etp)
    if split is None or not model.is_moe:
        return model.num_hidden_layers / pp * le
    lp = (model.layer_params() - model.expert_layer_params()) / tp + le
    ends = model.embedding_params() / tp
    end_layers = np.maximum(split["first"], split["last"])
    busy = np.where(end_layers * lp + ends >= split["middle"] * lp, end_layers, split["middle"])
    return np.where(pp == 1, model.num_hidden_layers, busy) * le


def zero_shards(zero_stage: Num, dp: Num) -> tuple[Num, Num, Num]:
    """Over how many devices (weights, gradients, optimizer states) are sharded at ZeRO stage
    `zero_stage` (Rajbhandari et al. 2020, "ZeRO", Sec. 5.1-5.3: stage 1 shards the optimizer
    states, 2 adds the gradients, 3 the parameters). Both engines divide by these."""
    if np.ndim(zero_stage) == 0 and np.ndim(dp) == 0:
        z = int(zero_stage)
        return (dp if z >= 3 else 1), (dp if z >= 2 else 1), (dp if z >= 1 else 1)
    return (
        np.where(zero_stage >= 3, dp, 1),
        np.where(zero_stage >= 2, dp, 1),
        np.where(zero_stage >= 1, dp, 1),
    )


def state_bytes(
    model: ModelSpec,
    tp: Num,
    pp: Num,
    dp: Num,
    zero_stage: Num,
    precision: str,
    split: dict | None = None,
    ep: Num = 1,
    etp: Num | None = None,
    cp: Num = 1,
    opts: Options | None = None,
) -> dict[str, Num]:
    """Weights, gradients and optimizer states per device, sharded by the ZeRO stage: dense
    parameters over dp, routed-expert parameters over the expert data-parallel group
    (tp cp dp / (ep etp) ranks, Megatron-Core's distributed optimizer does the same); bytes
    per parameter as the stack `opts` keeps them (`sharded_state_bytes`)."""
    p = params_per_device(model, tp, pp, split, ep, etp)
    pe = expert_params_per_device(model, tp, pp, split, ep, etp)
    edp = np.maximum(1, tp * cp * dp / (ep * (1 if etp is None else etp)))
    return sharded_state_bytes(p - pe, pe, precision, zero_stage, dp, edp, opts)


def sharded_state_bytes(
    dense: Num,
    expert: Num,
    precision: str,
    zero_stage: Num,
    dp: Num,
    edp: Num,
    opts: Options | None = None,
) -> dict[str, Num]:
    """Weights, gradients and optimizer states of `dense` parameters sharded over `dp` ranks
    and `expert` (routed-expert) parameters over `edp` ranks by the ZeRO stage, in the bytes
    per parameter the stack `opts` keeps (`param_state_bytes`); torch DDP's bucket copies and
    autocast's weight cache counted with the gradients and weights (`stack_extra_bytes`)."""
    w, g, o = param_state_bytes(precision, opts)
    pd, pe = dense, expert
    sw, sg, so = zero_shards(zero_stage, dp)
    ew, eg, eo = zero_shards(zero_stage, edp)
    xw, xg = stack_extra_bytes(pd + pe, g, zero_stage, precision, opts)
    return {
        "weights": pd * w / sw + pe * w / ew + xw,
        "gradients": pd * g / sg + pe * g / eg + xg,
        "optimizer": pd * o / so + pe * o / eo,
    }


def activation_bytes_per_layer(
    model: ModelSpec,
    b: Num,
    s: Num,
    tp: Num = 1,
    cp: Num = 1,
    sequence_parallel: Num = False,
    recompute: str = "none",
    act_bytes: Num = 2,
    attention: str = "flash",
    dropout: bool = False,
    etp: Num | None = None,
    routed: Num = 1.0,
) -> Num:
    """Activation bytes one layer stores for one micro-batch on one device (a MoE model's
    average layer: its MoE block in `moe_fraction` of the layers, `costmodel.moe`)."""
    h, f, kv, a = (
        model.hidden_size,
        model.intermediate_size,
        model.kv_size,
        model.num_attention_heads,
    )
    e = act_bytes
    t = b * s / cp
    sp = np.where(sequence_parallel, tp, 1)
    if recompute == "full":
        return t * h * e / sp  # only the layer input is kept
    mask = 1.0 if dropout else 0.0  # dropout masks are 1 byte per element
    n_in = 2 if model.gated_mlp else 1
    attn = (
        t * h * e / sp  # norm input
        + t * h * e / sp  # QKV input (norm output)
        + t * (model.q_size + 2 * kv) * e / tp  # Q, K, V (MLA: its heads' widths)
        + t * model.num_attention_heads * model.v_width * e / tp  # attention output
        + mask * t * h / sp  # dropout mask after projection
    )
    if attention == "naive" and recompute != "selective":
        # softmax output, its dropout mask and dropout output: a * s^2 * b terms
        scores = a * s * s * b / (tp * cp)
        attn = attn + scores * e + mask * scores + mask * scores * e
    mlp = (
        t * h * e / sp  # norm input
        + t * h * e / sp  # up-projection input
        + n_in * t * f * e / tp  # activation-function input(s)
        + t * f * e / tp  # down-projection input
        + mask * t * h / sp  # dropout mask
    )
    if model.is_moe:
        from simulator.costmodel.moe import moe_activation_bytes

        fm = model.moe_fraction
        moe = moe_activation_bytes(model, t, tp, 1 if etp is None else etp, routed, e, sp)
        mlp = (1 - fm) * mlp + fm * moe
    return attn + mlp


def in_flight_microbatches(pp: Num, vpp: Num, m: Num) -> Num:
    """Micro-batches whose activations the first stage holds at once under (interleaved) 1F1B.

    1F1B: min(m, pp). Interleaving adds (pp - 1) / (pp * vpp) per Korthikanti et al. 2022,
    Sec. 4.2.3 (the first stage warms up with more chunks).
    """
    base = np.minimum(m, pp)
    return np.where(vpp > 1, base * (1 + (pp - 1) / (pp * vpp)), base)


def logits_bytes(model: ModelSpec, b: Num, s: Num, tp: Num, cp: Num = 1) -> Num:
    """fp32 logits of one micro-batch on the last stage (cross-entropy input), 4 bytes each."""
    return b * s / cp * model.vocab_size / tp * 4


def loss_head_bytes(logits: Num, opts: Options) -> Num:
    """The loss head's bytes at its backward: the fp32 logits of one micro-batch, three times
    under torch's unfused cross-entropy (`Options.fused_cross_entropy`)."""
    return logits * (1.0 if opts.fused_cross_entropy else 3.0)


def gradients_at_peak(
    gradients: Num, buckets: Num, activations: Num, single_pass: Num, opts: Options
) -> Num:
    """Gradient bytes held at the step's peak. Persistent buffers (`Options.persistent_grads`)
    hold all of them. Gradients torch frees between steps exist at the peak only beyond the
    activations: with one micro-batch and no pipeline (`single_pass`) the peak comes either
    at the loss head's backward, before any gradient exists, or at the backward's end, when
    the activations are gone: max(G, A) = A + max(0, G - A), so max(0, G - A) is counted
    here and the activations `activations` with the activations. torch DDP's buckets
    (`buckets`, part of `gradients`) persist either way; with more micro-batches the
    gradients of the first are alive during the next one's forward."""
    if opts.persistent_grads:
        return gradients
    own = gradients - buckets
    return buckets + np.where(single_pass, np.maximum(0.0, own - activations), own)
