"""Mixture-of-experts rows of the published-runs table (groups MOE and NVL): NVIDIA NeMo's
Megatron-Bridge pre-training tables (DeepSeek-V3, Qwen3-30B-A3B, Qwen3-235B-A22B on DGX H100,
B200, GB200 NVL72 and GB300 NVL72).

One rule for every row: the model is the preset the `model` column names; tp, pp, dp,
micro-batch, global batch and precision are the table's; ep and vpp come from the row's notes
("ep=64 vpp=2 ..."), etp = 1 (NeMo's MoE recipes). The tables force-balance the tokens among
experts (their footnote), so routing is dropless with no load imbalance (`moe_imbalance` 1).
Recompute is not tabled: none, selective and full are tried, the fastest that fits taken.
Measured step time = global batch x sequence / (tokens/s/GPU x GPUs). Stack: `nemo-2025`.

These rows are compared in their own section of docs/accuracy.md and are not part of the
set the catalogue's sustained fraction is fitted to (`analysis.accuracy.rows` skips them):
the mixture-of-experts model is new and its errors are reported, not tuned away.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import replace
from typing import Any

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


def moe_comparisons() -> dict[str, Any]:
    """Predicted vs measured step time of every MOE / NVL row: rows, skips, group medians."""
    from analysis.accuracy.rows import Skipped, load_rows
    from analysis.accuracy.run import predict_case

    rows, skipped = [], []
    for row in load_rows():
        group = row["id"].split("-")[0]
        if group not in ("MOE", "NVL") or row["metric"] != "tokens_per_sec_per_gpu":
            continue
        res = predict_case(moe_case(row, float(row["value"])))
        if isinstance(res, Skipped):
            skipped.append({"id": res.id, "reason": res.reason})
            continue
        rows.append(
            {"id": res.id, "group": res.group, "model": res.model, "hardware": res.hardware,
             "gpus": res.gpus, "layout": res.layout, "measured_step_s": res.measured_step_s,
             "predicted_step_s": res.predicted_step_s, "error": res.error,
             "mfu_predicted": res.mfu_predicted}
        )  # fmt: skip
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(abs(r["error"]))
    return {
        "rows": rows,
        "skipped": skipped,
        "median_abs_error_by_group": {g: statistics.median(v) for g, v in groups.items()},
    }


def moe_markdown(moe: dict[str, Any]) -> list[str]:
    """The section of docs/accuracy.md for the MOE (H100/B200) and NVL (GB200/GB300) rows."""
    med = moe["median_abs_error_by_group"]
    lines = [
        "",
        "## Mixture-of-experts (MOE) and GB200/GB300 NVL72 (NVL)",
        "",
        "NVIDIA NeMo Megatron-Bridge pre-training tables (25.09, 25.11): DeepSeek-V3,",
        "Qwen3-30B-A3B and Qwen3-235B-A22B with expert parallelism on DGX H100 and B200 (group",
        "MOE) and GB200/GB300 NVL72 racks (group NVL); tokens forced balanced among experts, as",
        "the tables state. Layout as tabled (ep and vpp from the row's notes, etp 1), recompute",
        "the fastest that fits; stack `nemo-2025`. These rows are outside the fitted set: the",
        "errors are the MoE model's as built, not tuned. "
        + ", ".join(f"Median absolute error {g}: {v:.1%}" for g, v in sorted(med.items()))
        + ".",
        "",
        "| id | model | GPUs | hardware | layout (tp/pp/vpp/dp/ep/mb, rc) | measured s | "
        "predicted s | error | predicted MFU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rc = ("none", "selective", "full")
    for r in moe["rows"]:
        lay = r["layout"]
        lines.append(
            f"| {r['id']} | {r['model']} | {r['gpus']} | {r['hardware']} | "
            f"{lay['tp']}/{lay['pp']}/{lay['vpp']}/{lay['dp']}/{lay['ep']}/{lay['mb']}, "
            f"{rc[lay['recompute']]} | {r['measured_step_s']:.3f} | {r['predicted_step_s']:.3f} "
            f"| {r['error']:+.1%} | {r['mfu_predicted']:.1%} |"
        )
    for sk in moe["skipped"]:
        lines.append(f"| {sk['id']} | not compared: {sk['reason']} | | | | | | | |")
    lines += [
        "",
        "What the errors say: on one node or one NVL72 rack (NVL, most MOE rows) llmcap is",
        "within about 10-30%, mostly too fast; DeepSeek-V3 on 1,024 H100 (MOE-5, EP 64 over 8",
        "nodes) is predicted far too slow because its all-to-alls cross InfiniBand fully exposed,",
        "while NeMo hides them behind another micro-batch's compute (1F1B all-to-all overlap,",
        "DeepEP), which llmcap does not model beyond the shared-expert overlap.",
    ]
    return lines
