"""Planner search rate and SimPy wall time per step, this tree against earlier commits, in one run.

Each commit is exported (`git archive`, nothing in the repository changes) to a temporary
folder, and every measurement runs in a fresh Python process with that tree first on
`sys.path`; trees alternate round by round so that machine load hits them alike, and the best
of the rounds is kept. Times are the process's CPU time (`time.process_time`), which a machine
shared with other jobs disturbs far less than wall time. Reported as ratios to the first commit
given (the "before").

- search: the planner's search of one candidate (`analysis.planner.search.search_candidate`:
  the vectorised closed form over every valid layout of Llama-3-70B on 1,024 H100-SXM, bf16,
  seq 8192, ~4M-token batch, and the pick of the best five that fit), in layouts per second
  (each tree enumerates its own layouts, not timed; the rate is per layout), best of three
  calls in one process and the first call alone (caches cold);
- with ``--after-other``, also the first call of that search in a process that has already
  searched another candidate (Llama-3-70B on 512 A100-80GB: imports, data tables and code
  paths warm, this candidate's pipeline graphs and results not), as `llmcap plan` meets
  every candidate after its first;
- with ``--plan``, also a whole `analysis.planner.plan` of the Llama-3-70B question of
  benchmarks/search_rate.py (4 hardware x 5 cluster sizes x 2 precisions, no SimPy re-check):
  CPU seconds, best and median over the rounds (what `llmcap plan` runs);
- des: one GPT-3 175B step on 1,024 A100s (TP 8, PP 8, DP 16, global batch 1536, 25 MiB DDP
  buckets, contention on; Narayanan et al. 2021, Table 1 layout), CPU seconds.

Allocator: every tree runs with the environment's malloc settings (like for like). With
``--as-cli`` each tree that has `analysis.planner.heap.keep_freed_heap` calls it first, as the
`llmcap` command does at its entry point (trees from before it run on glibc's defaults).

Run: ``python benchmarks/vs_commit.py --refs f8890de [--rounds 3] [--json] [--as-cli]
[--search-only] [--after-other] [--plan]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]

AS_CLI = """
try:  # as the llmcap command runs the planner (analysis.cli.main.main)
    from analysis.planner.heap import keep_freed_heap
    keep_freed_heap()
except ImportError:
    pass
"""

SEARCH = """
import json, time
from analysis.closed_form import Options
from analysis.planner.search import search_candidate
from analysis.planner.space import BatchPolicy, enumerate_layouts
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model
model, hw, seq = load_model("llama-3-70b"), load_profile("h100-sxm"), 8192
batch = BatchPolicy.default(seq)
e = enumerate_layouts(model, 1024, hw.node.gpus_per_node, seq, batch)
times = []
for _ in range(3):
    t0 = time.process_time()
    search_candidate(model, hw, 1024, "bf16", seq, batch, enumeration=e, options=Options())
    times.append(time.process_time() - t0)
n = len(e.layouts)
print(json.dumps({"layouts": n, "layouts_per_s": n / min(times), "first_per_s": n / times[0]}))
"""

AFTER_OTHER = """
import json, time
from analysis.closed_form import Options
from analysis.planner.search import search_candidate
from analysis.planner.space import BatchPolicy, enumerate_layouts
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model
model, seq = load_model("llama-3-70b"), 8192
batch = BatchPolicy.default(seq)
other = load_profile("a100-80gb")
eo = enumerate_layouts(model, 512, other.node.gpus_per_node, seq, batch)
search_candidate(model, other, 512, "bf16", seq, batch, enumeration=eo, options=Options())
hw = load_profile("h100-sxm")
e = enumerate_layouts(model, 1024, hw.node.gpus_per_node, seq, batch)
t0 = time.process_time()
search_candidate(model, hw, 1024, "bf16", seq, batch, enumeration=e, options=Options())
print(json.dumps({"after_other_per_s": len(e.layouts) / (time.process_time() - t0)}))
"""

PLAN = """
import json, time
from analysis.planner import PlanRequest, plan
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model
hardware = tuple(load_profile(h) for h in ("h100-sxm", "a100-80gb", "b200", "mi300x"))
req = PlanRequest(model=load_model("llama3-70b"), tokens=2e12, hardware=hardware,
    gpus=(256, 512, 1024, 2048, 4096), precisions=("bf16", "fp8"), recheck=0)
t0 = time.process_time()
plan(req)
print(json.dumps({"plan_s": time.process_time() - t0}))
"""

DES = """
import json, time
from analysis.closed_form import Options
from hwprofiles.catalogue import load_profile
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload
p = ParallelConfig(tp=8, pp=8, micro_batch_size=1, global_batch_size=1536).resolve(1024)
w = Workload(load_model("gpt3-175b"), p, 2048)
opts = Options(overlap_grad_reduce=True, bucket_bytes=25 * 2**20)
hw = load_profile("a100-80gb")
t0 = time.process_time()
r = simulate_step(w, hw, opts, contention=True)
print(json.dumps({"wall_s": time.process_time() - t0, "step_time_s": r.step_time_s}))
"""


def export(ref: str, into: Path) -> Path:
    """The tree of commit `ref` in a folder under `into` (git archive | tar)."""
    dest = into / ref
    dest.mkdir()
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref], check=True, capture_output=True
    ).stdout
    tar_path = into / f"{ref}.tar"
    tar_path.write_bytes(data)
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest, filter="data")
    return dest


def run(tree: Path, code: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env,
        cwd=tree,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refs", default="f8890de", help="comma-separated earlier commits")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--search-only", action="store_true", help="skip the DES measurement")
    ap.add_argument("--as-cli", action="store_true", help="keep the heap as `llmcap` does")
    ap.add_argument("--after-other", action="store_true", help="first call after another")
    ap.add_argument("--plan", action="store_true", help="also time a whole plan()")
    args = ap.parse_args()
    refs = args.refs.split(",")
    with tempfile.TemporaryDirectory(prefix="llmcap-bench-") as tmp:
        trees = {ref: export(ref, Path(tmp)) for ref in refs}
        trees["this tree"] = ROOT
        best: dict[str, dict[str, float]] = {k: {} for k in trees}
        plans: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                s = run(tree, (AS_CLI if args.as_cli else "") + SEARCH)
                if args.after_other:
                    s |= run(tree, (AS_CLI if args.as_cli else "") + AFTER_OTHER)
                if args.plan:
                    plans.setdefault(name, []).append(run(tree, PLAN)["plan_s"])
                d = {"wall_s": float("nan"), "step_time_s": float("nan")}
                if not args.search_only:
                    d = run(tree, DES)
                b = best[name]
                b["layouts"] = s["layouts"]
                b["layouts_per_s"] = max(b.get("layouts_per_s", 0.0), s["layouts_per_s"])
                b["first_per_s"] = max(b.get("first_per_s", 0.0), s.get("first_per_s", 0.0))
                b["after_per_s"] = max(b.get("after_per_s", 0.0), s.get("after_other_per_s", 0.0))
                b["des_wall_s"] = min(b.get("des_wall_s", float("inf")), d["wall_s"])
                if d["wall_s"] != d["wall_s"]:  # nan: not measured
                    b["des_wall_s"] = d["wall_s"]
                b["des_step_time_s"] = d["step_time_s"]
    base = best[refs[0]]
    for b in best.values():
        b["search_rate_ratio"] = round(b["layouts_per_s"] / base["layouts_per_s"], 3)
        b["first_call_ratio"] = round(b["first_per_s"] / max(base["first_per_s"], 1e-30), 3)
        b["des_wall_ratio"] = round(b["des_wall_s"] / base["des_wall_s"], 3)
        b["after_other_ratio"] = round(b["after_per_s"] / max(base["after_per_s"], 1e-30), 3)
    for name, times in plans.items():
        best[name]["plan_best_s"], best[name]["plan_median_s"] = min(times), median(times)
    for b in best.values():
        if plans:
            b["plan_ratio_best"] = round(base["plan_best_s"] / b["plan_best_s"], 3)
            b["plan_ratio_median"] = round(base["plan_median_s"] / b["plan_median_s"], 3)
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"load_1min": load, "results": best}, indent=1))
        return
    print(f"load average (1 min) at the end: {load:.1f}; best of {args.rounds} rounds")
    head = ("tree", "layouts", "layouts/s", "x before", "first/s", "x before", "DES s", "x before")
    widths = (12, 8, 10, 9, 10, 9, 7, 9)
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for name, b in best.items():
        print(
            f"{name:>12} {b['layouts']:>8.0f} {b['layouts_per_s']:>10.0f} "
            f"{b['search_rate_ratio']:>9.3f} {b['first_per_s']:>10.0f} "
            f"{b['first_call_ratio']:>9.3f} {b['des_wall_s']:>7.2f} {b['des_wall_ratio']:>9.3f}"
            + (f" after another: {b['after_other_ratio']:.3f}" if args.after_other else "")
            + (
                f" plan(): {b['plan_best_s']:.2f} s best, {b['plan_median_s']:.2f} s median, "
                f"x before {b['plan_ratio_best']:.3f} / {b['plan_ratio_median']:.3f}"
                if plans
                else ""
            )
        )


if __name__ == "__main__":
    main()
