"""Speed-up of `llmcap sweep` on Dask from 1 to 2 workers (LocalCluster, one thread each).

The grid is examples/sweep.toml with one seed (27 SimPy points of Llama-3-8B on 64-256 H100,
~0.2-0.6 s of CPU each). Each executor writes into a fresh directory; the cluster is started
before the clock starts, so the times are those of the sweep itself (submit, run, stream rows,
write the table). The three tables must be byte-identical. Machine load (1-minute load
average) is printed beside the times: on a shared machine the ratio, not the seconds, is the
result, and it is bounded by the free cores (2 workers on 2 busy cores give less than 2): the
script also reports the CPU seconds the workers got per wall second (`cores_used`).

Run: ``python benchmarks/sweep_speedup.py`` (``--json``; ``--seeds 3`` for all 81 points).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from analysis.sweep import load_grid, run_sweep

GRID = Path(__file__).resolve().parent.parent / "examples" / "sweep.toml"


def timed(grid, out: Path, **kw) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    s = run_sweep(grid, out, progress=False, **kw)
    wall = time.perf_counter() - t0
    assert s.ok + s.failed == s.points and not s.lost, s
    return wall, s.table.read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    g = load_grid(GRID)
    g = replace(g, axes={**g.axes, "seed": list(range(args.seeds))})
    res: dict[str, object] = {"points": g.size, "cores": os.cpu_count()}
    res["load_before"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        res["local_s"], ref = timed(g, Path(tmp) / "local")
        for n in (1, 2):
            with (
                LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,
                Client(cluster) as client,
            ):
                client.wait_for_workers(n)
                client.run(lambda: __import__("analysis.predict"))  # imports out of the clock
                cpu0 = sum(client.run(time.process_time).values())
                wall, table = timed(
                    g, Path(tmp) / f"dask{n}", executor="dask", scheduler=cluster.scheduler_address
                )
                cpu = sum(client.run(time.process_time).values()) - cpu0
            assert table == ref, f"dask with {n} workers gave a different table"
            res[f"dask{n}_s"] = wall
            # CPU seconds the workers got per wall second: the cores they really had
            res[f"dask{n}_cores_used"] = cpu / wall
    res["load_after"] = os.getloadavg()[0]
    res["speedup_1_to_2"] = res["dask1_s"] / res["dask2_s"]
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(
        f"{res['points']} points: in-process {res['local_s']:.1f} s, Dask 1 worker "
        f"{res['dask1_s']:.1f} s, 2 workers {res['dask2_s']:.1f} s -> speed-up "
        f"{res['speedup_1_to_2']:.2f}x; the 2 workers got {res['dask2_cores_used']:.2f} cores "
        f"(tables identical; {res['cores']} cores, load "
        f"{res['load_before']:.1f} before, {res['load_after']:.1f} after)"
    )


if __name__ == "__main__":
    main()
