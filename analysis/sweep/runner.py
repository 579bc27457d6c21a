"""`run_sweep`: run a grid's missing points, stream rows into the table, checkpoint, resume.

The output directory holds `sweep.json` (the grid, its fingerprint and the table format) and
`results.<format>`. A re-run with the same grid skips the points whose keys are in the table;
a different grid in the same directory is an error. Rows are checkpointed to the table every
`checkpoint_s` seconds (temporary file + rename), so a killed sweep loses only the points
since the last checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from analysis.cli.common import dumps
from analysis.sweep.executors import EXECUTORS, LOST, dask_client, run_dask, run_local
from analysis.sweep.frame import MANIFEST
from analysis.sweep.grid import Grid
from analysis.sweep.progress import Progress
from analysis.sweep.table import FORMATS, read_rows, table_path, write_table
from hwprofiles.errors import UserError
from hwprofiles.outputs import check_output, exclusive, write_atomic

CHECKPOINT_S = 10.0
"""Seconds between table checkpoints while a sweep runs."""


@dataclass(frozen=True)
class Summary:
    table: Path
    points: int
    skipped: int
    ok: int
    failed: int
    lost: int


def prepare_dir(out: Path, grid: Grid, fmt: str) -> None:
    """Create `out` for `grid`, or check that it already holds this grid in this format."""
    if fmt not in FORMATS:
        raise UserError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    manifest = out / MANIFEST
    if manifest.is_file():
        import json

        held = json.loads(manifest.read_text())
        if held.get("fingerprint") != grid.fingerprint:
            raise UserError(
                f"out: {str(out)!r} holds a different grid (fingerprint "
                f"{held.get('fingerprint')} != {grid.fingerprint}; rule: one grid per "
                "directory, use a new --out)"
            )
        if held.get("format") != fmt:
            raise UserError(
                f"format: {fmt!r} but {str(out)!r} holds a {held.get('format')} table "
                "(rule: resume in the same format)"
            )
        return
    if out.is_dir() and any(out.iterdir()):
        raise UserError(
            f"out: {str(out)!r} is not empty and has no {MANIFEST} (rule: a new or sweep directory)"
        )
    doc = {
        "fingerprint": grid.fingerprint,
        "format": fmt,
        "points": grid.size,
        "grid": grid.to_dict(),
    }
    write_atomic(manifest, dumps(doc))


def run_sweep(
    grid: Grid,
    out: str | Path,
    *,
    fmt: str = "parquet",
    executor: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    retry_failed: bool = False,
    timeout_s: float = 10.0,
    checkpoint_s: float = CHECKPOINT_S,
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> Summary:
    """Run every point of `grid` not yet in `out`'s table; return what happened."""
    if executor not in EXECUTORS:
        raise UserError(f"executor: {executor!r} must be one of {', '.join(EXECUTORS)}")
    if executor == "local" and (scheduler or workers):
        raise UserError("executor: --scheduler/--workers need --executor dask")
    if workers is not None and workers < 1:
        raise UserError(f"workers: {workers} must be >= 1")
    out = check_output(out, "out", "dir")
    with exclusive(out, "out"):  # two sweeps into one directory: one runs, one is refused
        prepare_dir(out, grid, fmt)
        return _run(
            grid,
            out,
            fmt,
            executor,
            scheduler,
            workers,
            retry_failed,
            timeout_s,
            checkpoint_s,
            progress,
            on_row,
        )


def _run(
    grid: Grid,
    out: Path,
    fmt: str,
    executor: str,
    scheduler: str | None,
    workers: int | None,
    retry_failed: bool,
    timeout_s: float,
    checkpoint_s: float,
    progress: bool,
    on_row: Callable[[dict[str, Any]], None] | None,
) -> Summary:
    points = grid.points()
    keys = {p.key for p in points}
    rows = {r["key"]: r for r in read_rows(out, fmt, grid) if r["key"] in keys}
    if retry_failed:
        rows = {k: r for k, r in rows.items() if r.get("status") == "ok"}
    todo = [p for p in points if p.key not in rows]
    bar = None
    counts = {"ok": 0, "error": 0, LOST: 0}
    last = time.monotonic()
    dirty = False
    try:
        with _executor(executor if todo else "local", scheduler, workers, timeout_s) as run:
            bar = Progress(len(points), len(rows)) if progress else None
            for point, result in run(grid.base, todo):
                counts[result["status"]] += 1
                if bar:
                    bar.update(result["status"])
                if result["status"] == LOST:
                    continue
                row = {"key": point.key, **point.values, **result}
                rows[point.key] = row
                dirty = True
                if on_row:
                    on_row(row)
                if time.monotonic() - last >= checkpoint_s:
                    write_table(out, fmt, grid, rows.values())
                    last, dirty = time.monotonic(), False
    finally:
        if dirty or not table_path(out, fmt).exists():
            write_table(out, fmt, grid, rows.values())
        if bar:
            bar.close()
    return Summary(
        table_path(out, fmt),
        len(points),
        len(points) - len(todo),
        counts["ok"],
        counts["error"],
        counts[LOST],
    )


@contextmanager
def _executor(
    kind: str, scheduler: str | None, workers: int | None, timeout_s: float
) -> Iterator[Callable[..., Iterator[tuple[Any, dict]]]]:
    """`run(base, points)` for the chosen executor (a Dask client lives as long as the block)."""
    if kind == "local":
        yield run_local
        return
    with dask_client(scheduler, workers, timeout_s) as client:
        yield partial(run_dask, client)
