"""Plots from a sweep's table: a metric against the first varying axis, one line per value of
the second, one panel per value of the third; any further varying axes (seeds, say) are averaged
with their min-max range shaded. Failed points are left out and counted in the title.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from analysis.cli.common import write_atomic
from analysis.sweep.frame import load, varying_axes
from hwprofiles.errors import UserError

MAX_PANELS = 6


def plot_sweep(
    out: str | Path, metric: str = "step_time_s", path: str | Path | None = None
) -> Path:
    """Draw `metric` of sweep directory `out` into `path` (default `out/<metric>.png`)."""
    df = load(out)
    if metric not in df:
        known = [c for c in df.columns if df[c].dtype.kind == "f"]
        raise UserError(f"metric: {metric!r} is not a column (rule: one of {', '.join(known)})")
    failed = int((df["status"] != "ok").sum())
    ok = df[df["status"] == "ok"]
    if ok.empty:
        raise UserError(f"sweep: {str(out)!r} has no successful point to plot")
    axes = varying_axes(df)
    x, hue, panel, rest = _roles(axes)
    return _draw(ok, metric, x, hue, panel, rest, failed, Path(path or Path(out) / f"{metric}.png"))


def _roles(axes: list[str]) -> tuple[str | None, str | None, str | None, list[str]]:
    padded = [*axes, None, None, None]
    return padded[0], padded[1], padded[2], axes[3:]


def _draw(
    df: Any,
    metric: str,
    x: str | None,
    hue: str | None,
    panel: str | None,
    rest: list[str],
    failed: int,
    path: Path,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted(df[panel].unique())[:MAX_PANELS] if panel else [None]
    fig, axs = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1, 3.8), squeeze=False)
    for ax, pv in zip(axs[0], panels, strict=True):
        sub = df if panel is None else df[df[panel] == pv]
        for i, hv in enumerate(sorted(sub[hue].unique()) if hue else [None]):
            line = sub if hue is None else sub[sub[hue] == hv]
            keys = [x] if x else []
            g = line.groupby(keys)[metric] if keys else None
            if g is None:
                ax.bar([0], [line[metric].mean()], color="C0")
                continue
            stats = g.agg(["mean", "min", "max"]).reset_index().sort_values(x)
            label = f"{hue} = {hv}" if hue else metric
            numeric = stats[x].dtype.kind in "iuf"  # categories (pool splits): no lines
            ax.plot(stats[x], stats["mean"], "o-" if numeric else "o", color=f"C{i}", label=label)
            if rest:
                ax.fill_between(stats[x], stats["min"], stats["max"], color=f"C{i}", alpha=0.2)
        ax.set(xlabel=x or "", ylabel=metric, title=f"{panel} = {pv}" if panel else "")
        ax.grid(True, alpha=0.3)
        if hue:
            ax.legend(fontsize=8)
    note = f"; mean and min-max over {', '.join(rest)}" if rest else ""
    fig.suptitle(f"{metric}: {len(df)} ok points, {failed} failed{note}", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)
    return write_atomic(path, buf.getvalue())
