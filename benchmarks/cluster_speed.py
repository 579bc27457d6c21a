"""Speed of `llmcap cluster`: the example job mix, 30 simulated days, 512 H100 + 256 A100.

Scenario: examples/jobmix.toml (~5,000 jobs in 30 days), pools h100-sxm:512 and a100-80gb:256,
every policy. Times (wall clock, one process): the step model (planner searches, cached per
class x size x pool), each policy's simulation, and the report with its figures. It also runs
the whole thing twice and compares the JSON bytes (determinism), and states the machine's load,
since this machine is shared: read the ratios (simulated time per wall second), not the seconds.

Run: ``python benchmarks/cluster_speed.py`` (``--json`` for machine output, ``--days 30``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.cli.common import dumps  # noqa: E402
from analysis.cluster import ClusterConfig, StepModel, parse_pools, read_mix  # noqa: E402
from analysis.cluster.report import summary, write_report  # noqa: E402
from analysis.cluster.run import build_cluster, draw_jobs  # noqa: E402
from simulator.cluster import ClusterSim, get_policy, job_rows, summarise  # noqa: E402

POOLS = "h100-sxm:512,a100-80gb:256"
POLICIES = ("fifo", "backfill", "priority", "gang")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    load_before = os.getloadavg()
    cfg = ClusterConfig(
        parse_pools(POOLS), read_mix(ROOT / "examples" / "jobmix.toml"), POLICIES, a.days
    )
    t0 = time.perf_counter()
    pools, _, table = build_cluster(cfg, StepModel())
    t_steps = time.perf_counter() - t0
    jobs = draw_jobs(cfg, 0, table)
    result = {"inputs": {"jobs": len(jobs)}, "policies": {}}
    per_policy = {}
    for name in POLICIES:
        t = time.perf_counter()
        sim = ClusterSim(pools, jobs, get_policy(name), cfg.horizon_s, 0).run()
        r = summarise(sim) | {"jobs": job_rows(sim)}
        per_policy[name] = time.perf_counter() - t
        result["policies"][name] = r
    from analysis.cluster import simulate_cluster

    t = time.perf_counter()
    full = simulate_cluster(cfg, 0)
    t_full = time.perf_counter() - t
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        write_report(full, d)
    t_report = time.perf_counter() - t
    again = simulate_cluster(cfg, 0)
    digest = [hashlib.sha256(dumps(summary(x)).encode()).hexdigest()[:16] for x in (full, again)]
    horizon = cfg.horizon_s
    out = {
        "days": a.days,
        "jobs": len(jobs),
        "step_model_s": t_steps,
        "simulate_s": per_policy,
        "simulated_s_per_wall_s": {k: horizon / v for k, v in per_policy.items()},
        "simulate_cluster_all_policies_s": t_full,
        "report_s": t_report,
        "byte_identical": digest[0] == digest[1],
        "sha256_16": digest[0],
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    if a.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{out['jobs']} jobs over {a.days:g} days; step model {t_steps:.2f} s (cached searches)")
    for k, v in per_policy.items():
        print(f"  {k:9s} {v:6.2f} s  ({horizon / v:,.0f} simulated s per wall s)")
    print(
        f"simulate_cluster, all four policies: {t_full:.2f} s; report + figures: {t_report:.2f} s"
    )
    print(f"byte-identical JSON on rerun: {out['byte_identical']} ({digest[0]})")
    after = out["load_average_after"]
    print(f"load average before/after: {load_before} / {after} on {out['cpus']} CPUs")


if __name__ == "__main__":
    main()
