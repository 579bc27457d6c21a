"""Measured peak memory of the validation GPT's training step, beside llmcap's prediction.

`python -m validation.memprobe [--out analysis/data/memory_measured.toml]` trains the
validation GPT (`validation.gpt`) for three steps per setup, each setup in its own process,
the way the validation runs train it (torch AdamW, `zero_grad(set_to_none=True)`, torch
autocast for bf16, DDP or FSDP2 over a gloo group of the setup's ranks (one process per rank,
each measuring itself; the busiest rank's figures are kept), and reads
torch's CPU allocator through the profiler: `torch.profiler.profile(profile_memory=True)`
records every allocation and free with its size, so the sum of the sizes in time order is the
live tensor bytes and its maximum over a step the step's peak. That counts tensors only (not
the Python/torch runtime the `ru_maxrss` of the validation runs includes).

Measured: the peak of the third step (steady state: Adam's moments exist from the first),
the live bytes before it (weights, optimizer states, DDP buckets) and the operator running at
the peak. The rows written carry the setup; `analysis.accuracy.memory_measured` prices them
with the closed-form engine for the same model, batch, precision and stack.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from typing import Any

SETUPS: dict[str, dict[str, Any]] = {
    # id: model preset, precision, wrapper ("none": the bare module, "ddp", "fsdp")
    "small-fp32": {"model": "small", "precision": "fp32", "wrap": "none"},
    "small-fp32-ddp": {"model": "small", "precision": "fp32", "wrap": "ddp"},
    "small-bf16": {"model": "small", "precision": "bf16", "wrap": "none"},
    "small-bf16-ddp": {"model": "small", "precision": "bf16", "wrap": "ddp"},
    "small-fp32-fsdp": {"model": "small", "precision": "fp32", "wrap": "fsdp"},
    "small-fp32-fsdp-2": {"model": "small", "precision": "fp32", "wrap": "fsdp", "nproc": 2},
    "small-fp32-ddp-2": {"model": "small", "precision": "fp32", "wrap": "ddp", "nproc": 2},
    "tiny-fp32": {"model": "tiny", "precision": "fp32", "wrap": "none"},
}
STEPS = 3
"""Training steps per setup: the peak is read in the last, after the first has allocated the
optimizer states and the gradients (llmcap's choice, not tuned)."""


def measure(setup: dict[str, Any]) -> dict[str, Any]:
    """Train `STEPS` steps of `setup` under the memory profiler (in this process) and return
    the last step's peak and base live tensor bytes and the operator at the peak."""
    import torch
    import torch.distributed as dist
    from torch.profiler import ProfilerActivity, profile, record_function

    from validation.gpt import GPT, synthetic_batches
    from validation.gptconfig import PRESETS

    torch.manual_seed(0)
    rank, nproc = int(os.environ.get("RANK", "0")), int(setup.get("nproc", 1))
    cfg = PRESETS[setup["model"]]
    bf16 = setup["precision"] == "bf16"
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model: torch.nn.Module = GPT(cfg)
        if setup["wrap"] != "none":
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", str(29600 + os.getpid() % 1000))
            dist.init_process_group("gloo", rank=rank, world_size=nproc)
            model = _wrap(model, setup, bf16, nproc)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        batches = synthetic_batches(cfg, 2, rank)
        for i in range(STEPS):
            x, y = batches[i % 2]
            with record_function(f"memprobe-step-{i}"):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    loss = model(x, y)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return _peak(prof.profiler.kineto_results.events(), f"memprobe-step-{STEPS - 1}")


def _wrap(model, setup: dict[str, Any], bf16: bool, nproc: int):
    import torch

    if setup["wrap"] == "ddp":
        return torch.nn.parallel.DistributedDataParallel(model)
    from validation.worker import wrap_model  # FSDP2 per block, as the validation runs do

    class _Spec:
        strategy, precision = "fsdp", "bf16" if bf16 else "fp32"

    spec = _Spec()
    spec.nproc = nproc  # type: ignore[attr-defined]
    return wrap_model(model, spec, torch.device("cpu"))  # type: ignore[arg-type]


def _peak(raw: list, step: str) -> dict[str, Any]:
    """Live tensor bytes over the profiler's allocation records: before `step`, its maximum
    inside `step`, and the innermost operator open at that maximum."""
    a, b = next((r.start_ns(), r.end_ns()) for r in raw if r.name() == step)
    allocs = sorted(
        (r.start_ns(), r.nbytes())
        for r in raw
        if r.name() == "[memory]" and str(r.device_type()).endswith("CPU")
    )
    live, base, peak, at = 0, 0, 0, a
    for t, nbytes in allocs:
        if t < a:
            base = live + nbytes
        live += nbytes
        if a <= t <= b and live > peak:
            peak, at = live, t
    ops = sorted(
        (r for r in raw if r.name() not in ("[memory]", step) and r.start_ns() <= at <= r.end_ns()),
        key=lambda r: r.start_ns(),
    )
    return {"peak_bytes": peak, "base_bytes": base, "peak_op": ops[-1].name() if ops else ""}


def rows(ids: list[str]) -> list[dict[str, Any]]:
    """Measure every setup in `ids`, each in a fresh process (a process group is set up once
    per process), and return the memory rows."""
    import torch

    out = []
    for sid in ids:
        setup = SETUPS[sid]
        got = _run_ranks(sid, int(setup.get("nproc", 1)))
        n = int(setup.get("nproc", 1))
        wrap = {"none": "bare module", "ddp": "DDP", "fsdp": "FSDP2"}[setup["wrap"]]
        wrap += "" if setup["wrap"] == "none" else f", {n} rank{'s' if n > 1 else ''}"
        src = (
            f"measured: python -m validation.memprobe ({platform.machine()}, torch "
            f"{torch.__version__})"
        )
        case = {**setup, **llmcap_case(setup)}
        out.append({
            "id": f"here-{sid}", "group": "measured here", "kind": "measured",
            "source": f"{src}; peak at {got['peak_op']}",
            "what": f"validation GPT '{setup['model']}' {setup['precision']}, {wrap}, step peak",
            "value": float(got["peak_bytes"]) / 1e6, "unit": "MB",
            "case": {**case, "quantity": "peak"},
        })  # fmt: skip
        out.append({
            "id": f"here-{sid}-states", "group": "measured here", "kind": "measured",
            "source": f"{src}; live tensors before the step",
            "what": f"validation GPT '{setup['model']}' {setup['precision']}, {wrap}, "
                    "held between steps",
            "value": float(got["base_bytes"]) / 1e6, "unit": "MB",
            "case": {**case, "quantity": "between steps"},
        })  # fmt: skip
    return out


def _run_ranks(sid: str, nproc: int) -> dict[str, Any]:
    """Run `--one sid` as `nproc` rank processes of one gloo group; the busiest rank's result."""
    env = {**os.environ, "WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(29500 + os.getpid() % 1000)}  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "validation.memprobe", "--one", sid],
            env={**env, "RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(nproc)
    ]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"memprobe {sid}: rank failed: {stderr.strip()[-500:]}")
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return max(outs, key=lambda o: o["peak_bytes"])


def llmcap_case(setup: dict[str, Any]) -> dict[str, Any]:
    """The setup in llmcap's terms (`analysis` may not import `validation`): the model's
    `ModelSpec` fields, the run's `Options` (the validation stack, `mapping.stack_options`;
    a bare module has no DDP buckets) and its layout, non-default fields only."""
    from dataclasses import fields

    from validation.gptconfig import PRESETS
    from validation.mapping import STRATEGY_ZERO_STAGE, model_spec, stack_options

    cfg = PRESETS[setup["model"]]
    ms = model_spec(cfg)
    opts = stack_options()
    model = {f.name: getattr(ms, f.name) for f in fields(ms) if getattr(ms, f.name) != f.default}
    options = {
        f.name: getattr(opts, f.name) for f in fields(opts) if getattr(opts, f.name) != f.default
    }
    options["grad_bucket_copies"] = setup["wrap"] == "ddp"
    zero = STRATEGY_ZERO_STAGE["fsdp" if setup["wrap"] == "fsdp" else "ddp"]
    return {
        "zero": zero, "nproc": int(setup.get("nproc", 1)), "micro_batch": cfg.micro_batch_size,
        "seq_len": cfg.seq_len, "spec": model, "options": options,
    }  # fmt: skip


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v))


def to_toml(rows_: list[dict[str, Any]]) -> str:
    lines = [
        "# Peak tensor memory of the validation GPT's training step, measured on this project's",
        "# machine (CPU, torch profiler allocation records). Regenerate:",
        "#   python -m validation.memprobe --out analysis/data/memory_measured.toml",
        "# Two rows per setup: the step's peak, and the live bytes held between steps (weights,",
        "# Adam moments, DDP buckets; gradients are freed by zero_grad(set_to_none=True)).",
        "",
    ]
    for r in rows_:
        lines.append("[[rows]]")
        for k in ("id", "group", "source", "what", "kind", "value", "unit"):
            lines.append(f"{k} = {_toml_value(r[k])}")
        lines += [f"case = {_toml_value(r['case'])}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m validation.memprobe")
    ap.add_argument("--one", choices=sorted(SETUPS), help=argparse.SUPPRESS)
    ap.add_argument("--setups", nargs="*", choices=sorted(SETUPS), default=list(SETUPS))
    ap.add_argument("--out", help="write the rows as TOML here (default: print them)")
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(SETUPS[args.one])))
        return 0
    text = to_toml(rows(args.setups))
    if args.out:
        from hwprofiles.outputs import write_atomic

        write_atomic(args.out, text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
