"""`llmcap sweep`: run a grid of what-if points (in process or on Dask), or plot one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analysis.cli.common import echo_json, fail, run_guarded

Opt = typer.Option


def register(app: typer.Typer) -> None:
    """Register `llmcap sweep`."""

    @app.command()
    def sweep(
        grid: Annotated[
            Path | None,
            typer.Argument(
                help="Grid TOML (docs/sweep.md) \\[default: none; needed unless --plot]"
            ),
        ] = None,
        out: Annotated[
            Path | None,
            Opt(help="Output directory (table + sweep.json) \\[default: none; needed with GRID]"),
        ] = None,
        executor: Annotated[
            str | None,
            Opt(help="local (this process) or dask \\[default: dask with --scheduler/--workers]"),
        ] = None,
        scheduler: Annotated[
            str | None,
            Opt(
                help="Existing Dask scheduler, e.g. tcp://host:8786 "
                "\\[default: none: a LocalCluster]"
            ),
        ] = None,
        workers: Annotated[
            int | None, Opt(help="LocalCluster worker processes \\[default: one per CPU core]")
        ] = None,
        fmt: Annotated[str, Opt("--format", help="parquet or csv")] = "parquet",
        retry_failed: Annotated[bool, Opt(help="Re-run points that recorded an error")] = False,
        timeout: Annotated[float, Opt(help="Seconds to reach the scheduler")] = 10.0,
        plot: Annotated[
            Path | None,
            Opt(help="Plot the table of this sweep directory \\[default: none: run GRID]"),
        ] = None,
        metric: Annotated[str, Opt(help="Column to plot")] = "step_time_s",
        progress: Annotated[bool, Opt("--progress/--no-progress", help="Bar on stderr")] = True,
        json_out: Annotated[bool, Opt("--json", help="Summary as JSON on stdout")] = False,
    ) -> None:
        """Run every point of GRID not yet in --out's table, or draw --plot DIR's table."""
        if plot is not None:
            from analysis.sweep.plot import plot_sweep

            if grid is not None or out is not None:
                fail("plot: --plot DIR takes no GRID or --out (rule: plot a finished sweep)")
            typer.echo(str(run_guarded(lambda: plot_sweep(plot, metric))))
            return
        if grid is None or out is None:
            fail("grid: give GRID.toml and --out DIR (or --plot DIR)")

        def go():
            from analysis.sweep import load_grid, run_sweep

            g = load_grid(grid)
            kind = executor or ("dask" if scheduler or workers else "local")
            return run_sweep(
                g,
                out,
                fmt=fmt,
                executor=kind,
                scheduler=scheduler,
                workers=workers,
                retry_failed=retry_failed,
                timeout_s=timeout,
                progress=progress,
            )

        try:
            s = run_guarded(go)
        except KeyboardInterrupt:
            fail(f"interrupted: completed points are in {out}; re-run to resume", code=130)
        if json_out:
            echo_json({k: str(v) if isinstance(v, Path) else v for k, v in vars(s).items()})
        else:
            typer.echo(
                f"sweep: {s.points} points, {s.skipped} already done, {s.ok} ok, {s.failed} "
                f"failed (see the error column)\ntable: {s.table}",
                err=True,
            )
        if s.lost:
            fail(f"lost: {s.lost} points did not finish ({s.lost_error}); re-run to retry them", 1)
