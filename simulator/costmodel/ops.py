"""Per-layer operations of a decoder-only transformer: FLOPs and bytes, per device.

One transformer layer, one micro-batch of `b` sequences of `s` tokens, on one device after
tensor parallelism (`tp`) and context parallelism (`cp`) have split the work. Every value may
be a numpy array (the planner evaluates many layouts at once); shapes broadcast.

Conventions (stated because sources differ):
- A GEMM of (m x k) @ (k x n) costs 2*m*n*k FLOPs. Backward costs twice the forward (dX and dW).
- Attention scores and attention-times-values are counted **in full** (b*s^2, no causal
  discount) in *model* FLOPs, as Megatron eq. (3) (Narayanan et al. 2021), PaLM (Chowdhery et
  al. 2022, App. B) and MosaicML do. Fused (flash) attention with a causal mask *executes*
  about half of that; `exec_fwd_flops` carries what the hardware runs, and flash attention's
  backward executes 2.5x its forward (Dao 2023, FlashAttention-2, Sec. 4 FLOP accounting).
- Memory-bound operations (norms, residual adds, activation functions, softmax of unfused
  attention, dropout) are costed in bytes read + written, at the compute dtype's element size;
  dtype conversions (kind "cast") likewise, at the profile's cast rate where it has one.
- GEMMs also carry the bytes they must read and write (both operands and the result), so the
  timing applies a roofline: a GEMM with low arithmetic intensity (the per-head score and
  context GEMMs of unfused attention, whose inner dimension is only head_dim) is memory-bound.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from simulator.model import ModelSpec

Num = float | np.ndarray
Kind = Literal["matmul", "attention", "memory", "cast"]
Attention = Literal["flash", "naive"]


@dataclass(frozen=True)
class Op:
    """One operation of one layer for one micro-batch on one device."""

    name: str
    """Readable key, e.g. "attention/qkv"; reports group by the part before the slash."""
    kind: Kind
    fwd_flops: Num
    """Model FLOPs of the forward pass (the MFU convention)."""
    exec_fwd_flops: Num
    """FLOPs the hardware executes in the forward pass."""
    exec_bwd_flops: Num
    """FLOPs the hardware executes in the backward pass."""
    fwd_bytes: Num = 0.0
    """Bytes read + written by a memory-bound forward op."""
    bwd_bytes: Num = 0.0
    recompute_selective: bool = False
    """Re-run in the backward pass under selective recompute (Korthikanti et al. 2022)."""
    sdpa_shape: tuple[Num, Num, Num, Num] | None = None
    """(batch, heads, seq, head_dim) of a fused attention call on this device, where the
    sequence is whole (no context parallelism): a profile that timed that shape prices it
    as measured (`Accelerator.attention_timings`)."""
    key_len: Num = 0.0
    """Keys each query attends over in a fused attention call (the whole sequence, also under
    context parallelism); 0 for other ops. Prices the kernel's ramp with sequence length."""
    count: Num = 1.0
    """Times the kernel runs per layer, on average over the model's layers: a MoE model is
    costed as one average layer, so DeepSeek-V3's routed-expert kernels run in 58 of 61
    layers (count 58/61) and its dense MLP in 3 (count 3/61). FLOPs and bytes are per run;
    `timing.op_times` returns the average per layer."""
    eff_flops: Num | None = None
    """FLOPs at which the matmul efficiency curve is read, when not the kernel's own: one
    expert's GEMM inside a grouped GEMM (small per-expert batches run at the efficiency of
    their own size)."""
    mnk: tuple[Num, Num, Num] | None = None
    """(M, N, K) of a plain GEMM, (M x K) @ (K x N) with M the tokens: the timing prices its
    tile and wave quantisation and its output write (`costmodel.gemm_shape`); None: priced from
    FLOPs and bytes only (grouped expert GEMMs, unfused attention's batched GEMMs)."""
    kernel: str = "fa2"
    """Fused-attention kernel generation (`hwprofiles.attention_kernels.KERNELS`): the
    catalogue's attention figures are FlashAttention-2's; the stack may run another."""

    @property
    def bwd_flops(self) -> Num:
        """Model FLOPs of the backward pass (2x forward by convention)."""
        return 2 * self.fwd_flops


def layer_ops(
    model: ModelSpec,
    b: Num,
    s: Num,
    tp: Num = 1,
    cp: Num = 1,
    sequence_parallel: Num = False,
    act_bytes: Num = 2,
    attention: Attention = "flash",
    dropout: bool = False,
    fp8: bool = False,
    ep: Num = 1,
    etp: Num | None = None,
    routed: Num = 1.0,
    quant_bytes: float = 1.0,
    quant_copies: int = 1,
) -> list[Op]:
    """Operations of one transformer layer per micro-batch per device.

    `b` sequences of `s` tokens; `tp`, `cp` split GEMMs and attention; with
    `sequence_parallel` the norms/residuals are also split over `tp` (Korthikanti et al. 2022),
    otherwise every TP rank repeats them. `act_bytes` is the activation element size.
    `dropout` adds the dropout kernels of GPT-2/3-era recipes (mask of 1 byte per element).
    `fp8` adds the casts a low-precision recipe runs around every GEMM (see `fp8_cast_ops`;
    `quant_bytes` per quantised element, `quant_copies` written forward). A mixture-of-experts
    model's MLP is the router, the routed experts over `ep` expert-parallel ranks (each split
    over `etp`, default 1; `routed` = executed over average routed tokens, see
    `costmodel.moe`) and the shared experts, in its share of the layers (`Op.count`).
    """
    h, f, kv = model.hidden_size, model.intermediate_size, model.kv_size
    t = b * s / cp  # tokens this device handles (context parallel splits the sequence)
    ln_split = np.where(sequence_parallel, tp, 1)
    e = act_bytes
    ops: list[Op] = []

    def gemm(name: str, m_: Num, k_: Num, n_: Num) -> Op:
        """(m x k) @ (k x n): 2mkn FLOPs; reads both operands, writes the result."""
        flops = 2 * m_ * k_ * n_
        nbytes = (m_ * k_ + k_ * n_ + m_ * n_) * e
        return Op(name, "matmul", flops, flops, 2 * flops, nbytes, 2 * nbytes, mnk=(m_, n_, k_))

    drop = 1.0 if dropout else 0.0

    def mem_op(name: str, fwd_bytes: Num, bwd_bytes: Num, selective: bool = False) -> Op:
        return Op(name, "memory", 0.0, 0.0, 0.0, fwd_bytes, bwd_bytes, selective)

    # Attention block -------------------------------------------------------------------
    ops.append(
        Op(
            "attention/norm",
            "memory",
            0.0,
            0.0,
            0.0,
            2 * t * h * e / ln_split,
            4 * t * h * e / ln_split,
        )
    )
    # Q, K, V projections (MLA: the low-rank q and kv projections, as one GEMM of their
    # parameters' width); heads x head width may differ from h (Qwen3, MLA)
    if model.is_mla:
        qkv_width = (model.attention_params() - model.attention_out_params()) / h
    else:
        qkv_width = model.q_size + 2 * kv
    ops.append(gemm("attention/qkv", t, h, qkv_width / tp))
    # scores (Q K^T, width heads x qk head dim) and context (A V, heads x v head dim):
    # 2 * b * s^2 * (q + v) per sequence in full (= 4 b s^2 h for ordinary heads);
    # with cp each rank holds s/cp queries against all s keys.
    v_total = model.num_attention_heads * model.v_width
    core = 2 * b * s * s * (model.q_size + v_total) / (tp * cp)
    if attention == "flash":
        # causal flash attention skips masked blocks: ~half the work is executed
        shape = (
            None
            if np.any(np.asarray(cp) != 1)
            else (b, model.num_attention_heads / tp, s, model.head_width)
        )
        ops.append(Op("attention/core", "attention", core, 0.5 * core, 1.25 * core,
                      recompute_selective=True, sdpa_shape=shape, key_len=s))  # fmt: skip
    else:
        # two batched GEMMs per head with inner dimension head_dim: read Q, K (and P, V),
        # write the s x s scores (and the context)
        heads = model.num_attention_heads / tp
        d = model.head_width
        elems = b * heads * (s / cp) * s  # score elements on this device
        qk_bytes = (elems + 2 * b * heads * (s / cp) * d + b * heads * s * d) * e
        ops.append(Op("attention/core", "matmul", core, core, 2 * core, 2 * qk_bytes,
                      4 * qk_bytes, recompute_selective=True))  # fmt: skip
        # unfused softmax (scale + mask fused) reads and writes the score tensor:
        # fwd 2 passes (read + write), bwd 3 passes (read probs, read grad, write grad);
        # attention dropout writes a 1-byte mask and a dropped copy, bwd reads mask and grad
        probs = elems * e
        ops.append(mem_op("attention/softmax", 2 * probs + drop * (elems + 2 * probs),
                          3 * probs + drop * (elems + 2 * probs), True))  # fmt: skip
    ops.append(gemm("attention/proj", t, v_total / tp, h))
    # bias + dropout + residual add (fused in Megatron): read 2, write 1 (+ 1-byte mask)
    res = (3 * e + drop) * t * h / ln_split
    ops.append(mem_op("attention/residual", res, res))
    # MLP block -------------------------------------------------------------------------
    ops.append(mem_op("mlp/norm", 2 * t * h * e / ln_split, 4 * t * h * e / ln_split))
    n_in = 2 if model.gated_mlp else 1
    dense = 1.0 - model.moe_fraction
    if dense > 0:
        mlp = [
            gemm("mlp/up", t, h, f * n_in / tp),
            # activation: reads the n_in inputs, writes f; backward reads inputs + grad, writes
            mem_op("mlp/act", (n_in + 1) * t * f * e / tp, (2 * n_in + 1) * t * f * e / tp),
            gemm("mlp/down", t, f / tp, h),
        ]
        ops.extend(mlp if dense == 1.0 else [replace(o, count=dense) for o in mlp])
    if model.is_moe:
        from simulator.costmodel.moe import moe_ops  # moe builds on this module's Op

        ops.extend(moe_ops(model, t, tp, ep, 1 if etp is None else etp, routed, e))
    ops.append(mem_op("mlp/residual", res, res))
    if fp8:
        gemms = [o for o in ops if o.kind == "matmul"]
        ops.extend(fp8_cast_ops(gemms, t, e, quant_bytes, quant_copies))
    return ops


def fp8_cast_ops(
    gemms: list[Op], t: Num, e: Num, quant_bytes: float = 1.0, quant_copies: int = 1
) -> list[Op]:
    """Quantisation kernels of fp8 training around each GEMM (Transformer Engine recipe).

    Forward: the activation input and the weight are read in 16-bit and written in fp8
    (e + 1 bytes per element, plus the amax reduction folded into the same pass). Backward:
    the output gradient is cast, and Hopper's fp8 GEMMs take only the "TN" layout, so the
    input and weight are also written transposed (Micikevicius et al. 2022, "FP8 Formats for
    Deep Learning", Sec. 4; NVIDIA Transformer Engine docs, "FP8 primer"). With the GEMM's
    operand bytes (k*t + k*n), the traffic is (e+1) per element of each cast tensor.
    Block-scaled formats (MXFP8, NVFP4) write `quant_bytes` per element (scales included) and
    `quant_copies` = 2 copies forward (row- and column-wise), the gradient likewise backward.
    """
    out = []
    q = quant_bytes
    for g in gemms:
        # the GEMM's bytes are (t*k + k*n + t*n) * e: the elements it reads and writes
        operands = np.asarray(g.fwd_bytes) / e
        fwd = (e + quant_copies * q) * operands
        bwd = 2 * (e + q) * operands if quant_copies == 1 else (e + 2 * q) * operands
        out.append(
            Op(g.name.split("/")[0] + "/fp8_cast", "memory", 0.0, 0.0, 0.0, fwd, bwd,
               count=g.count)
        )  # fmt: skip
    return out


def head_ops(
    model: ModelSpec, b: Num, s: Num, tp: Num = 1, cp: Num = 1, act_bytes: Num = 2
) -> list[Op]:
    """Final norm, logits GEMM and the softmax cross-entropy (last pipeline stage).

    The logits GEMM is vocabulary-parallel over `tp` (Megatron); cross-entropy reads and
    writes the b*s*V/tp logits in fp32 (4 bytes; Megatron computes the loss in fp32).
    """
    h, v = model.hidden_size, model.vocab_size
    t = b * s / cp
    logits = 2 * t * h * v / tp
    lbytes = (t * h + h * v / tp + t * v / tp) * act_bytes
    xent = t * v / tp * 4
    return [
        Op("head/norm", "memory", 0.0, 0.0, 0.0, 2 * t * h * act_bytes, 4 * t * h * act_bytes),
        Op("head/logits", "matmul", logits, logits, 2 * logits, lbytes, 2 * lbytes),
        Op("head/loss", "memory", 0.0, 0.0, 0.0, 3 * xent, 2 * xent),
    ]


def embedding_ops(model: ModelSpec, b: Num, s: Num, cp: Num = 1, act_bytes: Num = 2) -> list[Op]:
    """Embedding lookup (first pipeline stage): a gather, memory-bound; no model FLOPs."""
    t = b * s / cp
    h = model.hidden_size
    return [
        Op(
            "embedding/lookup",
            "memory",
            0.0,
            0.0,
            0.0,
            2 * t * h * act_bytes,
            3 * t * h * act_bytes,
        )
    ]
