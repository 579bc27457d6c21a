"""The `bubble` rule against the pass recursion on interleaved layouts with uneven chunks, and
the planner's branch and bound (`analysis.planner.bounds`) against pricing every layout: the
figures behind docs/simulator.md item 9 and docs/performance.md's pruning paragraph.

    python benchmarks/rule_vs_recursion.py            # ratios, then pruning (~2 minutes)

1. For every 7th such layout of four searches (Llama-3-70B and GPT-3 175B on 1,024 H100,
   Llama-2-13B and Mixtral 8x7B on 256; bf16, default batch), the step priced by the rule
   over the step priced by the recursion: min, 1st percentile, median, max.
2. For 16 searches (those four models, H100 and A100, 256 and 1,024 GPUs): whether the
   search's best five are those of pricing every layout (they must be: both bounds stay
   under the price), the share of layouts it priced, and how many it priced by the
   recursion out of the fitting ones with uneven chunks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import analysis.planner.bounds as bounds
import analysis.planner.search as search
from analysis.closed_form import Options, evaluate
from analysis.pipeline_passes import uneven_chunks
from analysis.planner.space import BatchPolicy, enumerate_layouts
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model

MODELS = (("llama3-70b", 8192), ("gpt3-175b", 2048), ("llama-2-13b", 4096), ("mixtral-8x7b", 4096))
RATIO_GPUS = {"llama3-70b": 1024, "gpt3-175b": 1024, "llama-2-13b": 256, "mixtral-8x7b": 256}


def ratios() -> None:
    hw = load_profile("h100-sxm")
    for name, seq in MODELS:
        model = load_model(name)
        e = enumerate_layouts(
            model, RATIO_GPUS[name], hw.node.gpus_per_node, seq, BatchPolicy.default(seq)
        )
        sub = e.layouts.take(np.flatnonzero(uneven_chunks(model.num_hidden_layers, e.layouts))[::7])
        keys = ("step_time_s",)
        rule = evaluate(model, hw, seq, sub, "bf16", Options(), keys=keys, recursion=False)
        exact = evaluate(model, hw, seq, sub, "bf16", Options(), keys=keys)
        r = exact["step_time_s"] / rule["step_time_s"]
        print(
            f"{name} on {RATIO_GPUS[name]}: {len(r)} layouts, recursion / rule "
            f"min {r.min():.3f}, p1 {np.percentile(r, 1):.3f}, median {np.median(r):.3f}, "
            f"max {r.max():.3f}"
        )


def pruning() -> None:
    n = same = 0
    priced = layouts = recursed = uneven = 0
    for name, seq in MODELS:
        model = load_model(name)
        for hw_name in ("h100-sxm", "a100-80gb"):
            hw = load_profile(hw_name)
            for gpus in (256, 1024):
                batch = BatchPolicy.default(seq)
                e = enumerate_layouts(model, gpus, hw.node.gpus_per_node, seq, batch)
                if len(e.layouts) == 0:
                    continue
                made: list = []
                count = _counting(made)
                got = search.search_candidate(model, hw, gpus, "bf16", seq, batch, enumeration=e)
                bounds.Refine = count.__base__
                if got.best is None:
                    continue
                r = search.evaluate_chunked(model, hw, seq, e.layouts, "bf16", Options())
                fits = r["memory_per_gpu_bytes"] <= got.usable_memory_bytes
                tps = np.where(fits, e.layouts.gbs * seq / r["step_time_s"], -np.inf)
                want = [e.layouts.row(int(i)) for i in np.argsort(-tps, kind="stable")[:5]]
                ok = want == [{k: row[k] for k in want[0]} for row in got.top]
                n, same = n + 1, same + ok
                priced += sum(len(c.gbs) for c in made)
                layouts += len(e.layouts)
                recursed += sum(c.priced for c in made)
                uneven += int((uneven_chunks(model.num_hidden_layers, e.layouts) & fits).sum())
                if not ok:
                    print(f"{name} {hw_name} {gpus}: the best five differ")
    print(
        f"{n} searches, {same} with the best five of pricing every layout; priced "
        f"{priced / layouts:.1%} of {layouts:,} layouts; by the recursion {recursed:,} of "
        f"{uneven:,} fitting layouts with uneven chunks"
    )


def _counting(made: list):
    """`bounds.Refine`, recording every instance (the layouts each call priced)."""

    class Counting(bounds.Refine):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            made.append(self)

    bounds.Refine = Counting
    return Counting


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    ratios()
    pruning()
