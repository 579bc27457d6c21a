"""The framework's host time of the validation model, measured right before its runs.

On a CPU every operator runs on the thread that dispatches it, so eager PyTorch's per-call
cost is part of the step. The calibration measures it on stand-in modules (a per-layer figure
from a bare GPT block, per-tensor and per-unit figures for DDP and FSDP2 from stacks of
Linears), which leave out what they do not build: each `nn.Linear`'s module call and autograd
node (about 40 us per Linear forward + backward in fp32 on the AMD EPYC VM, 2026-12-03, their
GEMM kernels excluded), the loss and the start of the backward pass (about 0.1 ms), FSDP2's
root unit holding the tied embedding, autocast's dispatch in bf16. Summed, the tiny model's
step was predicted 10-17 % too fast on a quiet machine (chain 9, 2026-12-03 06:22 UTC).

So the comparison measures the model itself with its arithmetic taken out, right before its
runs (a calibration's framework figures can be taken in a slow spell of a shared host: on
2026-12-03 one quick calibration priced the AdamW step 1.4x the machine's usual time): the
same `GPT` class, the same layer count and heads, wrapped by the same `worker.wrap_model`
(DDP, or FSDP2 per block plus the root) in a 1-rank gloo group, run as the worker runs a
step (autocast in bf16, forward, backward, `zero_grad(set_to_none=True)`), at widths where
no kernel's arithmetic or bytes count (`HOLLOW_HEAD_DIM`, `HOLLOW_VOCAB`, `HOLLOW_SEQ`).
What remains is host time: dispatch, hooks, autograd bookkeeping, plus the nil-size kernels'
own launch (a double count of about 1-2 us per kernel with the kernel rates, about 0.1-0.2 ms
per step of the tiny model, stated rather than subtracted). The cost model then adds this
figure to the kernels priced at the real sizes from the profile (`HostProfile.model_pass_s`),
in place of the generic per-layer and per-unit terms.

Sampling: the configurations are timed round-robin, `STEPS` steps per sample, `ROUNDS`
rounds; each figure is the median of its samples (a slow spell lands on every configuration).
About 1-3 s for the 2 x 2 configurations of the default matrix.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from hwprofiles.host import HostProfile, model_pass_key
from hwprofiles.profile import HardwareProfile
from simulator.costmodel.framework import model_signature
from validation.gptconfig import GPTConfig
from validation.mapping import model_spec

HOLLOW_HEAD_DIM = 2
"""Width per attention head of the hollow model (hidden = heads x this)."""
HOLLOW_VOCAB, HOLLOW_SEQ = 16, 4
"""Vocabulary and tokens (one sequence) of the hollow model: kernels of a few hundred
elements, whose time is their dispatch."""
ROUNDS, STEPS, WARMUP = 7, 8, 3
"""Sampling choices, not measurements: 7 interleaved rounds (a median over an odd count),
8 steps per sample (a sample of the tiny model's 2-6 ms hollow pass lasts 15-50 ms, long
beside the clock's resolution), 3 warm-up steps (the first calls allocate); about 4 s for
the default 2 strategies x 2 precisions plus 2 optimizer steps on the AMD EPYC VM."""
OPTIMIZER = "optimizer"
"""The key's precision field for the optimizer step (`HostProfile.model_pass_s`)."""


def hollow_config(cfg: GPTConfig) -> GPTConfig:
    """`cfg`'s structure (layers, heads, MLP ratio) at nil widths."""
    ratio = cfg.ffn_size // cfg.hidden_size
    hidden = cfg.num_attention_heads * HOLLOW_HEAD_DIM
    return GPTConfig(
        name=f"{cfg.name}-hollow",
        hidden_size=hidden,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        vocab_size=HOLLOW_VOCAB,
        seq_len=HOLLOW_SEQ,
        micro_batch_size=1,
        intermediate_size=max(1, ratio) * hidden,
    )


def wrapped_step(
    cfg: GPTConfig, strategy: str, precision: str, group: Any = None
) -> Callable[[], None]:
    """A forward + backward + `zero_grad` of `cfg`'s hollow twin wrapped as the worker wraps
    the model, over a 1-rank group (the caller's `group`, else the default group)."""
    import torch

    from validation.gpt import GPT, synthetic_batches
    from validation.spec import RunSpec
    from validation.worker import wrap_model

    hollow = hollow_config(cfg)
    torch.manual_seed(0)
    spec = RunSpec(hollow, strategy, precision, 1)
    model = wrap_model(GPT(hollow), spec, torch.device("cpu"), group)
    x, y = synthetic_batches(hollow, 1, 0)[0]
    bf16 = precision == "bf16"

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(x, y)
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def optimizer_step(cfg: GPTConfig, strategy: str, group: Any = None) -> Callable[[], None]:
    """torch's AdamW step over the hollow model's parameters (plain tensors under DDP,
    DTensors under FSDP2), gradients in place: its host time per step; wrapped over `group`
    as `wrapped_step`."""
    import torch

    from validation.gpt import GPT, synthetic_batches
    from validation.spec import RunSpec
    from validation.worker import LEARNING_RATE, wrap_model

    hollow = hollow_config(cfg)
    torch.manual_seed(0)
    spec = RunSpec(hollow, strategy, "fp32", 1)
    model = wrap_model(GPT(hollow), spec, torch.device("cpu"), group)
    x, y = synthetic_batches(hollow, 1, 0)[0]
    model(x, y).backward()
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    return opt.step


def measure_passes(
    cfg: GPTConfig,
    strategies: Iterable[str],
    precisions: Iterable[str],
    threads: int = 1,
    timer: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Host seconds of one forward + backward of `cfg`'s model per (strategy, precision), and
    of its optimizer step per strategy (precision field `OPTIMIZER`), keyed as
    `HostProfile.model_pass_s` keys them (module docstring)."""
    from hwprofiles.calibration.device import torch_threads
    from hwprofiles.calibration.framework import one_rank_group

    sig = model_signature(model_spec(cfg))
    strategies = list(dict.fromkeys(strategies))
    keys = [(s, p) for s in strategies for p in dict.fromkeys(precisions)]
    keys += [(s, OPTIMIZER) for s in strategies]
    samples: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    with torch_threads(threads), one_rank_group():
        steps = {
            k: optimizer_step(cfg, k[0]) if k[1] == OPTIMIZER else wrapped_step(cfg, *k)
            for k in keys
        }
        for fn in steps.values():
            for _ in range(WARMUP):
                fn()
        for _ in range(ROUNDS):
            for k, fn in steps.items():
                t0 = timer()
                for _ in range(STEPS):
                    fn()
                samples[k].append((timer() - t0) / STEPS)
    return {model_pass_key(sig, s, p): statistics.median(v) for (s, p), v in samples.items()}


def with_passes(hw: HardwareProfile, passes: dict[str, float]) -> HardwareProfile:
    """`hw` whose host holds the measured passes (a profile without a host gets one)."""
    host = hw.host or HostProfile()
    merged = dict(host.model_pass_s) | passes
    return replace(hw, host=replace(host, model_pass_s=merged))


def rows(passes: dict[str, float], generic: dict[str, float]) -> list[dict[str, Any]]:
    """Report rows (the pre-run probe table's shape): measured now vs the generic terms."""
    out = []
    for key, t in passes.items():
        sig, strategy, precision = key.split("|")
        g = generic.get(key)
        step = "AdamW step" if precision == OPTIMIZER else "forward+backward"
        out.append(
            {
                "probe": "framework",
                "dtype": "any" if precision == OPTIMIZER else precision,
                "what": f"{sig} {strategy} {step} host time (hollow model)",
                "key": key,
                "measured_s": t,
                "profile_s": g,
                "speed": None if g is None else g / t if t > 0 else float("inf"),
                "drifted": False,
                "scope": "all runs",
            }
        )
    return out
