"""The layer's operations as a given training stack runs them (shared by both engines).

`layer_ops` describes the transformer; the stack adds what its implementation does around
it: fp8 casts (Transformer Engine) and torch autocast's casts (`Options.amp_casts`), in the
layers and in the head.
"""

from __future__ import annotations

from dataclasses import replace

from hwprofiles.precision import PRECISIONS
from simulator.costmodel.moe import routed_factor
from simulator.costmodel.ops import Num, Op, head_ops, layer_ops
from simulator.costmodel.timing import ACT_BYTES, LOW_PRECISION, QUANT_BYTES, QUANT_COPIES
from simulator.model import ModelSpec
from simulator.options import Options


def stack_layer_ops(
    model: ModelSpec,
    b: Num,
    s: Num,
    tp: Num,
    cp: Num,
    sequence_parallel: Num,
    precision: str,
    opts: Options,
    ep: Num = 1,
    etp: Num | None = None,
) -> list[Op]:
    """One layer's ops per micro-batch per device, with the stack's extra kernels; `ep` and
    `etp` place a mixture-of-experts model's experts (see `costmodel.moe`)."""
    e = ACT_BYTES[precision]
    ops = layer_ops(
        model, b, s, tp, cp, sequence_parallel, e, opts.attention, opts.dropout,
        precision in LOW_PRECISION, ep, etp,
        routed_factor(ep, opts.moe_capacity_factor, opts.moe_imbalance),
        QUANT_BYTES.get(precision, 1.0), QUANT_COPIES.get(precision, 1),
    )  # fmt: skip
    if opts.attention_kernel != "fa2":
        ops = [
            replace(o, kernel=opts.attention_kernel) if o.kind == "attention" else o for o in ops
        ]
    if opts.amp_casts and PRECISIONS[precision].autocast:
        ops.append(amp_cast_op(model, b * s / cp, tp))
    return ops


def amp_cast_op(model: ModelSpec, tokens: Num, tp: Num) -> Op:
    """torch.autocast's casts in one layer (memory-bound; PyTorch AMP docs, "autocast").

    Weights stay fp32 and are cast to 16-bit for every GEMM in the forward (read 4, write 2
    bytes per weight); their gradients come back through the cast (read 2, write 4). Norms run
    in fp32 (autocast's fp32 op list), so the two norm outputs are cast to 16-bit before the
    next GEMM (read 4, write 2 per element) and their gradients cast back in the backward.
    """
    weights = (model.layer_params() - model.norm_params()) / tp
    acts = 2 * tokens * model.hidden_size
    return Op("amp/cast", "cast", 0.0, 0.0, 0.0, 6 * (weights + acts), 6 * (weights + acts))


def stack_head_ops(
    model: ModelSpec, b: Num, s: Num, tp: Num, cp: Num, precision: str, opts: Options
) -> list[Op]:
    """The head's ops (final norm, logits, loss) per micro-batch per device, with the stack's
    extra kernels."""
    ops = head_ops(model, b, s, tp, cp, ACT_BYTES[precision])
    if opts.amp_casts and PRECISIONS[precision].autocast:
        ops.append(amp_head_cast_op(model, b * s / cp, tp))
    return ops


def amp_head_cast_op(model: ModelSpec, tokens: Num, tp: Num) -> Op:
    """torch.autocast's casts around the logits (memory-bound; PyTorch AMP docs, "autocast").

    The logits weight (vocab x hidden, fp32) is cast to 16-bit for the GEMM (read 4, write 2
    bytes per element) and its gradient back (read 2, write 4). Cross-entropy is on autocast's
    fp32 list, so the 16-bit logits are cast to fp32 before it (read 2, write 4 per logit) and
    their gradient back to 16-bit (read 4, write 2): on the 2-core Xeon of 2026-11-29 these
    two logit casts were 8.4 ms of a 160 ms bf16 step (torch profiler, `aten::copy_`).
    """
    per_elem = 6  # bytes: 4 read + 2 written, or 2 read + 4 written
    weight = model.vocab_size * model.hidden_size / tp
    logits = tokens * model.vocab_size / tp
    return Op("head/amp_cast", "cast", 0.0, 0.0, 0.0, per_elem * (weight + logits),
              per_elem * (weight + logits))  # fmt: skip
