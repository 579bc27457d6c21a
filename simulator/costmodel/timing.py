"""Time of one operation on one device of a hardware profile (no contention).

Compute-bound ops run at ``peak(dtype) * efficiency(FLOPs per op)``; memory-bound ops at
``memory bandwidth * memory_efficiency``. The efficiency curves come from the profile
(datasheet-derived or calibrated), never from a global constant here.
"""

from __future__ import annotations

import numpy as np

from hwprofiles.attention_kernels import kernel_ratio, seq_ramp
from hwprofiles.precision import PRECISIONS
from hwprofiles.profile import Accelerator
from simulator.costmodel.ops import Num, Op

ACT_BYTES = {k: p.activation_bytes for k, p in PRECISIONS.items()}
"""Activation element size per training precision (`hwprofiles.precision`)."""
LOW_PRECISION = tuple(k for k, p in PRECISIONS.items() if p.quantised)
"""Precisions whose GEMMs take quantised inputs cast from bf16 activations and weights."""
QUANT_BYTES = {k: p.quant_bytes for k, p in PRECISIONS.items() if p.quantised}
"""Bytes per quantised element written by a cast, scales included (`hwprofiles.precision`)."""
QUANT_COPIES = {k: p.quant_copies for k, p in PRECISIONS.items() if p.quantised}
"""Quantised copies a forward cast writes (`hwprofiles.precision`)."""


def gemm_dtype(precision: str) -> str:
    return precision


def attention_dtype(precision: str) -> str:
    """Fused attention runs in bf16 under fp8, MXFP8 and NVFP4 training (Transformer Engine
    recipes; NVIDIA 2025, 'Pretraining LLMs with NVFP4', arXiv 2509.25149, Sec. 4: attention
    and the other non-GEMM ops stay in bf16)."""
    return PRECISIONS[precision].attention_peak


def compute_time(
    acc: Accelerator, flops: Num, dtype: str, curve: str = "matmul", eff_flops: Num | None = None
) -> Num:
    """Seconds for a compute-bound kernel of `flops` FLOPs; the efficiency curve is read at
    `eff_flops` when given (one expert's GEMM of a grouped GEMM), else at `flops`."""
    flops = np.asarray(flops, dtype=float)
    size = flops if eff_flops is None else np.asarray(eff_flops, dtype=float)
    if curve == "attention":
        eff = acc.attention_curve(dtype).at(np.maximum(size, 1.0))
    else:
        eff = acc.matmul_curve(dtype).at(np.maximum(size, 1.0))
    return np.where(flops > 0, flops / (acc.peak(dtype) * eff), 0.0)


def memory_time(acc: Accelerator, nbytes: Num) -> Num:
    """Seconds for a memory-bound kernel moving `nbytes` (read + write)."""
    return np.asarray(nbytes, dtype=float) / (
        acc.memory_bandwidth_bytes_per_s * acc.memory_efficiency
    )


def cast_time(acc: Accelerator, nbytes: Num) -> Num:
    """Seconds for dtype conversions moving `nbytes` (source read + target written); the
    profile's memory-bound rate where it has no measured cast rate."""
    if acc.cast_bytes_per_s is None:
        return memory_time(acc, nbytes)
    return np.asarray(nbytes, dtype=float) / acc.cast_bytes_per_s


def copy_time(acc: Accelerator, nbytes: Num) -> Num:
    """Seconds to copy buffers moving `nbytes` (read + write) into existing buffers; the
    profile's memory-bound rate where it has no copy rate. (A host's fresh-buffer rate:
    `costmodel.framework.copies_time`.)"""
    rate = acc.copy_bytes_per_s
    if rate is None:
        return memory_time(acc, nbytes)
    return np.asarray(nbytes, dtype=float) / rate


def _measured_attention(acc: Accelerator, op: Op, dtype: str) -> tuple[Num, Num] | None:
    """(forward, backward) seconds of causal SDPA calls whose exact shape the profile timed
    (`Accelerator.attention_timings`), NaN where a shape (of an array of layouts) was not;
    None when none was."""
    if not acc.attention_timings or op.sdpa_shape is None:
        return None
    dims = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in op.sdpa_shape))
    fwd, bwd = np.full(dims[0].shape, np.nan), np.full(dims[0].shape, np.nan)
    for idx in np.ndindex(dims[0].shape):
        vals = [float(d[idx]) for d in dims]
        if any(v != round(v) for v in vals):
            continue
        b, h, s, d = (round(v) for v in vals)
        t = acc.measured_attention(dtype, b, h, s, d, causal=True)
        if t is not None:
            fwd[idx], bwd[idx] = t.fwd_s, t.bwd_s
    if np.isnan(fwd).all():
        return None
    return fwd, bwd


def _measured_gemm(acc: Accelerator, op: Op, dtype: str) -> tuple[Num, Num] | None:
    """(forward, backward) seconds of a plain GEMM op (one kernel, not a grouped expert GEMM)
    whose FLOPs the profile timed at a workload's shape (`Accelerator.gemm_timings`), in the
    op's own array shape; None otherwise, or for arrays of several layouts (the curve)."""
    if not acc.gemm_timings or op.eff_flops is not None or np.size(op.exec_fwd_flops) != 1:
        return None
    flops = float(np.ravel(op.exec_fwd_flops)[0])
    if flops <= 0 or float(np.ravel(op.exec_bwd_flops)[0]) != 2 * flops:
        return None
    t = acc.measured_gemm(dtype, flops)
    if t is None:
        return None
    shape = np.shape(op.exec_fwd_flops)
    return _scalar(np.full(shape, t.fwd_s)), _scalar(np.full(shape, t.bwd_s))


def _shaped_gemm(acc: Accelerator, op: Op, precision: str) -> tuple[Num, Num]:
    """(forward, backward) seconds of a plain GEMM from its shape (`costmodel.gemm_shape`):
    forward (M x K) @ (K x N); backward dX = (M x N) @ (N x K) and dW = (K x M) @ (M x N).
    Operands are the precision's GEMM inputs (quantised under fp8 recipes), results are
    activations (bf16 under every recipe)."""
    from simulator.costmodel.gemm_shape import gemm_time

    m, n, k = op.mnk
    dt = gemm_dtype(precision)
    p = PRECISIONS[precision]
    e_out = p.activation_bytes
    e_in = p.quant_bytes if p.quantised else e_out
    fwd = gemm_time(acc, m, n, k, dt, e_in, e_out)
    bwd = gemm_time(acc, m, k, n, dt, e_in, e_out) + gemm_time(acc, k, n, m, dt, e_in, e_out)
    # `count` scales per-layer repeats (MoE dense share); FLOPs may carry a recompute factor
    # only through exec_*_flops, which plain GEMMs keep equal to their model FLOPs
    return fwd, bwd


def _scalar(x: np.ndarray) -> Num:
    return float(x) if np.ndim(x) == 0 else x


def op_times(acc: Accelerator, op: Op, precision: str) -> tuple[Num, Num]:
    """(forward, backward) seconds of `op` on `acc` at `precision`, per layer: `op.count`
    runs of the kernel (1 unless a MoE model's average layer runs it in some layers only)."""
    fwd, bwd = _one_run(acc, op, precision)
    if np.all(np.asarray(op.count) == 1.0):
        return fwd, bwd
    return fwd * op.count, bwd * op.count


def _one_run(acc: Accelerator, op: Op, precision: str) -> tuple[Num, Num]:
    if op.kind == "memory":
        return memory_time(acc, op.fwd_bytes), memory_time(acc, op.bwd_bytes)
    if op.kind == "cast":
        return cast_time(acc, op.fwd_bytes), cast_time(acc, op.bwd_bytes)
    if op.kind == "attention":
        dt = attention_dtype(precision)
        # the catalogue's attention figure is FlashAttention-2's; another generation runs at
        # its measured ratio to it (hwprofiles/data/attention_kernels.toml)
        ratio = 1.0 if op.kernel == "fa2" else kernel_ratio(acc.name, op.kernel)
        # and ramps up with the key length (attention_kernels.toml, half_keys)
        if np.any(np.asarray(op.key_len) > 0):
            ratio = ratio * seq_ramp(acc.name, np.asarray(op.key_len, dtype=float))
        fwd = compute_time(acc, op.exec_fwd_flops, dt, "attention") / ratio
        bwd = compute_time(acc, op.exec_bwd_flops, dt, "attention") / ratio
        measured = _measured_attention(acc, op, dt)
        if measured is not None:
            fwd = _scalar(np.where(np.isnan(measured[0]), fwd, measured[0]))
            bwd = _scalar(np.where(np.isnan(measured[1]), bwd, measured[1]))
        return fwd, bwd
    dt = gemm_dtype(precision)
    measured = _measured_gemm(acc, op, dt)
    if measured is not None:
        return measured
    if op.mnk is not None and op.eff_flops is None:
        return _shaped_gemm(acc, op, precision)
    # the backward of a GEMM is two GEMMs (dX, dW) of the forward's size each; each GEMM
    # is bounded below by its operand traffic (roofline)
    eff = op.eff_flops
    fwd = np.maximum(
        compute_time(acc, op.exec_fwd_flops, dt, eff_flops=eff), memory_time(acc, op.fwd_bytes)
    )
    bwd = 2 * np.maximum(
        compute_time(acc, np.asarray(op.exec_bwd_flops) / 2, dt, eff_flops=eff),
        memory_time(acc, np.asarray(op.bwd_bytes) / 2),
    )
    return fwd, bwd
