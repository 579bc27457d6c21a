"""Memory model against published memory figures (`llmcap accuracy --memory`,
`docs/accuracy.md` "Memory").

Data: `analysis/data/memory_rows.toml`, one row per published figure with its source, unit,
kind (analytic in the publication, or measured on a running system) and the setup in llmcap's
terms. Each group is priced by one rule, written once here:

- "model states" / "bytes per parameter": `memory.state_bytes` for a model of `params`
  parameters (one GPT shape, scaled: states are per parameter) at the row's ZeRO stage, data
  parallel size, precision and training stack (the stack's gradient dtype and optimizer
  copies, `memory.param_state_bytes`).
- "activations": `memory.activation_bytes_per_layer` for the Korthikanti et al. 2022 Table 3
  shapes (16-bit, dropout, unfused attention as in the paper); rows with `pp` price the first
  pipeline stage: its layers times the micro-batches in flight (`in_flight_microbatches`).
- "measured here": rows `llmcap-memprobe` wrote (`validation.memprobe`), priced by the
  closed-form engine for the same model, batch and stack.
"""

from __future__ import annotations

import statistics
from functools import lru_cache
from importlib import resources
from typing import Any

from hwprofiles.inputs import parse_toml
from simulator.costmodel.memory import (
    activation_bytes_per_layer,
    in_flight_microbatches,
    state_bytes,
)
from simulator.model import ModelSpec
from simulator.stacks import load_stack

UNITS = {"GB": 1e9, "bytes/param": 1.0, "bytes": 1.0, "MB": 1e6}
"""Bytes per unit of a row's value."""

KORTHIKANTI_SHAPES = {
    # name: (hidden, heads, layers); Korthikanti et al. 2022 Table 3 (22B, 175B, 530B, 1T)
    "22B": (6144, 64, 48),
    "175B": (12288, 96, 96),
    "530B": (20480, 128, 105),
    "1T": (25600, 160, 128),
}
SEQ_LEN = 2048
"""Korthikanti et al. 2022 train every model at sequence length 2048 (Table 3)."""


MEASURED_NOTE = [
    "*measured here* rows: the validation GPT (`validation/gpt.py`) trained on this project's",
    "CPU (torch AdamW, `zero_grad(set_to_none=True)`, autocast for bf16), live tensor bytes",
    "from torch's allocation records (`torch.profiler`, `profile_memory=True`); llmcap prices",
    "the same model, batch, precision and stack (`validation.mapping.stack_options`) with the",
    "closed-form engine. What is held between steps (fp32 weights, Adam's moments, DDP's",
    "bucket copy of the gradients) agrees to the byte's rounding. Every step peaks in the",
    "backward of torch's unfused cross-entropy (`aten::_log_softmax_backward_data`), which",
    "holds three fp32 logits-sized tensors (saved log-softmax, its gradient, the logits'",
    "gradient; Megatron's vocab-parallel cross-entropy works in place in one), before any",
    "gradient exists (torch frees them between steps; Megatron-Core and DeepSpeed keep a",
    "buffer for the whole run). Both are stack settings (`Options.fused_cross_entropy`,",
    "`Options.persistent_grads`); without them llmcap under-predicted these peaks by 6-11%",
    "(`small` fp32: 135.0 MB against 148.5). They were added after these measurements",
    "showed where the peak falls: they count tensors and fit no constant, but these rows",
    "are not out-of-sample for them. FSDP2 over 2 ranks holds 3-9 MB more between steps",
    "than its sharded states (31.7 MB): the Python-reachable tensors sum to exactly the",
    "sharded states (gc census, 2026-12-03), the rest is inside FSDP2/gloo, varies from run",
    "to run (8.5 MB in one run, 3.2 MB in the run tabled) and is not priced.",
]


@lru_cache(maxsize=1)
def memory_rows() -> list[dict[str, Any]]:
    """The rows of `analysis/data/memory_rows.toml` (and the measured rows, if present)."""
    out: list[dict[str, Any]] = []
    for name in ("memory_rows.toml", "memory_measured.toml"):
        path = resources.files("analysis").joinpath("data", name)
        if not path.is_file():
            continue
        out += parse_toml(path.read_text("utf-8"), "memory rows", name).get("rows", [])
    return out


def _gpt(h: int, a: int, layers: int) -> ModelSpec:
    return ModelSpec(name=f"gpt-h{h}", hidden_size=h, num_hidden_layers=layers,
                     num_attention_heads=a, vocab_size=51200, intermediate_size=4 * h,
                     max_position_embeddings=SEQ_LEN)  # fmt: skip


def _states(case: dict[str, Any]) -> float:
    m = _gpt(4096, 32, 36)  # any GPT shape: states are counted per parameter, then scaled
    opts = load_stack(case["stack"]).options()
    st = state_bytes(m, 1, 1, case["dp"], case["zero"], case["precision"], opts=opts)
    per_param = float(st["weights"] + st["gradients"] + st["optimizer"]) / m.num_params()
    return per_param * float(case["params"])


def _activations(case: dict[str, Any]) -> float:
    h, a, layers = KORTHIKANTI_SHAPES[case["model"]]
    act = float(
        activation_bytes_per_layer(
            _gpt(h, a, layers), 1, SEQ_LEN, tp=case["tp"], sequence_parallel=case["sp"],
            recompute=case["recompute"], attention="naive", dropout=True,
        )
    )  # fmt: skip
    if "pp" not in case:
        return act
    pp, vpp = case["pp"], case.get("vpp", 1)
    # m >= pp micro-batches per step (the paper's runs), L / pp layers on the first stage
    return act * layers / pp * float(in_flight_microbatches(pp, vpp, 4 * pp))


PRICERS = {
    "model states": _states,
    "bytes per parameter": _states,
    "activations": _activations,
}


def predict(row: dict[str, Any]) -> float:
    """llmcap's figure for `row`, in bytes."""
    if row["group"] == "measured here":
        from analysis.accuracy.memory_measured import predict_measured

        return predict_measured(row["case"])
    return PRICERS[row["group"]](row["case"])


def memory_comparisons() -> list[dict[str, Any]]:
    """Every row with llmcap's figure in the row's unit and the error `llmcap / published - 1`."""
    out = []
    for r in memory_rows():
        scale = UNITS[r["unit"]]
        ours = predict(r) / scale
        out.append({
            "id": r["id"], "group": r["group"], "source": r["source"], "what": r["what"],
            "kind": r["kind"], "unit": r["unit"], "published": float(r["value"]),
            "llmcap": ours, "error": ours / float(r["value"]) - 1,
        })  # fmt: skip
    return out


def memory_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and worst |error| per group."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(abs(r["error"]))
    return {
        g: {"rows": len(e), "median_abs_error": statistics.median(e), "worst_abs_error": max(e)}
        for g, e in groups.items()
    }


def memory_markdown(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Memory: the model against published and measured memory figures",
        "",
        "Reproduce: `llmcap accuracy --memory` (add `--json` for the rows). Data:",
        "`analysis/data/memory_rows.toml` (published, a source on every row) and",
        "`analysis/data/memory_measured.toml` (measured on this project's machine by",
        "`python -m validation.memprobe`). *analytic* rows are derived from tensor shapes in",
        "their publication (no profiler): they check llmcap's bookkeeping against that",
        "publication's conventions. *measured* rows are peak allocator readings. Each row is",
        "priced with its training stack's memory conventions (`llmcap stacks`): DeepSpeed",
        "keeps 16-bit gradients, Megatron-Core an fp32 gradient buffer, Megatron's 2020-2021",
        "fp16 optimizer an extra fp32 gradient copy, torch DDP a second gradient copy in its",
        "buckets, torch autocast fp32 weights plus a cached 16-bit copy, Transformer Engine",
        "two cached fp8 copies of each weight, torch an unfused cross-entropy and gradients",
        "freed between steps. Not priced: the allocator's fragmentation and the CUDA context",
        "and NCCL buffers (no source gives a figure to use; the planner keeps a 10% margin,",
        "`usable_memory_fraction`, a planning choice, not a measurement). Over-memory layouts",
        "are still predicted (`fits_in_memory: false` and a warning line, exit 0;",
        "`--require-fit` makes it an error); published layouts that ran are predicted as they",
        "ran.",
        "",
        "| group | id | what | kind | published | llmcap | unit | difference | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['group']} | {r['id']} | {r['what']} | {r['kind']} | {r['published']:.4g} | "
            f"{r['llmcap']:.4g} | {r['unit']} | {r['error']:+.1%} | {r['source']} |"
        )
    lines += ["", *MEASURED_NOTE, ""]
    for g, v in memory_summary(rows).items():
        lines.append(
            f"- {g}: {v['rows']} rows, median |difference| {v['median_abs_error']:.1%}, "
            f"worst {v['worst_abs_error']:.1%}"
        )
    lines.append("")
    return lines
