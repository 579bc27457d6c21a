"""Whole-run checks: predicted GPU-hours, goodput, node power and energy against published runs.

Data: `analysis/data/whole_runs.csv`, one row per published figure with its scope (time, GPU
boards, node, facility) and kind: `measured` or `reported` rows enter the medians, `anchor`
(a number the model was set from), `bound` and `TDP-estimated` rows are shown beside them.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import replace
from importlib import resources
from typing import Any

from analysis.predict import predict
from hwprofiles.catalogue import load_profile
from hwprofiles.power_levels import node_power
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload

IN_MEDIAN = ("measured", "reported")


def rows() -> list[dict[str, str]]:
    text = resources.files("analysis").joinpath("data", "whole_runs.csv").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def _predicted(row: dict[str, str]) -> float:
    model = load_model(row["model"])
    if row["layers_override"]:
        model = replace(model, num_hidden_layers=int(row["layers_override"]))
    gpus = int(row["gpus"])
    hw = load_profile(row["hardware"])
    par = ParallelConfig(
        tp=int(row["tp"]),
        pp=int(row["pp"]),
        vpp=int(row["vpp"]),
        dp=int(row["dp"]),
        zero_stage=int(row["zero"]),
        micro_batch_size=int(row["micro_batch"]),
        global_batch_size=int(row["global_batch"]),
        precision=row["precision"],
        recompute=row["recompute"],
        sequence_parallel=int(row["tp"]) > 1,
    ).resolve(gpus)
    tokens = float(row["tokens"]) if row["tokens"] else None
    r = predict(Workload(model, par, int(row["seq_len"])), hw, tokens=tokens)
    m = row["metric"]
    gpn = hw.node.gpus_per_node
    if m == "gpu_hours":
        return r.whole_run["time_to_train_s"] * gpus / 3600.0
    if m == "goodput_fraction":
        return r.whole_run["goodput_fraction"]
    if m == "energy_mwh_gpu":
        return r.whole_run["energy_to_train_gpu_j"] / 3.6e9
    compute_w = r.power["power_levels"]["gpu_power_by_phase_w"]["compute"]
    if m == "peak_node_power_w":
        return node_power(hw).wall_w(gpn * compute_w)
    if m == "avg_node_power_w":
        return r.power["avg_node_power_per_gpu_w"] * gpn
    if m == "gpu_compute_power_fraction":
        return compute_w / hw.accelerator.tdp_w
    raise ValueError(f"whole_runs.csv: metric {m!r} is not known")


def whole_run_comparisons() -> dict[str, Any]:
    """Every row predicted; medians of |error| over measured/reported rows per scope group."""
    out = []
    for row in rows():
        pred = _predicted(row)
        meas = float(row["value"])
        out.append(
            {
                "id": row["id"],
                "metric": row["metric"],
                "scope": row["scope"],
                "kind": row["kind"],
                "measured": meas,
                "predicted": pred,
                "unit": row["unit"],
                "error": pred / meas - 1.0,
                "source": row["source"],
                "notes": row["notes"],
            }
        )
    used = [c for c in out if c["kind"] in IN_MEDIAN]
    power = [abs(c["error"]) for c in used if not c["scope"].startswith("time")]
    time = [abs(c["error"]) for c in used if c["scope"].startswith("time")]
    return {
        "comparisons": out,
        "median_abs_error_power_energy": statistics.median(power) if power else None,
        "median_abs_error_time": statistics.median(time) if time else None,
        "rows_in_median": len(used),
    }
