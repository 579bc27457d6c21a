"""Scenario: how fast does the planner search layouts, vectorised vs one layout at a time?

The same layouts (every valid layout of Llama-3-70B on 1,024 H100-SXM GPUs, bf16, seq 8192,
~4M-token batch) are evaluated three ways:

1. vectorised: `analysis.planner.search.evaluate_chunked`, every layout priced (the planner
   prices only those that could be best, `analysis.planner.bounds`);
2. a plain Python loop calling `analysis.closed_form.evaluate` once per layout (a sample of
   them: the loop is slow, its per-layout cost is flat, so a sample gives its rate);
3. end to end: `analysis.planner.plan` for the Llama-3-70B question (4 hardware x 5 cluster
   sizes x 2 precisions), enumeration and costing included.

4. expert parallelism: every valid layout of DeepSeek-V3 (a mixture-of-experts model, the ep
   axis in the space) on the same 1,024 H100-SXM GPUs, vectorised, against the dense rate of 1
   (`--ep-only` runs 1 and 4 alone: the Done-when ratio of issue 17, within 2x).

The heap is kept as the `llmcap` command keeps it (`analysis.planner.heap`).
Reported: layouts per second and the vectorised / loop ratio. Timings vary with the machine;
the ratio is what docs/performance.md quotes. Run:

    python benchmarks/search_rate.py [--loop-sample 2000] [--repeat 3] [--json] [--ep-only]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

from analysis.closed_form import Options, evaluate
from analysis.layouts import Layouts
from analysis.planner import PlanRequest, plan
from analysis.planner.heap import keep_freed_heap
from analysis.planner.search import evaluate_chunked
from analysis.planner.space import BatchPolicy, enumerate_layouts
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model

MODEL = "llama-3-70b"
HARDWARE = ("h100-sxm", "a100-80gb", "b200", "mi300x")
SEQ_LEN = 8192  # Llama 3 pre-training context (Llama Team 2024, Sec. 3.4)


def _best_of(repeat: int, fn) -> float:
    """Best wall time of `repeat` runs (s): the least disturbed by other processes."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


MOE_MODEL = "deepseek-v3"
MOE_SEQ_LEN = 4096  # DeepSeek-V3 pre-training length (arXiv 2412.19437, Sec. 4.2)


def measure_ep(repeat: int = 3) -> dict[str, float | int]:
    """Vectorised layouts/s, dense (Llama-3-70B) against MoE with the ep axis (DeepSeek-V3),
    both on 1,024 H100-SXM; measured back to back in one process."""
    hw = load_profile("h100-sxm")
    out: dict[str, float | int] = {}
    for key, name, seq in (("dense", MODEL, SEQ_LEN), ("ep", MOE_MODEL, MOE_SEQ_LEN)):
        model = load_model(name)
        e = enumerate_layouts(model, 1024, hw.node.gpus_per_node, seq, BatchPolicy.default(seq))
        lay, opts = e.layouts, Options()
        t = _best_of(repeat, lambda m=model, s=seq, x=lay, o=opts: evaluate_chunked(
            m, hw, s, x, "bf16", o))  # fmt: skip
        out[f"{key}_layouts"] = len(lay)
        out[f"{key}_layouts_per_s"] = round(len(lay) / t)
    out["ratio_dense_over_ep"] = round(out["dense_layouts_per_s"] / out["ep_layouts_per_s"], 2)
    return out


def measure(loop_sample: int = 2000, repeat: int = 3) -> dict[str, float | int | str]:
    model = load_model(MODEL)
    hw = load_profile("h100-sxm")
    e = enumerate_layouts(model, 1024, hw.node.gpus_per_node, SEQ_LEN, BatchPolicy.default(SEQ_LEN))
    layouts, opts = e.layouts, Options()
    n = len(layouts)
    t_vec = _best_of(repeat, lambda: evaluate_chunked(model, hw, SEQ_LEN, layouts, "bf16", opts))

    rows = [Layouts.from_arrays(**layouts.row(i)) for i in range(0, n, max(1, n // loop_sample))]

    def loop() -> None:
        for one in rows:
            evaluate(model, hw, SEQ_LEN, one, "bf16", opts)

    t_loop = _best_of(max(1, repeat - 1), loop)
    req = PlanRequest(
        model=model,
        tokens=2e12,
        hardware=tuple(load_profile(h) for h in HARDWARE),
        gpus=(256, 512, 1024, 2048, 4096),
        precisions=("bf16", "fp8"),
        recheck=0,
    )
    t0 = time.perf_counter()
    res = plan(req)
    t_plan = time.perf_counter() - t0
    vec_rate, loop_rate = n / t_vec, len(rows) / t_loop
    return {
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "layouts": n,
        "vectorised_layouts_per_s": round(vec_rate),
        "loop_layouts_sampled": len(rows),
        "loop_layouts_per_s": round(loop_rate),
        "ratio_vectorised_over_loop": round(vec_rate / loop_rate, 1),
        "plan_layouts": res.layouts_evaluated,
        "plan_seconds": round(t_plan, 2),
        "plan_layouts_per_s": round(res.layouts_evaluated / t_plan),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop-sample", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--ep-only", action="store_true", help="only the EP vs dense rates")
    a = ap.parse_args()
    keep_freed_heap()  # as the `llmcap` command runs the planner (analysis.planner.heap)
    ep = measure_ep(a.repeat)
    if a.ep_only:
        print(json.dumps(ep, indent=2))
        return
    r = measure(a.loop_sample, a.repeat) | ep
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"{MODEL}, {r['layouts']:,} layouts on 1024 x h100-sxm, bf16 ({r['machine']})")
    print(f"  vectorised (chunked evaluate): {r['vectorised_layouts_per_s']:>12,} layouts/s")
    print(
        f"  Python loop, one per call:     {r['loop_layouts_per_s']:>12,} layouts/s "
        f"({r['loop_layouts_sampled']} sampled)"
    )
    print(f"  ratio vectorised / loop:       {r['ratio_vectorised_over_loop']:>12,}x")
    print(
        f"  end-to-end plan ({len(HARDWARE)} hw x 5 sizes x 2 precisions): "
        f"{r['plan_layouts']:,} layouts in {r['plan_seconds']} s = "
        f"{r['plan_layouts_per_s']:,} layouts/s"
    )
    print(
        f"  with expert parallelism ({MOE_MODEL}, ep axis): {r['ep_layouts']:,} layouts at "
        f"{r['ep_layouts_per_s']:,} layouts/s; dense / EP rate {r['ratio_dense_over_ep']}x"
    )


if __name__ == "__main__":
    main()
