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
from analysis.sweep.frame import MANIFEST, read_manifest
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
    lost_error: str | None = None
    """The first lost point's error (why its task did not finish)."""


def check_dir(out: Path, grid: Grid, fmt: str) -> bool:
    """Whether `out` is new for `grid` (True) or already holds it in this format (False).

    Raises `UserError` for a directory holding another grid, another format, or other files.
    Writes nothing.
    """
    if fmt not in FORMATS:
        raise UserError(f"format: {fmt!r} must be one of {', '.join(FORMATS)}")
    manifest = out / MANIFEST
    if manifest.is_file():
        held = read_manifest(out)
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
        return False
    if out.is_dir() and any(out.iterdir()):
        raise UserError(
            f"out: {str(out)!r} is not empty and has no {MANIFEST} (rule: a new or sweep directory)"
        )
    return True


def write_manifest(out: Path, grid: Grid, fmt: str) -> None:
    doc = {"fingerprint": grid.fingerprint, "format": fmt, "points": grid.size}
    write_atomic(out / MANIFEST, dumps(doc | {"grid": grid.to_dict()}))


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
    """Run every point of `grid` not yet in `out`'s table; return what happened.

    Nothing is written before the executor is up (a scheduler that cannot be reached leaves
    no directory behind); `on_row` sees each new row as it arrives.
    """
    if executor not in EXECUTORS:
        raise UserError(f"executor: {executor!r} must be one of {', '.join(EXECUTORS)}")
    if executor == "local" and (scheduler or workers):
        raise UserError("executor: --scheduler/--workers need --executor dask")
    if workers is not None and workers < 1:
        raise UserError(f"workers: {workers} must be >= 1")
    out = check_output(out, "out", "dir")
    with exclusive(out, "out"):  # two sweeps into one directory: one runs, one is refused
        fresh = check_dir(out, grid, fmt)
        points = grid.points()
        keys = {p.key for p in points}
        rows = {} if fresh else _done(out, fmt, grid, keys, retry_failed)
        todo = [p for p in points if p.key not in rows]
        with _executor(executor if todo else "local", scheduler, workers, timeout_s) as run:
            if fresh:
                write_manifest(out, grid, fmt)

            def save() -> None:
                write_table(out, fmt, grid, rows.values())

            bar = Progress(len(points), len(rows)) if progress else None
            counts = _stream(run(grid.base, todo), rows, save, checkpoint_s, bar, on_row)
    skipped = len(points) - len(todo)
    return Summary(table_path(out, fmt), len(points), skipped, *counts)


def _done(
    out: Path, fmt: str, grid: Grid, keys: set[str], retry_failed: bool
) -> dict[str, dict[str, Any]]:
    """The rows of the existing table that need no re-run, by key."""
    path = table_path(out, fmt)
    keep = ("ok",) if retry_failed else ("ok", "error")
    try:
        old = read_rows(out, fmt, grid)
        return {r["key"]: r for r in old if r["key"] in keys and r.get("status") in keep}
    except (ValueError, KeyError, OSError) as exc:
        raise UserError(
            f"out: {str(path)!r} cannot be read ({type(exc).__name__}; rule: a table this "
            "command wrote; delete it to start over)"
        ) from None


def _stream(
    results: Iterator[tuple[Any, dict[str, Any]]],
    rows: dict[str, dict[str, Any]],
    save: Callable[[], None],
    checkpoint_s: float,
    bar: Progress | None,
    on_row: Callable[[dict[str, Any]], None] | None,
) -> tuple[int, int, int, str | None]:
    """Collect results into `rows`, saving every `checkpoint_s` and at the end (or on an
    exception, Ctrl-C included); (ok, failed, lost) counts and the first lost point's error."""
    counts = {"ok": 0, "error": 0, LOST: 0}
    lost_error = None
    last = time.monotonic()
    try:
        for point, result in results:
            counts[result["status"]] += 1
            if bar:
                bar.update(result["status"])
            if result["status"] == LOST:
                lost_error = lost_error or result["error"]
                continue
            row = {"key": point.key, **point.values, **result}
            rows[point.key] = row
            if on_row:
                on_row(row)
            if time.monotonic() - last >= checkpoint_s:
                save()
                last = time.monotonic()
    finally:
        save()
        if bar:
            bar.close()
    return counts["ok"], counts["error"], counts[LOST], lost_error


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
