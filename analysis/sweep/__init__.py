"""What-if sweeps: a grid of `simulate` inputs run as tasks (in process or on Dask distributed),
streamed into a resumable Parquet/CSV table. See docs/sweep.md."""

from analysis.sweep.grid import Grid, Point, load_grid, parse_grid
from analysis.sweep.runner import Summary, run_sweep

__all__ = ["Grid", "Point", "Summary", "load_grid", "parse_grid", "run_sweep"]
