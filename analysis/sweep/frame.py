"""A finished (or checkpointed) sweep as a pandas DataFrame, for plots and notebooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.inputs import path_kind

MANIFEST = "sweep.json"


def read_manifest(out: str | Path) -> dict[str, Any]:
    """The `sweep.json` of a sweep directory (its grid, fingerprint and table format)."""
    path = Path(out) / MANIFEST
    if path_kind(path) != "file":  # is_file() raises for a name over 255 bytes
        raise UserError(
            f"sweep: {str(out)!r} has no {MANIFEST} (rule: a directory `llmcap sweep --out` wrote)"
        )
    try:
        doc = json.loads(path.read_text())
        if doc["format"] in ("parquet", "csv") and isinstance(doc["grid"]["axes"], dict):
            return doc
    except (ValueError, KeyError, TypeError, OSError):
        pass
    raise UserError(f"sweep: {str(path)!r} is not a sweep manifest (rule: as llmcap sweep writes)")


def load(out: str | Path) -> Any:
    """The results table of sweep directory `out` as a DataFrame (one row per point)."""
    import pandas as pd

    doc = read_manifest(out)
    path = Path(out) / f"results.{doc['format']}"
    if path_kind(path) != "file":
        raise UserError(f"sweep: {str(path)!r} is missing (rule: run the sweep first)")
    try:
        df = pd.read_parquet(path) if doc["format"] == "parquet" else pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise UserError(f"sweep: {str(path)!r} cannot be read ({type(exc).__name__})") from None
    if "status" not in df:
        raise UserError(f"sweep: {str(path)!r} has no status column (rule: a sweep table)")
    df.attrs["axes"] = list(doc["grid"]["axes"])
    return df


def varying_axes(df: Any) -> list[str]:
    """The grid's axes that take more than one value, in grid order."""
    return [a for a in df.attrs.get("axes", []) if a in df and df[a].nunique() > 1]
