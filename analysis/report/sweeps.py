"""Figures of the what-if sweeps (`analysis.planner.whatif`) for the notebooks (Agg backend)."""

from __future__ import annotations

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from analysis.planner.costs import J_PER_MWH, SECONDS_PER_DAY


def scaling_figure(df: pd.DataFrame, title: str = "") -> Figure:
    """Speed-up (left) and exposed-communication share (right) vs GPUs, per link bandwidth.

    Solid lines: closed form; dashed with crosses: SimPy engine; black dashes: the seed's m*k.
    """
    fig = Figure(figsize=(9.6, 3.9))
    ax_s, ax_c = fig.subplots(1, 2)
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (factor, sub) in enumerate(df.groupby("bandwidth_factor", sort=True)):
        colour = cycle[k % len(cycle)]
        for engine, style in (("analytic", "-o"), ("des", "--x")):
            e = sub[sub["engine"] == engine].sort_values("gpus")
            if e.empty:
                continue
            label = f"bandwidth ×{factor:g} ({engine})"
            ax_s.plot(e["gpus"], e["speedup"], style, color=colour, label=label)
            ax_c.plot(e["gpus"], 100 * e["comm_fraction"], style, color=colour, label=label)
    g = sorted(df["gpus"].unique())
    if g:
        ax_s.plot([g[0], g[-1]], [g[0], g[-1]], "k--", lw=1, label="seed: linear m×k")
    for ax in (ax_s, ax_c):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("GPUs")
        ax.grid(True, which="both", alpha=0.3)
    ax_s.set_yscale("log", base=2)
    ax_s.set_ylabel("speed-up over one ideal GPU")
    ax_c.set_ylabel("exposed communication (% of step)")
    ax_s.legend(fontsize=7)
    fig.suptitle(title or "Scaling what-if")
    fig.tight_layout()
    return fig


def precision_sweep_figure(df: pd.DataFrame, title: str = "") -> Figure:
    """Time to train (left) and energy (right) per precision; the seed's E×P/L and E×L/P
    (applied to llmcap's fp32 energy of the same layout) drawn as markers beside llmcap's bars."""
    ok = df[df["feasible"]].reset_index(drop=True)
    fig = Figure(figsize=(9.0, 3.7))
    ax_t, ax_e = fig.subplots(1, 2)
    x = range(len(ok))
    ax_t.bar(x, ok["time_to_train_s"] / SECONDS_PER_DAY, color="#4c72b0")
    ax_e.bar(x, ok["energy_j"] / J_PER_MWH, color="#4c72b0", label="llmcap")
    steps = ok["energy_j"] / ok["energy_per_step_j"]
    for col, marker, label in (
        ("seed_literal_j", "^", "seed E×P/L (as printed)"),
        ("seed_intended_j", "v", "seed E×L/P (intended)"),
    ):
        if col in ok and ok[col].notna().any():
            ax_e.scatter(
                x,
                ok[col] * steps / J_PER_MWH,
                marker=marker,
                color="#c44e52",
                zorder=3,
                label=label,
            )
    for ax, ylabel in ((ax_t, "time to train (days)"), (ax_e, "energy (MWh, GPUs)")):
        ax.set_xticks(list(x), list(ok["precision"]))
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", alpha=0.3)
    ax_e.set_yscale("log")
    ax_e.legend(fontsize=7)
    fig.suptitle(title or "Mixed precision: time and energy")
    fig.tight_layout()
    return fig
