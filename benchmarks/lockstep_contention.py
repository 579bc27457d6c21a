"""Where does a 2-rank CPU run lose its time? The validation's tiny model step (forward,
backward, AdamW; one thread per rank) timed five ways, in rounds that alternate them:

- alone: one process steps, the other waits;
- free: both step at once, each at its own pace (as `benchmarks/mix_contention.py`);
- lockstep: both start every step together (a barrier before each), no communication: the
  step is the slower rank's (max per step), as a synchronous run's would be;
- no_sync: both are ranks of a gloo process group under DDP, every step in `no_sync`
  (no gradient all-reduce), a `dist.barrier` before each, as the validation's diagnostic;
- sync: the same with the all-reduce (the validation's timed step).

Per mode: the median step (the slower rank's per step in lockstep modes) over rounds' medians,
and each rank's own steps (their median): where the two differ, the excess is one rank
waiting for the slower, step by step (the maximum of two noisy times), not both slower.
If lockstep is as slow as no_sync, the 2-rank runs' excess (docs/validation.md, session 6)
comes from the ranks computing at the same moments, not from the distributed runtime.

    python benchmarks/lockstep_contention.py [--rounds 5] [--steps 20] [--precision fp32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = ("alone", "free", "lockstep", "no_sync", "sync")


def _worker(rank: int, precision: str, steps: int, port: int, orders, barrier, out) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from validation.gpt import GPT
    from validation.gptconfig import PRESETS

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    plain = GPT(cfg)
    ddp = DistributedDataParallel(GPT(cfg))
    idx = torch.randint(0, cfg.vocab_size, (cfg.micro_batch_size, cfg.seq_len))
    opts = {id(m): torch.optim.AdamW(m.parameters(), lr=1e-4) for m in (plain, ddp)}

    def step(model, sync: bool = True) -> float:
        t0 = time.perf_counter()
        with model.no_sync() if not sync else nullcontext():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = model(idx, idx)
            loss.backward()
        opts[id(model)].step()
        opts[id(model)].zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for _ in range(3):
        step(plain)
        step(ddp, sync=False)
    while (mode := orders.get()) is not None:
        times = []
        if mode == "alone" and rank == 1:
            out.put((rank, times))
            continue
        if mode == "free":
            barrier.wait()
        for _ in range(steps):
            if mode == "lockstep":
                barrier.wait()
            elif mode in ("no_sync", "sync"):
                dist.barrier()
            model = ddp if mode in ("no_sync", "sync") else plain
            times.append(step(model, sync=mode != "no_sync"))
        out.put((rank, times))
    dist.destroy_process_group()


def main() -> None:
    import multiprocessing as mp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--port", type=int, default=29731)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    out, barrier = ctx.Queue(), ctx.Barrier(2)
    orders = [ctx.Queue() for _ in range(2)]
    procs = [
        ctx.Process(
            target=_worker,
            args=(r, args.precision, args.steps, args.port, orders[r], barrier, out),
        )
        for r in range(2)
    ]
    for p in procs:
        p.start()
    per_mode: dict[str, list[float]] = {m: [] for m in MODES}
    each: dict[str, list[float]] = {m: [] for m in MODES}  # every rank's own steps
    try:
        for _ in range(args.rounds):
            for mode in MODES:
                for q in orders:
                    q.put(mode)
                got = dict(out.get(timeout=300) for _ in procs)
                if mode in ("alone", "free"):
                    steps = got[0] + got[1]
                else:  # the slower rank's, step by step
                    steps = [max(a, b) for a, b in zip(got[0], got[1], strict=True)]
                per_mode[mode].append(statistics.median(steps))
                each[mode].append(statistics.median(got[0] + got[1]))
    finally:
        for q in orders:
            q.put(None)
        for p in procs:
            p.join(timeout=30)
    base = statistics.median(per_mode["alone"])
    print(f"{args.precision}, load {os.getloadavg()[0]:.1f}, {args.rounds} rounds x {args.steps}")
    for mode in MODES:
        med = statistics.median(per_mode[mode])
        rounds = " ".join(f"{x * 1e3:.1f}" for x in per_mode[mode])
        own = statistics.median(each[mode]) / base
        print(
            f"{mode:>9}: {med * 1e3:7.2f} ms  x alone {med / base:5.2f}  each rank's own "
            f"{own:5.2f}  (rounds: {rounds})"
        )


if __name__ == "__main__":
    main()
