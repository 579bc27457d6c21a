"""GEMM tiling per accelerator: SM count and the output tiles a GEMM library chooses from
(data/gemm_tiles.toml, each with its source), for the shape-resolved GEMM model."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from hwprofiles.presets import data


@lru_cache(maxsize=1)
def _table() -> Mapping[str, Any]:
    return data("gemm_tiles")


def sm_count(accelerator: str) -> int | None:
    """SMs of `accelerator`, or None for a profile without a row (no quantisation)."""
    row = _table().get(accelerator)
    if not isinstance(row, Mapping) or "sm_count" not in row:
        return None
    return int(row["sm_count"])


def tiles() -> tuple[tuple[int, int], ...]:
    """Candidate output tiles (rows, columns), largest first."""
    return tuple((int(a), int(b)) for a, b in _table()["tiles"])


def min_tile() -> int:
    """Smallest tile edge: a dimension of at most this is covered by one tile this wide."""
    return int(_table()["min_tile"])


def measured_rows() -> list[dict[str, str]]:
    """Published shape-resolved GEMM measurements (data/gemm_shapes.csv), one dict per row."""
    path = resources.files("hwprofiles").joinpath("data", "gemm_shapes.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if not r["id"].startswith("#")]
