"""Collective component rows (`analysis/data/collective_rows.csv`) against llmcap's NCCL model.

Each row is one published nccl-tests-style point: collective, hardware preset (with the row's
NIC overrides), GPU count, nccl-tests size (bytes) and the measured bus bandwidth (GB/s; busbw
= algbw x nccl-tests' bus factor, `simulator.costmodel.collectives`). The model's time is
`group_collective_time` (the function both engines price collectives with) plus the
**harness overhead** of the benchmark that measured the row: the host time a benchmark pays per
call around NCCL's kernel (launch, stream synchronisation, torch dispatch; for GCP's TCPXO also
the host-side transport), which a training step overlaps but a latency-bound benchmark row
includes. It is taken from each harness's own `floor` row (its smallest message: measured time
minus llmcap's NCCL time there), which is then not scored; a harness without a floor row is
scored on large messages only, where the overhead does not matter (overhead 0).
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import replace
from importlib import resources
from typing import Any

from simulator.costmodel.collectives import bus_factor, busbw
from simulator.costmodel.nccl import ALGORITHMS
from simulator.costmodel.network import alltoall_time, group_collective_time


def load_collective_rows() -> list[dict[str, str]]:
    text = resources.files("analysis.data").joinpath("collective_rows.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


ALGOS = {
    "auto": ALGORITHMS,
    "no-nvls": frozenset({"ring", "tree"}),  # NCCL_NVLS_ENABLE=0 / NVLink SHARP disabled
    "ring": frozenset({"ring"}),  # NCCL_ALGO=Ring
}
"""The row's `algo` column: what the benchmark let NCCL choose from."""


def _profile(row: dict[str, str]):
    """The row's preset with its overrides (`key=value;...`): the catalogue's NIC overrides,
    and `scale_up_gbps`, the scale-up link's datasheet rate per direction (GB/s) for a
    variant of a catalogue GPU (H800: NVLink cut to 400 GB/s both directions)."""
    from hwprofiles.catalogue import load_profile

    over: dict[str, Any] = {}
    for item in filter(None, row["overrides"].split(";")):
        key, value = item.split("=")
        over[key] = int(value) if value.isdigit() else value
    gbps = over.pop("scale_up_gbps", None)
    hw = load_profile(row["hardware"], **over)
    if gbps is None:
        return hw
    link = replace(hw.node.scale_up, bandwidth_bytes_per_s=float(gbps) * 1e9)
    return replace(hw, node=replace(hw.node, scale_up=link))


def _model_s(row: dict[str, str]) -> float:
    n, size, kind = int(row["gpus"]), float(row["size_bytes"]), row["collective"]
    hw = _profile(row)
    if kind == "all_to_all":
        return float(alltoall_time(hw, size, n, 1))
    return float(group_collective_time(hw, kind, size, n, 1, ALGOS[row["algo"]]))


def _measured_s(row: dict[str, str]) -> float:
    n, size = int(row["gpus"]), float(row["size_bytes"])
    if row["unit"] == "time us":
        return float(row["measured"]) * 1e-6
    algbw = float(row["measured"]) * 1e9 / float(bus_factor(row["collective"], n))
    return size / algbw


def harness_overheads(rows: list[dict[str, str]]) -> dict[str, float]:
    """Seconds per call each harness adds around NCCL: its floor row's measured - model time."""
    return {
        r["harness"]: max(_measured_s(r) - _model_s(r), 0.0) for r in rows if r["role"] == "floor"
    }


def collective_comparisons() -> list[dict[str, Any]]:
    """Predicted vs measured busbw for every scored row (model + its harness overhead)."""
    rows = load_collective_rows()
    over = harness_overheads(rows)
    out = []
    for r in rows:
        if r["role"] != "check":
            continue
        n, size = int(r["gpus"]), float(r["size_bytes"])
        t = _model_s(r) + over.get(r["harness"], 0.0)
        pred = busbw(r["collective"], size, t, n) / 1e9
        meas = float(r["measured"])
        out.append(
            {
                "id": r["id"],
                "source": r["source"],
                "harness": r["harness"],
                "collective": r["collective"],
                "algo": r["algo"],
                "hardware": r["hardware"],
                "gpus": n,
                "size_bytes": size,
                "measured_busbw_gb_s": meas,
                "predicted_busbw_gb_s": pred,
                "overhead_s": over.get(r["harness"], 0.0),
                "error": pred / meas - 1,
                "notes": r["notes"],
            }
        )
    return out


def by_source(comparisons: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Rows, median |error| and worst |error| per source (the held-out view: no constant of
    the collective model is taken from any of these rows)."""
    groups: dict[str, list[float]] = {}
    for c in comparisons:
        groups.setdefault(c["source"].split(" (")[0], []).append(abs(c["error"]))
    return {
        s: {"rows": len(v), "median": statistics.median(v), "worst": max(v)}
        for s, v in groups.items()
    }


SIZE_BANDS = ((0, "< 1 MiB"), (2**20, "1-8 MiB"), (8 * 2**20, "8-256 MiB"), (2**28, ">= 256 MiB"))
"""nccl-tests size bands: latency-bound, protocol switch, pipeline ramp, bandwidth plateau."""


def by_size_band(comparisons: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Rows, median |error| and worst |error| per message-size band."""
    groups: dict[str, list[float]] = {}
    for c in comparisons:
        band = [label for lo, label in SIZE_BANDS if c["size_bytes"] >= lo][-1]
        groups.setdefault(band, []).append(abs(c["error"]))
    return {
        b: {"rows": len(v), "median": statistics.median(v), "worst": max(v)}
        for _, b in SIZE_BANDS
        if (v := groups.get(b))
    }
