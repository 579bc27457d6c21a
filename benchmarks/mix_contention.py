"""Does one CPU rank slow the other when both train the validation's tiny model, without any
communication? The tiny GPT's forward, backward and AdamW step (`validation.gpt`), one thread
each, in two processes: timed alone and both at once, in alternating pairs (the method of
`hwprofiles/calibration/contention.py`), factor = median over pairs of alone / busy.

Set beside a 2-rank run's "contention" diagnostic (its DDP no_sync step over the 1-rank step,
`llmcap validate` report): where the independent processes keep ~1.0 and the 2-rank run does
not, the slowdown is in the distributed runtime, not in the host's compute.

    python benchmarks/mix_contention.py [--pairs 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwprofiles.calibration.contention import alternate

REPS = {"fp32": 30, "bf16": 8}
"""Steps per timed window (~0.3 s each on the 2-vCPU AMD EPYC VM, 2026-12-03)."""


def _worker(precision: str, reps: int, orders, barrier, out) -> None:
    import torch

    from hwprofiles.calibration.contention import serve
    from validation.gpt import GPT
    from validation.gptconfig import PRESETS

    torch.set_num_threads(1)
    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    idx = torch.randint(0, cfg.vocab_size, (cfg.micro_batch_size, cfg.seq_len))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(idx, idx)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    serve(step, reps, orders, barrier, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=9)
    args = ap.parse_args()
    for precision in REPS:
        alone, busy = alternate(2, _worker, (precision, REPS[precision]), args.pairs, 120.0)
        ratios = [a / b for a, b in zip(alone, busy, strict=True)]
        reps, factor = REPS[precision], statistics.median(ratios)
        print(
            f"{precision}: step alone {statistics.median(alone) / reps * 1e3:.2f} ms, both busy "
            f"{statistics.median(busy) / reps * 1e3:.2f} ms, factor {factor:.3f} "
            f"(pairs {' '.join(f'{r:.2f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
