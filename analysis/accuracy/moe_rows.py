"""Mixture-of-experts rows of the published-runs table (groups MOE and NVL): NVIDIA NeMo's
Megatron-Bridge pre-training tables (DeepSeek-V3, Qwen3-30B-A3B, Qwen3-235B-A22B on DGX H100,
B200, GB200 NVL72 and GB300 NVL72).

One rule for every row: the model is the preset the `model` column names; tp, pp, dp,
micro-batch, global batch and precision are the table's; ep and vpp come from the row's notes
("ep=64 vpp=2 ..."), etp = 1 (NeMo's MoE recipes). The tables force-balance the tokens among
experts (their footnote), so routing is dropless with no load imbalance (`moe_imbalance` 1).
Recompute is not tabled: none, selective and full are tried, the fastest that fits taken.
Measured step time = global batch x sequence / (tokens/s/GPU x GPUs). Stack: `nemo-2025`.
"""

from __future__ import annotations

import re
from dataclasses import replace

from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig
from simulator.stacks import load_stack

STACK = "nemo-2025"
HARDWARE = {"GB300": "gb300", "GB200": "gb200", "B200": "b200", "H100-SXM": "h100-sxm"}
"""The table's system -> catalogue preset (NVL72 racks for GB200/GB300)."""


def _precision(text: str) -> str:
    """FP8-MX (MXFP8 block scaling) -> mxfp8; FP8-CS / blockwise FP8 -> fp8; else bf16."""
    if "MX" in text:
        return "mxfp8"
    return "fp8" if "FP8" in text.upper() else "bf16"


def moe_case(row: dict[str, str], tokens_per_s_per_gpu: float):
    from analysis.accuracy.rows import Case

    notes = row["notes"]
    ep = int(re.search(r"\bep=(\d+)", notes).group(1))  # type: ignore[union-attr]
    vpp = int(re.search(r"\bvpp=(\d+)", notes).group(1))  # type: ignore[union-attr]
    n, s, gbs = int(row["num_gpus"]), int(row["seq_len"]), int(row["global_batch"])
    tp, pp, mb = int(row["tp"]), int(row["pp"]), int(row["micro_batch"])
    prec = _precision(row["precision"])
    cands = []
    for rc in ("none", "selective", "full"):
        try:
            cands.append(
                ParallelConfig(
                    tp=tp, pp=pp, vpp=vpp, micro_batch_size=mb, global_batch_size=gbs,
                    recompute=rc, precision=prec, zero_stage=1, sequence_parallel=tp > 1,
                    ep=ep, etp=1,
                ).resolve(n)
            )  # fmt: skip
        except ValueError:
            continue
    options = replace(load_stack(STACK).options(), moe_imbalance=1.0)
    return Case(
        row["id"],
        row["id"].split("-")[0],
        row["source"],
        load_model(row["model"]),
        HARDWARE[row["gpu"]],
        {},
        n,
        s,
        cands,
        options,
        gbs * s / (tokens_per_s_per_gpu * n),
        "tokens/s/GPU",
        ["recompute not tabled: fastest that fits", "forced expert balance: imbalance 1"],
        STACK,
    )
