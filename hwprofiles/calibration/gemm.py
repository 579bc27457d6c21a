"""GEMM throughput per dtype: a square sweep and the GEMMs a transformer layer really runs.

A forward linear layer ``Y[T, n] = X[T, k] @ W[k, n]`` is one GEMM of m=T, k, n; its backward
runs two more with the same FLOPs and different shapes: ``dX = dY @ W^T`` (m=T, k=n, n=k) and
``dW = X^T @ dY`` (m=k, k=T, n=n). Per hidden size h the layer runs QKV (h -> 3h, no GQA), the
output projection (h -> h), MLP up (h -> 4h) and down (4h -> h), and the logits (h -> vocab).
FLOPs per GEMM are 2*m*n*k (one multiply and one add per MAC), bytes are the three operands
read/written once: (m*k + k*n + m*n) * element size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hwprofiles.calibration.device import (
    ELEMENT_BYTES,
    matmul_mode,
    randn,
    synchronizer,
    torch_dtype,
)
from hwprofiles.calibration.plan import Plan
from hwprofiles.calibration.timing import Repeats, time_op

GEMM_COLUMNS = (
    "kind", "name", "pass", "dtype", "m", "n", "k", "flops", "bytes",
    "median_s", "min_s", "max_s", "count", "noisy", "flops_per_s", "rows_measured",
)  # fmt: skip
CALL_TARGET_S = 0.1
"""A CPU GEMM slower than this per call is timed on fewer rows m and scaled back by m: on an
AMD EPYC (Zen 3) VM without AMX or AVX-512 BF16 (2026-12-02) a 512x1024x1024 bf16 GEMM took
2.3 s against 0.03 s in fp32 (1 thread), and fixed repetitions of the larger sizes ran for
minutes. Rows of a GEMM go through the same kernel independently, so time scales with m."""
MIN_ROWS = 8


def sized_rows(m: int, k: int, n: int, dtype: str) -> int:
    """Rows to time of an m x k @ k x n CPU GEMM so that one call takes about `CALL_TARGET_S`
    (a probe on `MIN_ROWS` rows sets the time per row); m itself when it is fast enough."""
    import time

    import torch

    rows = min(m, MIN_ROWS)
    a = randn((rows, k), dtype, "cpu", seed=0)
    b = randn((k, n), dtype, "cpu", seed=1)
    with matmul_mode(dtype), torch.inference_mode():
        torch.matmul(a, b)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        per_row = max(time.perf_counter() - t0, 1e-9) / rows
    return int(min(m, max(MIN_ROWS, CALL_TARGET_S / per_row)))


@dataclass(frozen=True)
class GemmShape:
    """One GEMM C[m, n] = A[m, k] @ B[k, n] and where it comes from."""

    kind: str
    """"square" (sweep) or "transformer"."""
    name: str
    """e.g. "square-1024" or "h512/mlp_up"."""
    pass_: str
    """"fwd", "bwd_dx" or "bwd_dw"."""
    m: int
    n: int
    k: int

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.n * self.k

    def bytes(self, dtype: str) -> float:
        return float(self.m * self.k + self.k * self.n + self.m * self.n) * ELEMENT_BYTES[dtype]


def transformer_gemms(hidden: int, tokens: int, vocab: int) -> list[GemmShape]:
    """Forward and both backward GEMMs of one layer (plus logits) at hidden size `hidden`."""
    layers = {
        "qkv": (hidden, 3 * hidden),
        "proj": (hidden, hidden),
        "mlp_up": (hidden, 4 * hidden),
        "mlp_down": (4 * hidden, hidden),
        "logits": (hidden, vocab),
    }
    out: list[GemmShape] = []
    for name, (k, n) in layers.items():
        label = f"h{hidden}/{name}"
        out.append(GemmShape("transformer", label, "fwd", tokens, n, k))
        out.append(GemmShape("transformer", label, "bwd_dx", tokens, k, n))
        out.append(GemmShape("transformer", label, "bwd_dw", k, n, tokens))
    return out


def gemm_shapes(plan: Plan) -> list[GemmShape]:
    """Every GEMM shape a plan measures, square sweep first."""
    shapes = [GemmShape("square", f"square-{s}", "fwd", s, s, s) for s in plan.square_sizes]
    for h in plan.hidden_sizes:
        shapes.extend(transformer_gemms(h, plan.tokens, plan.vocab))
    return shapes


def bench_gemm(shape: GemmShape, dtype: str, device: str, repeats: Repeats) -> dict[str, object]:
    """Time one GEMM; a tidy row of `GEMM_COLUMNS` (seconds, FLOP, bytes, FLOP/s)."""
    import torch

    rows = shape.m if device != "cpu" else sized_rows(shape.m, shape.k, shape.n, dtype)
    a = randn((rows, shape.k), dtype, device, seed=0)
    b = randn((shape.k, shape.n), dtype, device, seed=1)
    c = torch.empty(rows, shape.n, device=device, dtype=torch_dtype(dtype))
    with matmul_mode(dtype), torch.inference_mode():
        timing = time_op(lambda: torch.matmul(a, b, out=c), repeats, synchronizer(device))
    timing = timing.scaled(shape.m / rows)
    return {
        "kind": shape.kind,
        "name": shape.name,
        "pass": shape.pass_,
        "dtype": dtype,
        "m": shape.m,
        "n": shape.n,
        "k": shape.k,
        "flops": int(shape.flops),
        "bytes": int(shape.bytes(dtype)),
        **timing.as_row(),
        "flops_per_s": shape.flops / timing.median_s,
        "rows_measured": rows,
    }


def run_gemms(
    plan: Plan, dtype: str, device: str, tick: Callable[[str], None]
) -> list[dict[str, object]]:
    """All GEMM rows of `plan` for one dtype; `tick(label)` is called after each one."""
    rows = []
    for shape in gemm_shapes(plan):
        rows.append(bench_gemm(shape, dtype, device, plan.repeats))
        tick(f"gemm {dtype} {shape.name} {shape.pass_}")
    return rows
