"""Measured vs predicted: load a `llmcap validate --json` result and plot it.

Accepted shapes (both carry a top-level "comparisons" list):
- `llmcap validate --json`: ``{run, metric, measured, predicted, engine, error}`` per row;
- `llmcap accuracy --json` (published runs): ``{id, measured_step_s, predicted_step_s, error}``,
  read as metric "step_time_s", engine "analytic".
`error` is (predicted - measured) / measured; it is recomputed when absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from analysis.labels import label
from hwprofiles.errors import UserError
from hwprofiles.inputs import read_json

COLUMNS = ["run", "metric", "measured", "predicted", "engine", "error"]


def _row(c: dict, where: str) -> dict:
    if "measured_step_s" in c:  # accuracy format
        c = {
            "run": c.get("id"),
            "metric": "step_time_s",
            "measured": c["measured_step_s"],
            "predicted": c["predicted_step_s"],
            "engine": "analytic",
            "error": c.get("error"),
        }
    missing = [k for k in ("run", "metric", "measured", "predicted") if k not in c]
    if missing:
        raise UserError(f"{where}: comparison {c!r} lacks {missing}")
    out = {k: c.get(k) for k in COLUMNS}
    out["engine"] = out["engine"] or "analytic"
    if out["error"] is None:
        out["error"] = (out["predicted"] - out["measured"]) / out["measured"]
    return out


def load_comparisons(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A tidy frame (columns `COLUMNS`) from a validate/accuracy JSON file."""
    path = Path(path)
    doc = read_json(path, "comparisons")
    if not isinstance(doc, dict) or not isinstance(doc.get("comparisons"), list):
        raise UserError(f"{path.name}: expected an object with a 'comparisons' list")
    df = pd.DataFrame([_row(c, path.name) for c in doc["comparisons"]], columns=COLUMNS)
    df.attrs["source"] = str(path)
    df.attrs["example"] = bool(doc.get("example", False))
    return df


def find_result(root: str | os.PathLike[str], example: str | os.PathLike[str]) -> Path:
    """The committed validation report under `root`: the first `docs/validation/*/report.json`
    (one folder per machine, e.g. `cpu/`), else the first `docs/validation/*.json` (sorted by
    name), else `example`."""
    base = Path(root) / "docs" / "validation"
    found = sorted(base.glob("*/report.json")) or sorted(base.glob("*.json"))
    return found[0] if found else Path(example)


def validation_figure(df: pd.DataFrame, title: str = "") -> Figure:
    """Predicted vs measured per metric (log-log, y = x dashed), one colour per engine."""
    metrics = sorted(df["metric"].unique())
    n = max(1, len(metrics))
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(5.0 * ncols, 4.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax, metric in zip(axes, metrics, strict=False):
        sub = df[df["metric"] == metric]
        for engine, e in sub.groupby("engine", sort=True):
            ax.scatter(e["measured"], e["predicted"], label=label(engine), s=22)
        lo = float(min(sub["measured"].min(), sub["predicted"].min()))
        hi = float(max(sub["measured"].max(), sub["predicted"].max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="predicted = measured")
        if lo > 0:  # ratios spanning decades read best on log axes; shares with zeros cannot
            for axis, scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
                scale("log")
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"measured {label(metric)}")
        ax.set_ylabel(f"predicted {label(metric)}")
        med = sub["error"].abs().median()
        ax.set_title(f"{label(metric)}: median |error| {med:.0%}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    example = " (EXAMPLE DATA)" if df.attrs.get("example") else ""
    fig.suptitle((title or "Measured vs predicted") + example)
    fig.tight_layout()
    return fig
