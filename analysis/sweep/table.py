"""The sweep's results table: one row per point, sorted by key, written atomically.

Parquet (pyarrow) by default, CSV on request. Columns: `key`, the grid's axes in grid order,
then the result columns of `analysis.sweep.point` (fixed types, so a failed point is a row of
nulls beside its error). The same rows give the same bytes, whichever executor made them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from analysis.cli.common import write_atomic
from analysis.sweep.grid import Grid
from analysis.sweep.point import BREAKDOWN, FLAGS, INTS, METRICS, TEXTS, TOTAL

FORMATS = ("parquet", "csv")


def table_path(out: Path, fmt: str) -> Path:
    return out / f"results.{fmt}"


def columns(grid: Grid, rows: Iterable[dict[str, Any]]) -> list[str]:
    """`key`, the axes, then the result columns that some row has (fixed order)."""
    rows = list(rows)
    have = {k for r in rows for k in r}
    fixed = [c for c in (*INTS, *TEXTS[:2], *METRICS, *FLAGS, TEXTS[2]) if c in have]
    parts = sorted(k for k in have if k.startswith((BREAKDOWN, TOTAL)))
    return ["key", *grid.axes, *fixed, *parts]


def _kind(col: str) -> str:
    if col in INTS:
        return "int"
    if col in FLAGS:
        return "bool"
    if col in METRICS or col.startswith((BREAKDOWN, TOTAL)):
        return "float"
    return "text"


def _arrow_table(grid: Grid, rows: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    types = {"int": pa.int64(), "bool": pa.bool_(), "float": pa.float64(), "text": pa.string()}
    data = {}
    for col in columns(grid, rows):
        values = [r.get(col) for r in rows]
        if col in grid.axes:
            data[col] = pa.array(values)
        else:
            data[col] = pa.array(values, type=types[_kind(col)])
    return pa.table(data)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_table(out: Path, fmt: str, grid: Grid, rows: Iterable[dict[str, Any]]) -> Path:
    """Write `rows` sorted by key to `out/results.<fmt>` (temporary file + rename)."""
    ordered = sorted(rows, key=lambda r: r["key"])
    path = table_path(out, fmt)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(_arrow_table(grid, ordered), buf)
        return write_atomic(path, buf.getvalue())
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    cols = columns(grid, ordered)
    w.writerow(cols)
    for r in ordered:
        w.writerow([_cell(r.get(c)) for c in cols])
    return write_atomic(path, text.getvalue())


def _decode(kind: str, s: str) -> Any:
    if s == "":
        return None
    if kind == "int":
        return int(s)
    if kind == "float":
        return float(s)
    if kind == "bool":
        return s == "true"
    return s


def read_rows(out: Path, fmt: str, grid: Grid) -> list[dict[str, Any]]:
    """The rows of an existing table (empty when there is none)."""
    path = table_path(out, fmt)
    if not path.is_file():
        return []
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    axis_value = {a: {_cell(v): v for v in vals} for a, vals in grid.axes.items()}
    rows = []
    with path.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            row = {}
            for col, s in rec.items():
                if col in axis_value:
                    row[col] = axis_value[col].get(s, s)
                else:
                    row[col] = _decode(_kind(col), s)
            rows.append(row)
    return rows
