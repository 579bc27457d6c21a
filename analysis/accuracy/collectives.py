"""Collective bandwidth rows (nccl-tests busbw) predicted by the link model."""

from __future__ import annotations

import re
from typing import Any

from analysis.accuracy.rows import load_rows
from simulator.costmodel.collectives import busbw
from simulator.costmodel.network import group_collective_time

GPU_TO_PRESET = {"H200": "h200", "H100-SXM": "h100-sxm", "A100": "a100-80gb"}
UNITS = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def _size(text: str) -> float | None:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def collective_comparisons() -> list[dict[str, Any]]:
    """Predicted all-reduce busbw for each row that names a size, a GPU and a world size."""
    from hwprofiles.catalogue import load_profile

    out = []
    for row in load_rows():
        if not row["id"].startswith("NCCL") or row["metric"] != "allreduce_busbw":
            continue
        preset = next((v for k, v in GPU_TO_PRESET.items() if row["gpu"].startswith(k)), None)
        size = _size(row["model"])
        if preset is None or size is None:
            continue
        n = int(row["num_gpus"])
        # GCP A3 Mega: "GPUDirect-TCPXO 8x200Gb/s NICs per node" (the row's interconnect)
        over = (
            {"scale_out": "roce-200", "nics_per_node": 8}
            if "8x200Gb" in row["interconnect"]
            else {}
        )
        hw = load_profile(preset, **over)
        t = float(group_collective_time(hw, "all_reduce", size, n, 1))
        pred = busbw("all_reduce", size, t, n) / 1e9
        meas = float(row["value"])
        out.append(
            {
                "id": row["id"],
                "gpu": row["gpu"],
                "gpus": n,
                "size_bytes": size,
                "measured_busbw_gb_s": meas,
                "predicted_busbw_gb_s": pred,
                "error": pred / meas - 1,
                "notes": row["notes"][:160],
            }
        )
    return out
