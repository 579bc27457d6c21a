"""Predict every usable published row and compare: `llmcap accuracy`, `docs/accuracy.md`."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.accuracy.rows import Case, Skipped, cases
from analysis.closed_form import evaluate
from analysis.layouts import Layouts


@dataclass
class Comparison:
    id: str
    group: str
    model: str
    hardware: str
    gpus: int
    layout: dict[str, int]
    measured_step_s: float
    predicted_step_s: float
    mfu_predicted: float | None
    convention: str
    assumptions: list[str]
    stack: str = ""

    @property
    def error(self) -> float:
        """predicted / measured - 1 (positive: llmcap predicts a slower step)."""
        return self.predicted_step_s / self.measured_step_s - 1


def predict_case(case: Case, sustained: float | None = None) -> Comparison | Skipped:
    """The fastest layout of `case` that fits; `sustained` replaces the catalogue's
    sustained fraction (leave-one-source-out refits, `analysis.accuracy.crossval`)."""
    from hwprofiles.catalogue import load_profile

    hw = load_profile(case.hardware, **case.hw_overrides)
    if sustained is not None:
        from analysis.accuracy.crossval import with_sustained

        hw = with_sustained(hw, sustained)
    works = case.workloads()
    if not works:
        return Skipped(case.id, "no layout candidate is valid for this row")
    lay = Layouts.from_configs([w.parallel for w in works])
    prec = works[0].parallel.precision
    r = evaluate(case.model, hw, case.seq_len, lay, prec, case.options)
    fits = r["memory_per_gpu_bytes"] <= hw.accelerator.memory_bytes
    if case.published_layout_fits:
        fits = np.ones_like(fits, dtype=bool)
    if not fits.any():
        need = float(r["memory_per_gpu_bytes"].min())
        return Skipped(
            case.id, f"no candidate layout fits in memory (least {need / 2**30:.0f} GiB)"
        )
    t = np.where(fits, r["step_time_s"], np.inf)
    i = int(np.argmin(t))
    tokens = lay.gbs[i] * case.seq_len
    from simulator.costmodel.flops import model_flops_per_token

    mfu = (
        model_flops_per_token(case.model, case.seq_len)
        * tokens
        / (t[i] * case.gpus * hw.accelerator.peak(prec))
    )
    return Comparison(
        case.id,
        case.group,
        case.model.name,
        hw.name,
        case.gpus,
        lay.row(i),
        case.measured_step_s,
        float(t[i]),
        float(mfu),
        case.convention,
        case.assumptions,
        case.stack,
    )


def run_accuracy() -> dict[str, Any]:
    """All comparisons, skipped rows with reasons, and the summary statistics."""
    usable, skipped = cases()
    comps: list[Comparison] = []
    for c in usable:
        res = predict_case(c)
        if isinstance(res, Skipped):
            skipped.append(res)
        else:
            comps.append(res)
    errs = [abs(c.error) for c in comps]
    by_group: dict[str, list[float]] = {}
    for c in comps:
        by_group.setdefault(c.group, []).append(abs(c.error))
    summary = {
        "rows_compared": len(comps),
        "median_abs_error": statistics.median(errs) if errs else None,
        "mean_abs_error": statistics.fmean(errs) if errs else None,
        "worst_abs_error": max(errs) if errs else None,
        "worst_row": max(comps, key=lambda c: abs(c.error)).id if comps else None,
        "median_abs_error_by_group": {g: statistics.median(v) for g, v in by_group.items()},
        "signed_median_error": statistics.median([c.error for c in comps]) if comps else None,
    }
    return {
        "summary": summary,
        "comparisons": [
            {
                "id": c.id,
                "group": c.group,
                "model": c.model,
                "hardware": c.hardware,
                "gpus": c.gpus,
                "layout": c.layout,
                "measured_step_s": c.measured_step_s,
                "predicted_step_s": c.predicted_step_s,
                "error": c.error,
                "mfu_predicted": c.mfu_predicted,
                "convention": c.convention,
                "assumptions": c.assumptions,
                "stack": c.stack,
            }
            for c in comps
        ],
        "skipped": [{"id": s.id, "reason": s.reason} for s in skipped],
    }
