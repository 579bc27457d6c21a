"""Speed of the SimPy engine: one GPT-3 175B step on 128 ... 8192 simulated GPUs.

Scenario (Narayanan et al. 2021, Table 1 layout for GPT-3 175B): TP 8 inside a DGX A100 node,
PP 8 (1F1B), DP = GPUs / 64, sequence 2048, micro-batch 1, bucketed data-parallel all-reduce
overlapped with the backward (ZeRO-0, 25 MiB buckets), link contention on. Each size runs in a
fresh Python process so that its peak resident memory is its own.

Two series:
- fixed global batch 1536 (the paper's): micro-batches per pipeline = 1536 / DP fall as the
  cluster grows, and so does the simulation's work;
- fixed 96 micro-batches per pipeline (global batch = 1.5 x GPUs): the work per simulated
  pipeline is constant, so this series shows what cluster size itself costs.

Run: ``python benchmarks/des_speed.py`` (``--json`` for machine output, ``--sizes 1024``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

SIZES = (128, 256, 512, 1024, 2048, 4096, 8192)
GLOBAL_BATCH = 1536  # GPT-3 175B, Narayanan et al. 2021 Table 1
MICROBATCHES = 96  # micro-batches per pipeline of the 1024-GPU run (1536 / DP 16)

CHILD = """
import json, resource, sys, time
from simulator.options import Options
from hwprofiles.catalogue import load_profile
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload
gpus, gbs = int(sys.argv[1]), int(sys.argv[2])
hw = load_profile("a100-80gb")
p = ParallelConfig(tp=8, pp=8, micro_batch_size=1, global_batch_size=gbs).resolve(gpus)
w = Workload(load_model("gpt3-175b"), p, 2048)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
opts = Options(overlap_grad_reduce=True, bucket_bytes=25 * 2**20)  # torch DDP's 25 MiB
r = simulate_step(w, hw, opts, contention=True)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"gpus": gpus, "global_batch": gbs, "dp": p.dp,
                  "microbatches": p.num_microbatches, "wall_s": wall,
                  "peak_rss_mib": peak / 1024, "rss_before_mib": before / 1024,
                  "activities": r.extra["activities"], "step_time_s": r.step_time_s}))
"""


def run_one(gpus: int, gbs: int) -> dict[str, float]:
    """Simulate one size in a child process; its JSON line."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(gpus), str(gbs)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument(
        "--series", choices=("fixed-batch", "fixed-microbatches", "both"), default="both"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    rows = []
    series = ["fixed-batch", "fixed-microbatches"] if args.series == "both" else [args.series]
    t0 = time.perf_counter()
    for s in series:
        for n in sizes:
            gbs = GLOBAL_BATCH if s == "fixed-batch" else MICROBATCHES * n // 64
            rows.append({"series": s, **run_one(n, gbs)})
            if not args.json:
                r = rows[-1]
                print(
                    f"{s:19s} {n:5d} GPUs  dp {r['dp']:4d}  m {r['microbatches']:4d}  "
                    f"{r['activities']:7d} activities  {r['wall_s']:6.2f} s  "
                    f"peak RSS {r['peak_rss_mib']:6.0f} MiB",
                    flush=True,
                )
    if args.json:
        print(json.dumps({"rows": rows, "total_s": time.perf_counter() - t0}, indent=2))


if __name__ == "__main__":
    main()
