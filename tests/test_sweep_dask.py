"""`llmcap sweep` on Dask distributed: the same table as in-process, a dying worker costs only
its in-flight points, and a re-run or an interrupted run resumes from the table."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from analysis.sweep import load_grid, run_sweep

pytest.importorskip("pyarrow")
distributed = pytest.importorskip("distributed")

GRID = Path(__file__).parent / "data" / "sweep_tiny.toml"


@pytest.fixture(scope="module")
def grid():
    return load_grid(GRID)


@pytest.fixture(scope="module")
def local_table(grid, tmp_path_factory):
    s = run_sweep(grid, tmp_path_factory.mktemp("local") / "s", progress=False)
    assert (s.points, s.ok, s.failed) == (192, 192, 0)
    return s.table.read_bytes()


@pytest.mark.slow
def test_dask_localcluster_gives_the_local_table_byte_for_byte(grid, local_table, tmp_path):
    s = run_sweep(grid, tmp_path / "s", executor="dask", workers=2, progress=False)
    assert (s.ok, s.lost) == (192, 0)
    assert s.table.read_bytes() == local_table


@pytest.mark.slow
def test_killing_a_worker_mid_sweep_still_completes_the_table(grid, local_table, tmp_path):
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        before = client.run(os.getpid)
        killed: list[int] = []

        def kill_one(row):
            if not killed:  # after the first result, while the others are in flight
                pid = sorted(before.values())[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        s = run_sweep(
            grid,
            tmp_path / "s",
            executor="dask",
            scheduler=cluster.scheduler_address,
            progress=False,
            on_row=kill_one,
        )
        after = client.run(os.getpid)
    assert killed and killed[0] not in after.values()  # that worker really died
    assert (s.ok, s.lost) == (192, 0), s.lost_error
    assert s.table.read_bytes() == local_table


def test_rerun_skips_done_points_and_an_interrupted_run_resumes(grid, local_table, tmp_path):
    out = tmp_path / "s"
    seen: list[str] = []

    def stop_after_50(row):
        seen.append(row["key"])
        if len(seen) == 50:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, out, progress=False, on_row=stop_after_50, checkpoint_s=1e9)
    import pyarrow.parquet as pq

    assert pq.read_table(out / "results.parquet").num_rows == 50  # saved on the way out
    redo: list[str] = []
    s = run_sweep(grid, out, progress=False, on_row=lambda r: redo.append(r["key"]))
    assert (s.skipped, s.ok) == (50, 142) and not set(redo) & set(seen)
    assert s.table.read_bytes() == local_table
    again = run_sweep(grid, out, progress=False, on_row=lambda r: redo.append(r["key"]))
    assert (again.skipped, again.ok, len(redo)) == (192, 0, 142)
