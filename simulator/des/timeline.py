"""Recorded activities as a pandas DataFrame (one row per activity), for notebooks."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from simulator.des.engine import Row

COLUMNS = (
    "rank",
    "stage",
    "node",
    "stream",
    "name",
    "category",
    "start_s",
    "end_s",
    "duration_s",
    "microbatch",
    "layer",
)


def to_frame(
    rows: list[Row], stage_of: Mapping[int, int], node_of: Mapping[int, int]
) -> pd.DataFrame:
    """One row per activity; `microbatch` and `layer` are -1 where they do not apply."""
    if not rows:
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.DataFrame(rows, columns=list(Row._fields))
    df = df.rename(columns={"start": "start_s", "end": "end_s", "mb": "microbatch"})
    df["duration_s"] = df["end_s"] - df["start_s"]
    df["stage"] = df["rank"].map(stage_of).astype(int)
    df["node"] = df["rank"].map(node_of).astype(int)
    return df[list(COLUMNS)].sort_values(["start_s", "rank"], kind="stable").reset_index(drop=True)
