"""The `bubble` rule against the pass recursion on interleaved layouts with uneven chunks, and
the planner's re-pricing window (`analysis.planner.search.RULE_LOW`) against re-pricing them
all: the figures behind RULE_LOW's docstring and docs/simulator.md item 9.

    python benchmarks/rule_vs_recursion.py            # ratios, then regret (~2 minutes)
    python benchmarks/rule_vs_recursion.py --window 1.0

1. For every 7th such layout of four searches (Llama-3-70B and GPT-3 175B on 1,024 H100,
   Llama-2-13B and Mixtral 8x7B on 256; bf16, default batch), the step priced by the rule
   over the step priced by the recursion: min, 1st percentile, median, max.
2. For 16 searches (those four models, H100 and A100, 256 and 1,024 GPUs), the best layout's
   tokens per second with the window over that with every fitting layout re-priced.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def regret(window: float) -> None:
    worst, n = 0.0, 0
    for name, seq in MODELS:
        model = load_model(name)
        for hw_name in ("h100-sxm", "a100-80gb"):
            hw = load_profile(hw_name)
            for gpus in (256, 1024):
                batch = BatchPolicy.default(seq)
                e = enumerate_layouts(model, gpus, hw.node.gpus_per_node, seq, batch)
                if len(e.layouts) == 0:
                    continue
                search.RULE_LOW = 0.0  # every fitting uneven layout re-priced
                every = search.search_candidate(model, hw, gpus, "bf16", seq, batch, enumeration=e)
                search.RULE_LOW = window
                got = search.search_candidate(model, hw, gpus, "bf16", seq, batch, enumeration=e)
                if every.best is None:
                    continue
                miss = every.best["tokens_per_s"] / got.best["tokens_per_s"] - 1
                n, worst = n + 1, max(worst, miss)
                if miss > 1e-9:
                    print(f"{name} {hw_name} {gpus}: window misses the best by {miss * 100:.2f} %")
    print(f"window {window}: {n} searches, worst regret {worst * 100:.2f} %")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=search.RULE_LOW)
    args = ap.parse_args()
    ratios()
    regret(args.window)
