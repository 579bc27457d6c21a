"""FLOP counts per training step: llmcap's own count and the published formulas it must match.

MFU convention (stated once, used everywhere): model FLOPs = forward + backward (2x forward)
of every GEMM and of attention counted in full (no causal discount), no recompute; divided by
step time, GPUs and the dense peak of the compute dtype. HFU adds the recomputed forward work.
Mixture-of-experts models count *active* parameters only: each token's `num_experts_per_tok`
routed experts (no capacity padding, no load imbalance) plus shared experts and router, as
DeepSeek-V3 and Megatron-Core report MoE MFU.
"""

from __future__ import annotations

from simulator.costmodel.ops import Num, head_ops, layer_ops
from simulator.model import ModelSpec


def model_flops_per_token(model: ModelSpec, seq_len: int) -> float:
    """Model FLOPs (fwd + bwd, no recompute) per trained token, from the op list."""
    layer = sum(op.fwd_flops * op.count for op in layer_ops(model, 1, seq_len))
    head = sum(op.fwd_flops for op in head_ops(model, 1, seq_len))
    return float(3 * (model.num_hidden_layers * layer + head) / seq_len)


def recompute_flops_per_token(model: ModelSpec, seq_len: int, recompute: str) -> float:
    """Extra forward FLOPs executed per token by activation recompute (the HFU surplus)."""
    ops = layer_ops(model, 1, seq_len)
    if recompute == "full":
        extra = sum(op.fwd_flops * op.count for op in ops)
    elif recompute == "selective":
        extra = sum(op.fwd_flops * op.count for op in ops if op.recompute_selective)
    else:
        extra = 0.0
    return float(model.num_hidden_layers * extra / seq_len)


def model_flops_per_step(model: ModelSpec, seq_len: int, global_batch: Num) -> Num:
    return model_flops_per_token(model, seq_len) * seq_len * global_batch


def megatron_eq3_flops(
    batch: int, seq_len: int, layers: int, hidden: int, vocab: int, recompute: bool = True
) -> float:
    """Narayanan et al. 2021, eq. (3): ``96 B s l h^2 (1 + s/(6h) + V/(16 l h))``.

    Assumes MHA, a 4h MLP and full activation recompute (one extra forward pass). With
    `recompute=False` the same derivation gives ``72 B s l h^2 (1 + s/(6h) + V/(12 l h))``.
    """
    b, s, lyr, h, v = batch, seq_len, layers, hidden, vocab
    if recompute:
        return 96 * b * s * lyr * h * h * (1 + s / (6 * h) + v / (16 * lyr * h))
    return 72 * b * s * lyr * h * h * (1 + s / (6 * h) + v / (12 * lyr * h))


def palm_flops_per_token(
    n_params: float, layers: int, heads: int, head_dim: int, seq: int
) -> float:
    """PaLM (Chowdhery et al. 2022, App. B): ``6 N + 12 L H Q T`` model FLOPs per token."""
    return 6 * n_params + 12 * layers * heads * head_dim * seq
