"""Llama-3-70B over 256 H100 + 256 A100: pipeline stages per pool vs replicas per pool vs one pool.

Scenario: issue 18's heterogeneous job, tp 8, micro-batch 1, global batch 1024, sequence 4096,
ZeRO-1, selective recompute, `Options()` defaults; the pool-to-pool uplink at its default
(`simulator.costmodel.crosspool`) and at 10 % of it. Prints, for each plan, the closed form and
the SimPy engine without contention (and with it for the chosen plan), and the homogeneous
512-GPU steps on each pool's hardware; wall times are one run each (2 shared CPUs: read the
ratios, not the seconds).

Run: ``python benchmarks/pipeline_pools.py`` (about a minute on 2 shared CPUs).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.hetero import PoolPart, hetero_step
from analysis.pipeline_pools import balance_split, stages_step
from analysis.pool_plans import choose
from analysis.predict import analytic_arrays
from hwprofiles.catalogue import load_profile
from simulator.costmodel.crosspool import PoolLink, default_uplink
from simulator.des.pools import cross_send_seconds, simulate_stages
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload


def main() -> None:
    h100, a100 = load_profile("h100-sxm"), load_profile("a100-80gb")
    model = load_model("llama-3-70b")
    opts = Options()
    p = ParallelConfig(
        tp=8, pp=4, micro_batch_size=1, global_batch_size=1024, zero_stage=1, recompute="selective"
    )
    w = Workload(model, p.resolve(512), 4096)
    parts = [PoolPart(h100, 256), PoolPart(a100, 256)]
    up = default_uplink([(h100, 256), (a100, 256)])
    print(f"uplink: {up.bandwidth_bytes_per_s / 1e9:.0f} GB/s per direction ({up.source})")
    print(
        "| case | closed form (s) | SimPy, no contention (s) | DES / CF - 1 | wall CF / DES (s) |"
    )
    print("|---|---|---|---|---|")
    for hw in (h100, a100):
        t0 = time.perf_counter()
        cf = analytic_arrays(w, hw, opts)["step_time_s"]
        t1 = time.perf_counter()
        des = simulate_step(w, hw, opts, contention=False).step_time_s
        t2 = time.perf_counter()
        print(f"| 512 {hw.name} | {cf:.3f} | {des:.3f} | {des / cf - 1:+.2%} | "
              f"{t1 - t0:.2f} / {t2 - t1:.2f} |")  # fmt: skip
    for name, order in (("A100 stages first", (a100, a100, h100, h100)),
                        ("H100 stages first", (h100, h100, a100, a100))):  # fmt: skip
        split = balance_split(w, order, opts)
        t0 = time.perf_counter()
        cf = stages_step(w, order, split, up, opts)
        t1 = time.perf_counter()
        des = simulate_stages(w, order, split, up, opts, contention=False)
        t2 = time.perf_counter()
        share = cross_send_seconds(des) / des.step_time_s
        print(f"| pipeline, {name}, layers {list(split)} | {cf['step_time_s']:.3f} | "
              f"{des.step_time_s:.3f} | {des.step_time_s / cf['step_time_s'] - 1:+.2%} | "
              f"{t1 - t0:.2f} / {t2 - t1:.2f} |  cross-pool busy "
              f"{cf['cross_pool']['busy_share']:.2%} (CF) / {share:.2%} (DES)")  # fmt: skip
    t0 = time.perf_counter()
    cf = hetero_step(model, parts, p, 4096, "analytic", opts, uplink=up)
    t1 = time.perf_counter()
    des = hetero_step(model, parts, p, 4096, "des", opts, uplink=up)
    t2 = time.perf_counter()
    gap = des["step_time_s"] / cf["step_time_s"] - 1
    print(f"| replicas over pools | {cf['step_time_s']:.3f} | {des['step_time_s']:.3f} | "
          f"{gap:+.2%} | {t1 - t0:.2f} / {t2 - t1:.2f} |")  # fmt: skip
    order = (a100, a100, h100, h100)
    split = balance_split(w, order, opts)
    con = simulate_stages(w, order, split, up, opts, contention=True).step_time_s
    print(f"\nA100 first, SimPy with contention: {con:.3f} s")
    narrow = PoolLink(up.bandwidth_bytes_per_s / 10, "10 % of the default")
    n_cf = stages_step(w, order, split, narrow, opts)
    n_des = simulate_stages(w, order, split, narrow, opts, contention=False)
    print(f"uplink at 10 %: CF {n_cf['step_time_s']:.3f} s (cross busy "
          f"{n_cf['cross_pool']['busy_share']:.1%}), DES {n_des.step_time_s:.3f} s")  # fmt: skip
    t0 = time.perf_counter()
    r = choose(model, parts, p, 4096, up, opts, "auto", fixed_pp=False)
    print(f"\nplan search (pp free): {time.perf_counter() - t0:.2f} s, chose {r['plan']}")
    for a in r["alternatives"]:
        what = a["plan"] if a["plan"] == "data" else f"pp {a['pp']} {a['order']} {a['layers']}"
        print(f"  {what}: {a['step_time_s']:.3f} s")


if __name__ == "__main__":
    main()
