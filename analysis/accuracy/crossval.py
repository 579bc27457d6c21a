"""Leave-one-source-out accuracy: every fitted constant refitted without the row's source.

llmcap has one fitted constant on datasheet profiles, the catalogue-wide sustained fraction
(hwprofiles/data/accelerators.toml): the share of the isolated-kernel maxima (MAMF, the
FlashAttention papers) a training step sustains. Scoring the published runs with it is
in-sample, since it was fitted to them. Here each source (a group of rows from one paper or
table) is predicted with the fraction that best fits the *other* sources (least median
absolute error over a grid), so every error below is out-of-sample for it. Everything else
(kernel maxima, links, stacks) comes from component data and sources, not from these runs.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

import numpy as np

from hwprofiles.presets import sustained_fraction
from hwprofiles.profile import EfficiencyCurve, HardwareProfile

GRID = tuple(round(float(x), 3) for x in np.arange(0.50, 1.0001, 0.025))
"""Sustained fractions tried by each refit (dimensionless)."""


def _scaled(curve: EfficiencyCurve, k: float) -> EfficiencyCurve:
    fr = tuple(min(1.0, f * k) for f in curve.fractions)
    return EfficiencyCurve(curve.sizes, fr, curve.source + f"; refitted sustained x {k:.4g}")


def with_sustained(hw: HardwareProfile, sustained: float) -> HardwareProfile:
    """`hw` with its compute curves rescaled from the catalogue's sustained fraction to
    `sustained` (the curves' maxima scale; their half-efficiency sizes are kept)."""
    base, _src = sustained_fraction()
    k = sustained / base
    a = hw.accelerator
    acc = replace(
        a,
        matmul_efficiency=_scaled(a.matmul_efficiency, k),
        attention_efficiency=_scaled(a.attention_efficiency, k),
        matmul_efficiency_by_dtype={
            d: _scaled(c, k) for d, c in a.matmul_efficiency_by_dtype.items()
        },
        attention_efficiency_by_dtype={
            d: _scaled(c, k) for d, c in a.attention_efficiency_by_dtype.items()
        },
    )
    return replace(hw, accelerator=acc)


def _median_abs(errs: list[float]) -> float:
    return statistics.median(abs(e) for e in errs) if errs else float("inf")


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    errs = [r["error"] for r in rows]
    if not errs:
        return {"rows": 0}
    worst = max(rows, key=lambda r: abs(r["error"]))
    return {
        "rows": len(errs),
        "median_abs_error": _median_abs(errs),
        "within_10pct": sum(abs(e) <= 0.10 for e in errs),
        "worst_abs_error": abs(worst["error"]),
        "worst_row": worst["id"],
        "signed_median_error": statistics.median(errs),
    }


def cross_validate() -> dict[str, Any]:
    """Leave-one-source-out errors per row, and their summaries overall and per group."""
    from analysis.accuracy.rows import Case, cases
    from analysis.accuracy.run import Comparison, predict_case

    usable, _skipped = cases()
    # every row at every grid value once; the refits below only pick columns
    table: dict[str, dict[float, Comparison]] = {}
    meta: dict[str, Case] = {}
    for c in usable:
        preds = {s: predict_case(c, s) for s in GRID}
        if all(isinstance(p, Comparison) for p in preds.values()):
            table[c.id] = preds  # type: ignore[assignment]
            meta[c.id] = c
    sources = sorted({meta[i].group for i in table})
    fits: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    for src in sources:
        train = [i for i in table if meta[i].group != src]
        best = float(min(GRID, key=lambda s: (_median_abs([table[i][s].error for i in train]), s)))
        fits[src] = best
        for i in (i for i in table if meta[i].group == src):
            cmp = table[i][best]
            rows.append(
                {
                    "id": i,
                    "source": src,
                    "stack": meta[i].stack,
                    "hardware": cmp.hardware,
                    "gpus": cmp.gpus,
                    "model": cmp.model,
                    "hardware_stack": f"{cmp.hardware} x {meta[i].stack}",
                    "sustained": best,
                    "measured_step_s": cmp.measured_step_s,
                    "predicted_step_s": cmp.predicted_step_s,
                    "error": cmp.error,
                }
            )
    all_fit = float(min(GRID, key=lambda s: (_median_abs([table[i][s].error for i in table]), s)))

    def by(key: str) -> dict[str, Any]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(str(r[key]), []).append(r)
        return {g: _summary(v) for g, v in sorted(groups.items())}

    return {
        "method": "leave-one-source-out: the sustained fraction refitted (least median "
        f"|error| over {GRID[0]}..{GRID[-1]}) on the other sources, then the held-out "
        "source predicted",
        "catalogue_sustained": sustained_fraction()[0],
        "fit_on_all_sources": all_fit,
        "fits_without_source": fits,
        "summary": _summary(rows),
        "by_source": by("source"),
        "by_hardware": by("hardware"),
        "by_stack": by("stack"),
        "by_hardware_stack": by("hardware_stack"),
        "rows": rows,
    }
