"""Turn rows of the published-runs table into (workload candidates, hardware, measured step time).

Data: `analysis/data/published_runs.csv` (copied with its sources from the project's reference
set; see `published_runs.md`). Each usable group is interpreted by one rule, written once here,
never per row. What a source does not state (micro-batch, interleaving, recompute for the
Megatron 2024 table) is searched over the values the framework offers, and the fastest layout
that fits in memory is taken: these tables were tuned by their authors for throughput.

Measured step time is recovered with the **source's own FLOP convention**:
- N21 (Narayanan et al. 2021): TFLOP/s by eq. (3), which counts the recompute forward:
  step = eq3(B, s, l, h, V) / (X * n).
- MLM24 (Megatron-LM README 2024): model FLOPs (no recompute), as llmcap's MFU numerator.
- MPT (llm-foundry): tokens/s/GPU directly: step = global_batch * seq / (tps * n).
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from analysis.closed_form import Options
from simulator.costmodel.flops import megatron_eq3_flops, model_flops_per_token
from simulator.model import ModelSpec
from simulator.parallel import ParallelConfig, Workload
from simulator.stacks import load_stack


@dataclass
class Case:
    """One published row made predictable."""

    id: str
    group: str
    source: str
    model: ModelSpec
    hardware: str
    hw_overrides: dict[str, Any]
    gpus: int
    seq_len: int
    candidates: list[ParallelConfig]
    options: Options
    measured_step_s: float
    convention: str
    assumptions: list[str] = field(default_factory=list)
    stack: str = ""
    """The training stack (`simulator.stacks`) the source ran."""
    published_layout_fits: bool = False
    """The source's layout ran: predict it even where the memory model says it does not fit
    (the memory check is reported, not used to reject)."""

    def workloads(self) -> list[Workload]:
        out = []
        for p in self.candidates:
            try:
                out.append(Workload(self.model, p, self.seq_len))
            except ValueError:
                continue
        return out


@dataclass
class Skipped:
    id: str
    reason: str


def load_rows() -> list[dict[str, str]]:
    path = resources.files("analysis") / "data" / "published_runs.csv"
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _int(x: str) -> int | None:
    x = (x or "").strip()
    return int(float(x)) if x else None


def _gpt(row: dict[str, str], name: str, untied: bool = False) -> ModelSpec:
    h = int(row["hidden"])
    return ModelSpec(
        name=name,
        hidden_size=h,
        num_hidden_layers=int(row["layers"]),
        num_attention_heads=int(row["heads"]),
        vocab_size=int(row["vocab"]),
        intermediate_size=4 * h,
        max_position_embeddings=int(row["seq_len"]),
        tie_word_embeddings=not untied,
    )


def _layouts(
    gpus: int,
    tp: int,
    pp: int,
    dp: int,
    gbs: int,
    precision: str,
    zero: int,
    mbs: tuple[int, ...],
    recomputes: tuple[str, ...],
    vpps: tuple[int, ...],
    sp: bool,
) -> list[ParallelConfig]:
    out = []
    for mb, rc, vpp in itertools.product(mbs, recomputes, vpps):
        if vpp > 1 and pp == 1:
            continue
        try:
            out.append(
                ParallelConfig(
                    tp=tp,
                    pp=pp,
                    vpp=vpp,
                    dp=dp,
                    micro_batch_size=mb,
                    global_batch_size=gbs,
                    recompute=rc,
                    precision=precision,
                    zero_stage=zero,
                    sequence_parallel=sp and tp > 1,
                ).resolve(gpus)
            )
        except ValueError:
            continue
    return out


N21_STACK = "megatron-2021"
"""Megatron-LM as of 2021: unfused-softmax attention with dropout 0.1 (GPT-3 recipe), the
gradient all-reduce after the backward pass (local DDP, no overlap) of fp16 gradients, and
pipeline p2p not overlapped with compute (Narayanan et al. 2021, Sec. 4): the stack's file."""
N21_OPTIONS = load_stack(N21_STACK).options()

MLM24_STACK = "megatron-core-2024"
MLM24_OPTIONS = replace(load_stack(MLM24_STACK).options(), overlap_tp_comm=True)
"""Megatron-Core 2024 with the README's flags: --overlap-grad-reduce --overlap-param-gather
--tp-comm-overlap (Transformer Engine, flash attention, distributed optimizer = ZeRO-1)."""

MPT_STACK = "llm-foundry-2023"


def case_from_row(row: dict[str, str]) -> Case | Skipped:
    rid = row["id"]
    group = rid.split("-")[0]
    value = row["value"]
    try:
        x = float(value)
    except ValueError:
        return Skipped(rid, f"value {value!r} is not a single number")
    if group == "N21" and row["metric"] == "achieved_tflops_per_gpu":
        m = _gpt(row, row["model"])
        n, s, B = int(row["num_gpus"]), int(row["seq_len"]), int(row["global_batch"])
        tp, pp, dp = int(row["tp"]), int(row["pp"]), int(row["dp"])
        vpps = tuple(v for v in (1, 2, 3, 4, 6, 8) if m.num_hidden_layers % (pp * v) == 0)
        cands = _layouts(n, tp, pp, dp, B, "fp16", 0, (1, 2, 4, 8), ("full",), vpps, False)
        flops = megatron_eq3_flops(B, s, m.num_hidden_layers, m.hidden_size, m.vocab_size)
        return Case(
            rid,
            group,
            row["source"],
            m,
            "a100-80gb",
            {},
            n,
            s,
            cands,
            N21_OPTIONS,
            flops / (x * 1e12 * n),
            "eq. (3), recompute counted",
            ["micro-batch and interleaving (vpp) not in Table 1: fastest that fits"],
            N21_STACK,
        )
    if group == "MLM24" and row["metric"] == "achieved_tflops_per_gpu":
        m = _gpt(row, row["model"], untied=True)
        n, s, B = int(row["num_gpus"]), int(row["seq_len"]), int(row["global_batch"])
        tp, pp, dp = int(row["tp"]), int(row["pp"]), int(row["dp"])
        vpps = tuple(v for v in (1, 2, 3, 4, 6, 8) if m.num_hidden_layers % (pp * v) == 0)
        cands = _layouts(n, tp, pp, dp, B, "bf16", 1, (1, 2, 4), ("none", "selective"), vpps, True)
        step = model_flops_per_token(m, s) * B * s / (x * 1e12 * n)
        return Case(
            rid,
            group,
            row["source"],
            m,
            "h100-sxm",
            {},
            n,
            s,
            cands,
            MLM24_OPTIONS,
            step,
            "model FLOPs (MFU), no recompute",
            ["micro-batch, vpp and recompute (none/selective) not stated: fastest that fits"],
            MLM24_STACK,
        )
    if group == "MPT" and row["metric"] == "tokens_per_sec_per_gpu":
        return _mpt_case(row, x)
    if group in ("L3", "MTNLG", "BLOOM"):
        return _large_run_case(row, x)
    if group == "K22":
        return _k22_case(row, x)
    return Skipped(rid, _skip_reason(row))


def _mpt_case(row: dict[str, str], tps: float) -> Case:
    rid = row["id"]
    m = ModelSpec(
        name=row["model"],
        hidden_size=int(row["hidden"]),
        num_hidden_layers=int(row["layers"]),
        num_attention_heads=int(row["heads"]),
        vocab_size=int(row["vocab"]),
        intermediate_size=4 * int(row["hidden"]),
        max_position_embeddings=int(row["seq_len"]),
    )
    n, s, B = int(row["num_gpus"]), int(row["seq_len"]), int(row["global_batch"])
    mb = int(row["micro_batch"])
    prec = "fp8" if "fp8" in row["precision"] else "bf16"
    pure = "PURE" in row["precision"]
    rc = "full" if row["recompute"].startswith("full") else "none"
    gpu = row["gpu"]
    if gpu.startswith("H100"):
        hw, over = "h100-sxm", {}
    else:
        # "1600 Gbps RoCE node-node (stated for A100 tables)": 8 x 200 Gb/s RoCE per node
        hw = "a100-40gb" if "40GB" in gpu else "a100-80gb"
        over = {"scale_out": "roce-200", "nics_per_node": 8}
    cands = _layouts(n, 1, 1, n, B, prec, 3, (mb,), (rc,), (1,), False)
    # Composer FSDP mixed precision: DEFAULT reduces gradients in fp32, PURE in bf16
    opts = replace(load_stack(MPT_STACK).options(), grad_reduce_bytes=2.0 if pure else 4.0)
    return Case(
        rid,
        "MPT",
        row["source"],
        m,
        hw,
        over,
        n,
        s,
        cands,
        opts,
        B * s / (tps * n),
        "tokens/s/GPU",
        [],
        MPT_STACK,
    )


LARGE_RUNS = {
    # group: (stack, hardware preset, its overrides, precision, ZeRO stage, recompute options)
    "L3": ("megatron-core-2024", "h100-sxm", {"scale_out": "roce-400", "nics_per_node": 8},
           "bf16", 1, ("selective",)),
    "MTNLG": ("megatron-deepspeed-2022", "a100-80gb", {}, "bf16", 1, ("full",)),
    "BLOOM": ("megatron-deepspeed-2022", "a100-80gb",
              {"scale_out": "edr", "nics_per_node": 4}, "bf16", 1, ("full",)),
}  # fmt: skip
"""Llama 3 405B (Meta's own stack: taken as Megatron-Core 2024's mechanisms, RoCE 400G per
GPU), MT-NLG 530B and BLOOM 176B (Megatron-DeepSpeed with ZeRO-1; BLOOM's Omni-Path 100 Gb/s
taken as 4 x 100 Gb/s links per node, priced as EDR)."""


def _large_run_case(row: dict[str, str], x: float) -> Case:
    rid, group = row["id"], row["id"].split("-")[0]
    stack, hw, over, prec, zero, rcs = LARGE_RUNS[group]
    n, s, B = int(row["num_gpus"]), int(row["seq_len"]), int(row["global_batch"])
    tp, pp, dp = int(row["tp"]), int(row["pp"]), int(row["dp"])
    if group == "L3":
        from simulator.models_catalogue import load_model

        m = load_model("llama-3.1-405b")
    else:
        m = _gpt(row, row["model"])
    mbs = (int(row["micro_batch"]),) if row["micro_batch"] else (1, 2)
    vpps = (1,) if group != "L3" else (1, 2, 4, 8)
    # sequence parallelism arrived in 2022 (Korthikanti et al.): Llama 3 only
    cands = _layouts(n, tp, pp, dp, B, prec, zero, mbs, rcs, vpps, group == "L3")
    if row["metric"] == "iteration_time":
        step, conv = x, "iteration time as reported"
    elif group == "BLOOM":
        # Megatron-DeepSpeed counts the recompute forward (as Narayanan et al. eq. (3))
        step = megatron_eq3_flops(B, s, m.num_hidden_layers, m.hidden_size, m.vocab_size) / (
            x * 1e12 * n
        )
        conv = "eq. (3), recompute counted"
    else:
        step = model_flops_per_token(m, s) * B * s / (x * 1e12 * n)
        conv = "model FLOPs (MFU)"
    notes = ["layout as published (it ran, so it is taken to fit); micro-batch / interleaving "
             "where not stated: the fastest; Llama 3's recompute not stated: selective "
             "(Megatron-Core's recipe for large models)"]  # fmt: skip
    case = Case(rid, group, row["source"], m, hw, over, n, s, cands,
                load_stack(stack).options(), step, conv, notes, stack)  # fmt: skip
    case.published_layout_fits = True
    return case


K22_STACK = "megatron-2022"
"""Korthikanti et al. 2022 ran Megatron-LM of that year: the `megatron-2022` stack file is
that paper's mechanisms (unfused attention with dropout, all-reduce after the backward)."""


def _k22_case(row: dict[str, str], step: float) -> Case:
    """Korthikanti et al. 2022 Table 5: the layout is Table 3's, interleaving 3 for 175B and
    530B (Sec. 6), full recompute without sequence parallelism or selective recompute with it
    (the paper's two columns), iteration time as reported."""
    n, s, B = int(row["num_gpus"]), int(row["seq_len"]), int(row["global_batch"])
    tp, pp, dp, mb = (int(row[k]) for k in ("tp", "pp", "dp", "micro_batch"))
    selective = row["recompute"].startswith("selective")
    vpp = 3 if row["model"].startswith(("GPT-3", "MT-NLG")) else 1
    cands = _layouts(n, tp, pp, dp, B, "bf16", 0, (mb,), ("selective" if selective else "full",),
                     (vpp,), selective)  # fmt: skip
    case = Case(row["id"], "K22", row["source"], _gpt(row, row["model"]), "a100-80gb", {}, n, s,
                cands, load_stack(K22_STACK).options(), step, "iteration time as reported",
                ["layout as published (Table 3, interleaving 3 for 175B and 530B)"],
                K22_STACK)  # fmt: skip
    case.published_layout_fits = True
    return case


def _skip_reason(row: dict[str, str]) -> str:
    rid = row["id"]
    if rid.startswith(("NCCL", "DDP")):
        return "collective bandwidth row: see the collective table"
    if rid.startswith(("TXL", "BERT")):
        return "architecture not modelled (Transformer-XL recurrence / BERT encoder, seq unknown)"
    if rid.startswith("MLM20v1"):
        return "layers and hidden size not given"
    if rid.startswith("MLM19"):
        return "FLOP convention of the 2019 blog not stated"
    if rid == "MOE-DSV3":
        return "whole pre-training total on H800 (NVLink 400 GB/s), not in the catalogue"
    if rid.startswith(("MOE", "NVL")):
        return "mixture-of-experts row: compared in its own section, outside the fitted set"
    if rid.startswith(("L2", "EN")):
        return "whole-training totals: layout, cluster and downtime not stated"
    return f"metric {row['metric']!r} is not a step-time quantity"


def cases() -> tuple[list[Case], list[Skipped]]:
    usable: list[Case] = []
    skipped: list[Skipped] = []
    for row in load_rows():
        c = case_from_row(row)
        (usable if isinstance(c, Case) else skipped).append(c)
    return usable, skipped
