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
from matplotlib.ticker import NullFormatter

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
    """The first `docs/validation/*.json` under `root` (sorted by name), else `example`."""
    found = sorted((Path(root) / "docs" / "validation").glob("*.json"))
    return found[0] if found else Path(example)


def validation_figure(df: pd.DataFrame, title: str = "") -> Figure:
    """Predicted vs measured per metric (log-log, y = x dashed), one colour per engine."""
    metrics = sorted(df["metric"].unique())
    n = max(1, len(metrics))
    fig = Figure(figsize=(4.2 * n, 3.9))
    axes = fig.subplots(1, n, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=False):
        sub = df[df["metric"] == metric]
        for engine, e in sub.groupby("engine", sort=True):
            ax.scatter(e["measured"], e["predicted"], label=engine, s=22)
        lo = float(min(sub["measured"].min(), sub["predicted"].min()))
        hi = float(max(sub["measured"].max(), sub["predicted"].max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="predicted = measured")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"measured {metric}")
        ax.set_ylabel(f"predicted {metric}")
        med = sub["error"].abs().median()
        ax.set_title(f"{metric}: median |error| {med:.0%}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    label = " (EXAMPLE DATA)" if df.attrs.get("example") else ""
    fig.suptitle((title or "Measured vs predicted") + label)
    fig.tight_layout()
    return fig
