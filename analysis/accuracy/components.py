"""`llmcap accuracy --components`: llmcap's kernel and collective models against published
component measurements, row by row (GEMM, fused attention, NCCL all-reduce).

Kernel rows are isolated-kernel measurements, so they are compared with the catalogue's
isolated-kernel model: the efficiency curve divided by the catalogue-wide sustained fraction
(which only a training step pays). Attention is modelled as one forward + backward figure, so
a measured forward and backward at one shape combine FLOP-weighted (backward = 2.5x forward
FLOPs; Dao 2023, FlashAttention-2, Sec. 4.1) before the comparison.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

from hwprofiles.attention_kernels import kernel_ratio, measured_rows, seq_ramp
from hwprofiles.gemm_tiles import measured_rows as gemm_measured_rows
from hwprofiles.presets import sustained_fraction
from hwprofiles.profile import EfficiencyCurve
from simulator.costmodel.gemm_shape import gemm_time
from simulator.costmodel.timing import compute_time

GEMM_ROWS = (
    # (id, accelerator, dtype, measured TFLOP/s, source): best GEMM of a shape sweep
    ("MAMF-A100", "a100-80gb", "bf16", 271.2,
     "stas00/ml-engineering compute/accelerator README, MAMF table (bf16, v2): A100 SXM"),
    ("MAMF-H100", "h100-sxm", "bf16", 794.5,
     "stas00/ml-engineering MAMF table (bf16, v2): H100 SXM"),
    ("MAMF-MI300X", "mi300x", "bf16", 668.4,
     "stas00/ml-engineering MAMF table (bf16, v2): MI300X"),
)  # fmt: skip
"""The catalogue's matmul maxima are these rows (its defining data, so in-sample by
construction: group "gemm-max"); the shape-resolved rows of hwprofiles/data/gemm_shapes.csv set no
constant and are the out-of-sample GEMM check."""


def _isolated(hw_name: str):
    from hwprofiles.catalogue import load_profile

    return load_profile(hw_name).accelerator, sustained_fraction()[0]


def _unsustained(acc, keep: float):
    """`acc` with its matmul curves at the isolated-kernel rate (the sustained fraction undone,
    the per-kernel overhead kept)."""

    def scale(c: EfficiencyCurve) -> EfficiencyCurve:
        # f(s) = M s / (s + H) -> (M / keep) s / (s + H / keep): the plateau without the
        # sustained share, the same per-kernel overhead (H / (peak M) seconds)
        sizes = tuple(x / keep for x in c.sizes)
        return EfficiencyCurve(sizes, tuple(min(1.0, f / keep) for f in c.fractions), c.source)

    by_dtype = {k: scale(v) for k, v in acc.matmul_efficiency_by_dtype.items()}
    return replace(
        acc, matmul_efficiency=scale(acc.matmul_efficiency), matmul_efficiency_by_dtype=by_dtype
    )


def gemm_rows() -> list[dict[str, Any]]:
    out = []
    for rid, hw_name, dt, meas, src in GEMM_ROWS:
        acc, keep = _isolated(hw_name)
        flops = 2 * 8192.0**3  # a large square GEMM: the curve's plateau
        pred = flops / float(compute_time(acc, flops, dt)) / keep / 1e12
        out.append(_row("gemm-max", rid, f"{hw_name} {dt} large GEMM", meas, pred, src))
    for r in gemm_measured_rows():
        acc, keep = _isolated(r["accelerator"])
        m, n, k = int(r["m"]), int(r["n"]), int(r["k"])
        t = gemm_time(_unsustained(acc, keep), m, n, k, r["dtype"],
                      float(r["in_bytes"]), float(r["out_bytes"]))  # fmt: skip
        what = f"{r['accelerator']} {r['dtype']} M {m} N {n} K {k}"
        pred = 2.0 * m * n * k / float(t) / 1e12
        out.append(_row("gemm", r["id"], what, float(r["tflops"]), pred, r["source"][:80]))
    return out


def attention_rows() -> list[dict[str, Any]]:
    """Measured fwd and bwd at one (accelerator, kernel, seq, head dim) -> one combined row."""
    pairs: dict[tuple[str, str, str, str], dict[str, dict[str, str]]] = {}
    for r in measured_rows():
        key = (r["accelerator"], r["kernel"], r["seq_len"], r["head_dim"])
        pairs.setdefault(key, {})[r["direction"]] = r
    out = []
    for (hw_name, kernel, seq, hd), d in sorted(pairs.items()):
        if set(d) != {"fwd", "bwd"}:
            continue
        f, b = float(d["fwd"]["tflops"]), float(d["bwd"]["tflops"])
        meas = 3.5 / (1 / f + 2.5 / b)
        acc, keep = _isolated(hw_name)
        s, tokens = int(seq), int(d["fwd"]["batch_x_seq"])
        heads = 2048 // int(hd)  # the FA3 benchmark: hidden 2048
        flops = 4.0 * (tokens / s) * s * s * int(hd) * heads / 2  # causal: half executed
        t = float(compute_time(acc, flops, d["fwd"]["dtype"], "attention"))
        ramp = seq_ramp(hw_name, float(s))
        pred = flops / t / keep * kernel_ratio(hw_name, kernel) * ramp / 1e12
        src = "Shah et al. 2024, FlashAttention-3 (arXiv 2407.08608), Figs. 5-6"
        label = f"{hw_name} {kernel} seq {seq} hd {hd} (fwd {f:.0f}, bwd {b:.0f})"
        out.append(_row("attention", f"{kernel.upper()}-{seq}", label, meas, pred, src))
    return out


def collective_rows() -> list[dict[str, Any]]:
    from analysis.accuracy.collectives import collective_comparisons

    return [
        _row(
            "collective",
            c["id"],
            f"{c['collective']} {c['gpus']}x {c['hardware']} {_size(c['size_bytes'])} (busbw GB/s)",
            c["measured_busbw_gb_s"],
            c["predicted_busbw_gb_s"],
            c["source"],
        )
        for c in collective_comparisons()
    ]


def _size(b: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if b >= scale:
            return f"{b / scale:g} {unit}"
    return f"{b:g} B"


def _row(group: str, rid: str, what: str, meas: float, pred: float, src: str) -> dict[str, Any]:
    return {
        "group": group,
        "id": rid,
        "what": what,
        "measured": meas,
        "predicted": pred,
        "error": pred / meas - 1,
        "source": src,
    }


def component_comparisons() -> dict[str, Any]:
    rows = gemm_rows() + attention_rows() + collective_rows()
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(abs(r["error"]))
    from analysis.accuracy.collectives import by_size_band, by_source, collective_comparisons

    coll = collective_comparisons()
    return {
        "rows": rows,
        "median_abs_error_by_group": {g: statistics.median(v) for g, v in groups.items()},
        "collective_by_source": by_source(coll),
        "collective_by_size": by_size_band(coll),
    }
