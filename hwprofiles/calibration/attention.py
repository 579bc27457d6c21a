"""Scaled-dot-product attention throughput (torch's fused SDPA), forward and training.

FLOP convention: a non-causal forward is ``4 * b * h * s^2 * d`` (QK^T and PV, 2 FLOPs per
MAC; softmax not counted), as in the FlashAttention papers. A causal call is credited half of
that (only the lower triangle is needed). A training call (`pass_ = "fwd+bwd"`: forward, then
backward) is credited 3.5x the forward, the backward being 2.5x (FlashAttention-2 accounting,
the same the cost model uses). The efficiency curves are built from the non-causal training
rows so that they price what a training step runs; forward-only and causal rows are kept in
the CSV for reference.
"""

from __future__ import annotations

from collections.abc import Callable

from hwprofiles.calibration.device import ELEMENT_BYTES, matmul_mode, randn, synchronizer
from hwprofiles.calibration.plan import AttentionShape, Plan
from hwprofiles.calibration.timing import Repeats, time_op

ATTENTION_COLUMNS = (
    "dtype", "pass", "batch", "heads", "seq", "head_dim", "causal", "flops", "bytes",
    "median_s", "min_s", "max_s", "count", "noisy", "flops_per_s",
)  # fmt: skip


def attention_flops(shape: AttentionShape, causal: bool) -> float:
    """Forward FLOPs of one SDPA call (see module docstring for the convention)."""
    full = 4.0 * shape.batch * shape.heads * shape.seq**2 * shape.head_dim
    return full / 2 if causal else full


TRAIN_FACTOR = 3.5
"""Forward + backward FLOPs of fused attention as a multiple of the forward (bwd = 2.5x)."""


def bench_attention(
    shape: AttentionShape,
    causal: bool,
    dtype: str,
    device: str,
    repeats: Repeats,
    train: bool = False,
) -> dict[str, object]:
    """Time one SDPA call (forward, or forward + backward with `train`); a tidy row."""
    import torch
    import torch.nn.functional as F

    dims = (shape.batch, shape.heads, shape.seq, shape.head_dim)
    q, k, v = (randn(dims, dtype, device, seed=i) for i in range(3))
    if train:
        q, k, v = (t.requires_grad_(True) for t in (q, k, v))
        grad = randn(dims, dtype, device, seed=3)

        def call() -> None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            out.backward(grad)
            q.grad = k.grad = v.grad = None

        with matmul_mode(dtype):
            timing = time_op(call, repeats, synchronizer(device))
    else:
        with matmul_mode(dtype), torch.inference_mode():
            timing = time_op(
                lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                repeats,
                synchronizer(device),
            )
    flops = attention_flops(shape, causal) * (TRAIN_FACTOR if train else 1.0)
    return {
        "dtype": dtype,
        "pass": "fwd+bwd" if train else "fwd",
        "batch": shape.batch,
        "heads": shape.heads,
        "seq": shape.seq,
        "head_dim": shape.head_dim,
        "causal": causal,
        "flops": int(flops),
        "bytes": 4 * q.numel() * ELEMENT_BYTES[dtype],
        **timing.as_row(),
        "flops_per_s": flops / timing.median_s,
    }


def run_attention(
    plan: Plan, dtype: str, device: str, tick: Callable[[str], None]
) -> list[dict[str, object]]:
    """Non-causal and causal SDPA rows (forward, and non-causal forward + backward) for every
    shape of `plan` in one dtype."""
    rows = []
    for shape in plan.attention:
        for causal in (False, True):
            rows.append(bench_attention(shape, causal, dtype, device, plan.repeats))
            tick(f"attention {dtype} s={shape.seq} causal={causal}")
        rows.append(bench_attention(shape, False, dtype, device, plan.repeats, train=True))
    return rows


PASS_COLUMNS = (
    "dtype", "batch", "heads", "seq", "head_dim", "causal", "fwd_s", "bwd_s", "fwd_noisy",
    "bwd_noisy",
)  # fmt: skip
"""Columns of `compute/attention_passes.csv`: a workload's own SDPA shapes, per pass."""


def bench_attention_passes(
    shape: AttentionShape, dtype: str, device: str, repeats: Repeats, causal: bool = True
) -> dict[str, object]:
    """Forward and backward seconds of one SDPA call at a workload's own shape.

    A FLOPs-indexed curve cannot price these: on the 2-core Xeon (AMX) of 2026-11-29, bf16
    SDPA backward took 0.45-0.65 ms per (batch x head) slice at seq 128 whatever the slice
    count, so (4, 4, 128, 64) ran 7.0 ms against 2.7 ms for (1, 4, 256, 64) of the same
    FLOPs, and its bf16 backward was 2.8x slower than fp32's (7.0 vs 2.5 ms) while its
    forward was 1.8x faster. The inputs are q, k and v views of one fused projection, as a
    transformer layer makes them; backward = (forward + backward) - forward (medians).
    """
    import torch
    import torch.nn.functional as F

    b, h, s, d = shape.batch, shape.heads, shape.seq, shape.head_dim
    qkv = randn((b, s, 3 * h * d), dtype, device, seed=0).requires_grad_(True)
    grad = randn((b, h, s, d), dtype, device, seed=3)

    def forward() -> torch.Tensor:
        q, k, v = (t.view(b, s, h, d).transpose(1, 2) for t in qkv.split(h * d, dim=2))
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    def train() -> None:
        forward().backward(grad)
        qkv.grad = None

    sync = synchronizer(device)
    with matmul_mode(dtype):
        fwd = time_op(forward, repeats, sync)
        both = time_op(train, repeats, sync)
    bwd_s = max(both.median_s - fwd.median_s, 0.0)
    return {
        "dtype": dtype,
        "batch": b,
        "heads": h,
        "seq": s,
        "head_dim": d,
        "causal": causal,
        "fwd_s": fwd.median_s,
        "bwd_s": bwd_s,
        "fwd_noisy": fwd.noisy,
        "bwd_noisy": both.noisy,
    }


def run_attention_passes(
    shapes: tuple[AttentionShape, ...],
    dtype: str,
    device: str,
    repeats: Repeats,
    tick: Callable[[str], None],
) -> list[dict[str, object]]:
    """Per-pass rows for the workload shapes a calibration was asked for (causal, as decoder
    training runs them)."""
    rows = []
    for shape in shapes:
        rows.append(bench_attention_passes(shape, dtype, device, repeats))
        tick(f"attention {dtype} workload {shape.label()}")
    return rows
