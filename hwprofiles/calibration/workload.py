"""The GEMMs a known workload runs, measured interleaved until they settle.

`llmcap calibrate --quick` on a CPU times the GEMMs of the validation GPT presets
(`validation/gptconfig.py`: `tiny` and `small`) at their own shapes, forward and both backward
GEMMs of every linear layer and the tied logits, in each dtype, each pass in the operand
layout torch's `nn.Linear` runs it (`LAYOUTS`: on a CPU without a 16-bit matrix unit the
layout alone moved a bf16 GEMM's time 20x), so that the comparison in `llmcap validate` prices
its compute from rates measured at the shapes it runs, not from a curve fitted to other sizes.

Stopping rule (stated, and written into the profile's ``[stability]`` table): kernels are
sampled round-robin, one sample of each per round (so a slow spell of a shared machine lands
on every kernel rather than on one); each kernel's figure is the median of its samples; a
kernel has *settled* once it has `MIN_ROUNDS` samples whose interquartile range is at most
`SETTLE` of their median, and is then no longer sampled. Sampling stops when every kernel has
settled, or when `budget_s` is spent after at least `MIN_ROUNDS` rounds, or after
`MAX_ROUNDS`. A calibration in which a kernel did not settle is recorded as
``unsteady``, naming the kernels.

A kernel too slow for the budget is sized by a probe: on a CPU without a 16-bit matrix unit
(AMD EPYC Zen 3, 2026-12-02) a bf16 GEMM ran about 100x slower than fp32, so a call of the
`small` logits GEMM would take seconds. Its row count m is then cut so that one call takes about
`gemm.CALL_TARGET_S`, and the time is scaled back to the full shape by m (rows run independently
through the same kernel); the row carries the rows measured (`rows_measured`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hwprofiles.calibration.gemm import CALL_TARGET_S, MIN_ROWS, GemmShape
from hwprofiles.calibration.timing import NOISY_SPREAD

SETTLE = 0.05
"""Interquartile range / median at or below which a kernel has settled."""
MIN_ROUNDS = 3
"""Samples a kernel needs before it may settle (the quartiles need a few)."""
MAX_ROUNDS = 15
SAMPLE_S = 0.01
"""Fast kernels are looped so that one sample lasts about this long."""


@dataclass(frozen=True)
class Workload:
    """A GPT's GEMM sizes: hidden, MLP width, vocabulary and tokens per rank per step."""

    name: str
    hidden: int
    ffn: int
    vocab: int
    tokens: int
    """micro-batch x sequence length."""

    def gemms(self) -> list[GemmShape]:
        """Forward, input-gradient and weight-gradient GEMM of each linear layer and the logits."""
        layers = {
            "qkv": (self.hidden, 3 * self.hidden),
            "proj": (self.hidden, self.hidden),
            "mlp_up": (self.hidden, self.ffn),
            "mlp_down": (self.ffn, self.hidden),
            "logits": (self.hidden, self.vocab),
        }
        out = []
        for layer, (k, n) in layers.items():
            name = f"{self.name}/{layer}"
            out.append(GemmShape("workload", name, "fwd", self.tokens, n, k))
            out.append(GemmShape("workload", name, "bwd_dx", self.tokens, k, n))
            out.append(GemmShape("workload", name, "bwd_dw", k, n, self.tokens))
        return out


WORKLOADS = {
    w.name: w
    for w in (
        # validation/gptconfig.py PRESETS: tiny = hidden 64, 2 layers, vocab 512, seq 64, batch 2;
        # small = hidden 256, 4 layers, vocab 8192, seq 128, batch 4 (MLP 4x hidden in both);
        # tests/test_calibration_workload.py checks these against the presets
        Workload("tiny", 64, 256, 512, 128),
        Workload("small", 256, 1024, 8192, 512),
    )
}


@dataclass
class _Kernel:
    shape: GemmShape
    dtype: str
    fn: Callable[[], object]
    rows: int
    inner: int
    samples: list[float]
    settled: bool = False

    def scale(self) -> float:
        return self.shape.m / self.rows


def _quartile_spread(samples: list[float]) -> float:
    q = statistics.quantiles(samples, n=4, method="inclusive")
    med = statistics.median(samples)
    return (q[2] - q[0]) / med if med > 0 else 0.0


LAYOUTS = {"fwd": "nt", "bwd_dx": "nn", "bwd_dw": "tn"}
"""Operand layout of each pass as torch's `nn.Linear` runs it (weight W stored [out, in];
seen in aten's mm/addmm calls of `validation/gpt.py`'s training step under autocast): forward
``addmm(b, X, W^T)`` (B transposed), input gradient ``dY @ W`` (both contiguous), weight
gradient ``dY^T @ X`` (A transposed, giving W's [out, in]). On a CPU without a 16-bit matrix
unit the layout decides the kernel: on the AMD EPYC (Zen 3) VM (2026-12-03, 1 thread, load 7)
the `small` MLP up-projection in bf16 took 716 ms as a plain ``A @ B``, 48 ms as ``X @ W^T``
and 35 ms with A transposed; in fp32 the three were within 15 % of each other."""


def operands(shape: GemmShape, dtype: str, rows: int, device: str = "cpu") -> tuple[Any, Any, Any]:
    """A, B and the result C of the shape's GEMM on `rows` of its m rows, in its pass's layout
    (`LAYOUTS`), on `device`. The weight gradient (m = in, n = out, k = tokens) runs as torch
    runs it, [out, tokens] @ [tokens, in]: its m rows are the result's columns, which scale
    its time as rows do."""
    import torch

    from hwprofiles.calibration.device import randn, torch_dtype

    layout = LAYOUTS.get(shape.pass_, "nn")
    dt = torch_dtype(dtype)
    if layout == "tn":
        a = randn((shape.k, shape.n), dtype, device, seed=0).t()  # dY^T
        b = randn((shape.k, rows), dtype, device, seed=1)  # X
        c = torch.empty(shape.n, rows, dtype=dt, device=device)
    else:
        a = randn((rows, shape.k), dtype, device, seed=0)
        w = randn((shape.n, shape.k) if layout == "nt" else (shape.k, shape.n), dtype, device, 1)
        b = w.t() if layout == "nt" else w
        c = torch.empty(rows, shape.n, dtype=dt, device=device)
    return a, b, c


def _make(shape: GemmShape, dtype: str, rows: int) -> Callable[[], object]:
    import torch

    a, b, c = operands(shape, dtype, rows)
    return lambda: torch.mm(a, b, out=c)


def _timed(fn: Callable[[], object], inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def _sized_rows(shape: GemmShape, dtype: str) -> int:
    """Rows to time so that one call takes about `gemm.CALL_TARGET_S`: a probe on
    `gemm.MIN_ROWS` rows in the pass's own layout sets the time per row (`gemm.sized_rows`)."""
    rows = min(shape.m, MIN_ROWS)
    fn = _make(shape, dtype, rows)
    fn()
    per_row = max(_timed(fn, 1), 1e-9) / rows
    return int(min(shape.m, max(MIN_ROWS, CALL_TARGET_S / per_row)))


def _prepare(shape: GemmShape, dtype: str) -> _Kernel:
    """Size rows by a probe (`_sized_rows`) and the inner loop by one call; warm up."""
    rows = _sized_rows(shape, dtype)
    fn = _make(shape, dtype, rows)
    fn()  # warm-up at the measured size
    one = max(_timed(fn, 1), 1e-9)
    inner = max(1, min(1000, int(SAMPLE_S / one)))
    return _Kernel(shape, dtype, fn, rows, inner, [])


def measure_workloads(
    workloads: tuple[Workload, ...],
    dtypes: tuple[str, ...],
    budget_s: float,
    tick: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows for compute/gemm.csv (kind "workload") and the stability record (module doc)."""
    pairs = [(s, d) for d in dtypes for w in workloads for s in w.gemms()]
    rows, stability = measure_kernels(pairs, budget_s)
    if tick:
        tick(f"workload GEMMs ({len(pairs)} kernels, {stability['rounds']} rounds)")
    return rows, stability


def measure_kernels(
    pairs: list[tuple[GemmShape, str]],
    budget_s: float,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Time each (GEMM, dtype) interleaved until settled (module docstring): one row each in
    `pairs` order, and the stability record."""
    import torch

    from hwprofiles.calibration.device import matmul_mode

    start = clock()
    kernels: list[_Kernel] = []
    rounds = 0
    with torch.inference_mode():
        for shape, dtype in pairs:
            with matmul_mode(dtype):
                kernels.append(_prepare(shape, dtype))
        while rounds < MAX_ROUNDS:
            rounds += 1
            for k in kernels:
                if k.settled:
                    continue
                with matmul_mode(k.dtype):
                    k.samples.append(_timed(k.fn, k.inner) * k.scale())
                if len(k.samples) >= MIN_ROUNDS and _quartile_spread(k.samples) <= SETTLE:
                    k.settled = True
            spent = rounds >= MIN_ROUNDS and clock() - start > budget_s
            if all(k.settled for k in kernels) or spent:
                break
    unsettled = [f"{k.dtype} {k.shape.name} {k.shape.pass_}" for k in kernels if not k.settled]
    stability = {
        "verdict": "steady" if not unsettled else "unsteady",
        "rule": (
            f"interleaved rounds, one sample per kernel each; figure = median; settled when "
            f">= {MIN_ROUNDS} samples have IQR/median <= {SETTLE:g}; stop when all settled, "
            f"after {MAX_ROUNDS} rounds, or after {budget_s:g} s once {MIN_ROUNDS} rounds ran"
        ),
        "kernels": len(kernels),
        "settled": len(kernels) - len(unsettled),
        "rounds": rounds,
        "seconds": clock() - start,
        "unsettled": unsettled[:50],
    }
    return [_row(k) for k in kernels], stability


def _row(k: _Kernel) -> dict[str, Any]:
    s = k.shape
    med = statistics.median(k.samples)
    return {
        "kind": s.kind,
        "name": s.name,
        "pass": s.pass_,
        "dtype": k.dtype,
        "m": s.m,
        "n": s.n,
        "k": s.k,
        "flops": int(s.flops),
        "bytes": int(s.bytes(k.dtype)),
        "median_s": med,
        "min_s": min(k.samples),
        "max_s": max(k.samples),
        "count": len(k.samples),
        "noisy": (max(k.samples) - min(k.samples)) / med > NOISY_SPREAD,
        "flops_per_s": s.flops / med,
        "rows_measured": k.rows,
    }
