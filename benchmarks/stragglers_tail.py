"""Tail amplification table: GPT-3 1.3B data-parallel on H100, 8 ... 8192 ranks, both engines.

Scenario: data parallelism only (ZeRO-1, micro-batch 1, 4 micro-batches per rank, sequence
2048), contention off; per-device speed spread sigma = `DEVICE_SPEED_SIGMA` (Sinha et al. SC22)
plus the thermal and noisy-neighbour transients of `simulator.stragglers.TRANSIENTS`. The SimPy
engine runs 64 seeded steps per size; the closed form gives the expected maximum.

Run: ``python benchmarks/stragglers_tail.py`` (``--seeds 64``, ``--sizes 8,64,512``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.stragglers import dp_workload, tail_amplification
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model
from simulator.stragglers import DEVICE_SPEED_SIGMA, TRANSIENTS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="8,64,512,4096,8192")
    ap.add_argument("--seeds", type=int, default=64)
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    model, hw = load_model("gpt3-1.3b"), load_profile("h100-sxm")
    cases = {
        f"spread sigma {DEVICE_SPEED_SIGMA}": [],
        "spread + thermal + noisy neighbour": [
            TRANSIENTS["thermal"],
            TRANSIENTS["noisy-neighbour"],
        ],
    }
    print(
        "| case | GPUs | E[max Z] | sqrt(2 ln n) | step, no variation (s) | DES mean (s) | "
        "DES p90 (s) | closed form (s) | DES excess | closed-form excess |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, tr in cases.items():
        rows = tail_amplification(
            [dp_workload(model, n) for n in sizes], hw, DEVICE_SPEED_SIGMA, tr, range(a.seeds)
        )
        for r in rows:
            print(
                f"| {name} | {r['gpus']} | {r['expected_max_z']:.2f} | {r['sqrt_2_ln_n']:.2f} | "
                f"{r['step_s']:.4f} | {r['des_mean_s']:.4f} | {r['des_p90_s']:.4f} | "
                f"{r['closed_form_s']:.4f} | {r['des_excess']:+.1%} | "
                f"{r['closed_form_excess']:+.1%} |"
            )


if __name__ == "__main__":
    main()
