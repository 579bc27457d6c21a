"""What-if sweeps for the notebooks: scaling with GPU count and link bandwidth, and precision.

Each sweep picks the best layout with the planner's search (closed form) at every point and
predicts it with `analysis.predict.predict`; the SimPy engine re-runs the same layouts where it
is installed. Results are tidy `pandas.DataFrame`s (one row per point and engine), SI units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import pandas as pd

from analysis.closed_form import Options
from analysis.planner.costs import training_cost, unit_price
from analysis.planner.result import layout_text
from analysis.planner.search import layout_workload, search_candidate
from analysis.planner.space import BatchPolicy, SearchSpace
from analysis.predict import predict
from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from simulator.model import ModelSpec
from simulator.result import StepResult


def scale_links(
    hw: HardwareProfile, factor: float, which: Literal["scale_out", "scale_up"] = "scale_out"
) -> HardwareProfile:
    """`hw` with one link's bandwidth multiplied by `factor` (a what-if, not a datasheet)."""
    if factor <= 0:
        raise UserError(f"factor: {factor} must be > 0")
    link = getattr(hw.node, which)
    faster = replace(link, bandwidth_bytes_per_s=link.bandwidth_bytes_per_s * factor)
    return replace(
        hw, name=f"{hw.name} ({which} x{factor:g})", node=replace(hw.node, **{which: faster})
    )


def _row(step: StepResult, **keys: object) -> dict[str, object]:
    d = step.document
    return keys | {
        "engine": step.engine,
        "step_time_s": step.step_time_s,
        "speedup": step.single_gpu_step_time_s / step.step_time_s,  # type: ignore[operator]
        "seed_speedup": d["speedup_m_times_k"],
        "comm_fraction": step.comm_fraction,
        "mfu": step.mfu,
        "energy_per_step_j": step.energy_per_step_j,
    }


def scaling_sweep(
    model: ModelSpec,
    hw: HardwareProfile,
    gpus: Sequence[int],
    seq_len: int,
    global_batch: int,
    precision: str = "bf16",
    bandwidth_factors: Sequence[float] = (1.0,),
    which: Literal["scale_out", "scale_up"] = "scale_out",
    des_max_gpus: int = 0,
    space: SearchSpace | None = None,
    options: Options | None = None,
) -> pd.DataFrame:
    """Speed-up and communication share vs GPU count and link bandwidth, per engine.

    Rows: gpus, bandwidth_factor, layout, engine ("analytic" or "des"), step_time_s, speedup
    (ideal one-GPU time of the same batch / step time), seed_speedup (m*k = GPUs),
    comm_fraction (exposed communication / step), mfu, energy_per_step_j. The SimPy engine runs
    for counts up to `des_max_gpus` (0: never); `DataFrame.attrs["des"]` says if it ran.
    """
    opts = options or Options()
    rows, des_ran = [], False
    for factor in bandwidth_factors:
        hw_f = scale_links(hw, factor, which) if factor != 1.0 else hw
        for g in gpus:
            found = search_candidate(
                model,
                hw_f,
                g,
                precision,
                seq_len,
                BatchPolicy(global_batch),
                space=space,
                options=opts,
            )
            if not found.feasible:
                continue
            w = layout_workload(model, found.best, precision, seq_len)
            keys = {"gpus": g, "bandwidth_factor": factor, "layout": layout_text(found.best)}
            rows.append(_row(predict(w, hw_f, "analytic", opts), **keys))
            if g <= des_max_gpus:
                des = predict(w, hw_f, "des", opts)
                rows.append(_row(des, **keys))
                des_ran = True
    df = pd.DataFrame(rows)
    df.attrs["des"] = des_ran
    return df


def precision_sweep(
    model: ModelSpec,
    hw: HardwareProfile,
    gpus: int,
    seq_len: int,
    global_batch: int,
    tokens: float,
    precisions: Sequence[str] = ("fp32", "bf16", "fp8"),
    space: SearchSpace | None = None,
) -> pd.DataFrame:
    """Time and energy to train `tokens` per precision, with the seed's E x P/L beside them.

    Each precision gets its own best layout. `E_fp32_j` is llmcap's fp32 step energy for the
    *same* layout, which the seed formulas scale: `seed_literal_j` = E x P/L (as printed),
    `seed_intended_j` = E x L/P; `energy_per_step_j` is llmcap's own prediction.
    """
    rows = []
    for p in precisions:
        found = search_candidate(
            model, hw, gpus, p, seq_len, BatchPolicy(global_batch), space=space
        )
        if not found.feasible:
            rows.append({"precision": p, "feasible": False, "reason": found.reason})
            continue
        step = predict(layout_workload(model, found.best, p, seq_len), hw, tokens=tokens)
        cost = training_cost(
            tokens=tokens,
            tokens_per_step=step.tokens_per_step,
            step_time_s=step.step_time_s,
            gpus=gpus,
            energy_per_step_j=step.energy_per_step_j,
            price=unit_price(hw, {}),
        )
        d = step.document
        rows.append(
            {
                "precision": p,
                "feasible": True,
                "reason": "",
                "layout": layout_text(found.best),
                "step_time_s": step.step_time_s,
                "time_to_train_s": cost.time_to_train_s,
                "energy_per_step_j": step.energy_per_step_j,
                "energy_j": cost.energy_j,
                "E_fp32_j": d.get("E_fp32_j"),
                "seed_literal_j": d.get("energy_mixed_literal_j"),
                "seed_intended_j": d.get("energy_mixed_intended_j"),
                "mfu": step.mfu,
            }
        )
    return pd.DataFrame(rows)
