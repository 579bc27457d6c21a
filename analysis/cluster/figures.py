"""Figures of a cluster result: utilisation over time, queue length, a Gantt chart per pool.

Each function takes the JSON-ready result of `simulate_cluster` and returns a matplotlib
`Figure` (no pyplot state); `analysis.report.figures.png_bytes` renders it reproducibly.
Times are shown in days (converted here, at the edge).
"""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis.report.figures import png_bytes


def _colours(names: list[str]) -> dict[str, str]:
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    return {n: cycle[i % len(cycle)] for i, n in enumerate(names)}


def utilisation_figure(result: dict[str, Any]) -> Figure:
    """Allocated share of each pool's GPUs, hourly averages, one panel per pool."""
    pools = result["inputs"]["pools"]
    policies = list(result["policies"])
    colours = _colours(policies)
    fig = Figure(figsize=(9, 2.4 * len(pools)))
    axes = fig.subplots(len(pools), 1, squeeze=False, sharex=True)[:, 0]
    for ax, pool in zip(axes, pools, strict=True):
        for name in policies:
            s = result["policies"][name]["series"]
            y = np.asarray(s["busy_gpus"][pool["name"]]) / pool["gpus"]
            x = (np.arange(len(y)) + 0.5) * s["bin_h"] / 24
            ax.plot(x, 100 * y, lw=0.9, color=colours[name], label=name)
        ax.set_ylim(0, 105)
        ax.set_ylabel("allocated (%)")
        ax.set_title(f"{pool['name']}: {pool['gpus']} GPUs", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8, ncol=len(policies))
    axes[-1].set_xlabel("time (days)")
    return fig


def queue_figure(result: dict[str, Any]) -> Figure:
    """Jobs waiting in the queue, hourly averages, one line per policy."""
    policies = list(result["policies"])
    colours = _colours(policies)
    fig = Figure(figsize=(9, 3))
    ax = fig.subplots()
    for name in policies:
        s = result["policies"][name]["series"]
        y = np.asarray(s["queued_jobs"])
        x = (np.arange(len(y)) + 0.5) * s["bin_h"] / 24
        ax.plot(x, y, lw=0.9, color=colours[name], label=name)
    ax.set_xlabel("time (days)")
    ax.set_ylabel("queued jobs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def gantt_figure(result: dict[str, Any], policy: str) -> Figure:
    """Which job class held which node when, one panel per pool (rows are nodes)."""
    pools = result["inputs"]["pools"]
    classes = [c["name"] for c in result["inputs"]["mix"]["classes"]]
    colours = _colours(classes)
    jobs = result["policies"][policy].get("jobs", [])
    heights = [max(2.0, min(6.0, p["gpus"] / p["gpus_per_node"] / 12)) for p in pools]
    fig = Figure(figsize=(9, sum(heights) + 0.8))
    axes = fig.subplots(len(pools), 1, squeeze=False, sharex=True, height_ratios=heights)[:, 0]
    for ax, pool in zip(axes, pools, strict=True):
        bars: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for j in jobs:
            for pool_name, start_h, end_h, _gpus, _how, nodes in j["segments"]:
                if pool_name != pool["name"] or end_h <= start_h:
                    continue
                for n in nodes:
                    bars.setdefault((j["class"], n), []).append(
                        (start_h / 24, (end_h - start_h) / 24)
                    )
        for (cls, n), spans in sorted(bars.items()):
            ax.broken_barh(spans, (n, 0.9), facecolors=colours[cls], edgecolor="none")
        ax.set_ylim(0, pool["gpus"] / pool["gpus_per_node"])
        ax.set_ylabel("node")
        ax.set_title(f"{pool['name']} ({policy})", fontsize=10)
    handles = [Patch(color=colours[c], label=c) for c in classes]
    axes[0].legend(handles=handles, loc="upper right", fontsize=8, ncol=len(classes))
    axes[-1].set_xlabel("time (days)")
    axes[-1].set_xlim(0, result["inputs"]["days"])
    return fig


def render_all(result: dict[str, Any]) -> dict[str, bytes]:
    """Figure name -> PNG bytes (a Gantt chart per policy)."""
    out = {
        "utilisation": png_bytes(utilisation_figure(result)),
        "queue": png_bytes(queue_figure(result)),
    }
    for name in result["policies"]:
        out[f"gantt-{name}"] = png_bytes(gantt_figure(result, name))
    return out
