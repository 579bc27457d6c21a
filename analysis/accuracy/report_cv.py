"""Markdown sections of `docs/accuracy.md` that lead it: out-of-sample (leave-one-source-out)
step-time accuracy, and the component checks (GEMM, attention, collectives)."""

from __future__ import annotations

from typing import Any


def _group_table(title: str, groups: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"| {title} | rows | median abs error | within 10% | worst | signed median |",
        "|---|---|---|---|---|---|",
    ]
    for g, v in groups.items():
        lines.append(
            f"| {g} | {v['rows']} | {v['median_abs_error']:.1%} | {v['within_10pct']} | "
            f"{v['worst_abs_error']:.1%} ({v['worst_row']}) | {v['signed_median_error']:+.1%} |"
        )
    return lines


def crossval_markdown(cv: dict[str, Any]) -> list[str]:
    s = cv["summary"]
    fits = ", ".join(f"without {k}: {v:.3g}" for k, v in cv["fits_without_source"].items())
    lines = [
        "## Out of sample: leave-one-source-out (the headline)",
        "",
        "Reproduce: `llmcap accuracy --cross-validate`. Every row is predicted with the one",
        "fitted constant (the sustained fraction of the isolated-kernel maxima) refitted on the",
        "*other* sources only; kernels, links and stacks come from component data. "
        f"Refits: {fits}; all sources together: {cv['fit_on_all_sources']:.3g} (the",
        f"catalogue's value is {cv['catalogue_sustained']:.3g}).",
        "",
        f"- rows: **{s['rows']}**",
        f"- out-of-sample median absolute error: **{s['median_abs_error']:.1%}**",
        f"- within 10%: **{s['within_10pct']} of {s['rows']}**",
        f"- worst: **{s['worst_abs_error']:.1%}** ({s['worst_row']})",
        f"- signed median: {s['signed_median_error']:+.1%} (negative = llmcap predicts faster)",
    ]
    lines += _group_table("source", cv["by_source"])
    lines += _group_table("hardware", cv["by_hardware"])
    lines += _group_table("stack", cv["by_stack"])
    lines += _group_table("hardware x stack", cv["by_hardware_stack"])
    lines += [
        "",
        f"{len(cv['by_source'])} sources, {len(cv['by_hardware'])} hardware profiles and "
        f"{len(cv['by_stack'])} stacks are visible here; groups of a few rows say little on",
        "their own.",
        "",
        "Known misses (mechanisms, not fitted away): the MT-NLG 530B production run",
        "(Megatron-DeepSpeed, full recompute, no sequence parallelism) is predicted 15-20%",
        "too fast, while the same model and layout under Megatron-LM 2022 (K22-9: selective",
        "recompute, sequence parallelism) is predicted within a few percent, so the production",
        "stack pays for something its stack file does not price (DeepSpeed's pipeline engine,",
        "its gradient path). Deep pipelines with many micro-batches (K22, GPT 1T on PP 64,",
        "512 micro-batches) are predicted too slow: the measured step equals llmcap's compute",
        "alone, so the 1F1B bubble of (p - 1) / m or the compute itself is over-priced there.",
        "MosaicML's H100 FSDP rows at 8 GPUs are predicted too fast (to about -25%).",
        "",
    ]
    return lines


def components_markdown(comp: dict[str, Any]) -> list[str]:
    med = comp["median_abs_error_by_group"]
    lines = [
        "## Components: kernels and collectives against their published measurements",
        "",
        "Reproduce: `llmcap accuracy --components`. Kernel rows are isolated-kernel figures, so",
        "they are compared with the catalogue's isolated-kernel model (before the sustained",
        "fraction a training step pays). Median absolute error per group: "
        + ", ".join(f"{g} {v:.1%}" for g, v in med.items())
        + ". GEMM: the `gemm-max` rows are the catalogue's own defining maxima (in-sample by",
        "construction); the `gemm` rows are shape-resolved published measurements (DeepGEMM's",
        "FP8 table on H800 = H100 SXM compute) that set no constant: llmcap prices each from",
        "its (M, N, K) with tile and wave quantisation on the device's SMs, split-K for few",
        "tiles, the operand roofline and the output write (`simulator/costmodel/gemm_shape.py`,",
        "`hwprofiles/data/gemm_tiles.toml`). Collectives",
        "(`analysis/data/collective_rows.csv`, each row with its source) are priced by the",
        "function both engines use (`group_collective_time`): NCCL's fastest algorithm (ring,",
        "tree, NVLink SHARP inside H100/H200/B200 nodes, NVLS-tree across them) and protocol",
        "(LL, LL128, Simple) with the latencies of NCCL's own tuning model (`simulator/costmodel/",
        "nccl.py`, `nvls.py`, NCCL 2.27.7 tuning.cc), plus each benchmark harness's host",
        "overhead per call, taken from that harness's smallest message (not scored). No",
        "constant of the collective model comes from these rows, so every source is held out",
        "(model, sources, what stays wrong and the effect on the end-to-end figures:",
        "`docs/collectives.md`). Per source:",
        "",
        "| source | rows | median abs error | worst |",
        "|---|---|---|---|",
        *(
            f"| {s} | {v['rows']} | {v['median']:.1%} | {v['worst']:.1%} |"
            for s, v in comp.get("collective_by_source", {}).items()
        ),
        "",
        "and per message size (nccl-tests size; 8-256 MiB is where the measured bandwidth is",
        "still ramping towards its plateau and the model, which reaches it sooner, is too fast):",
        "",
        "| size | rows | median abs error | worst |",
        "|---|---|---|---|",
        *(
            f"| {s} | {v['rows']} | {v['median']:.1%} | {v['worst']:.1%} |"
            for s, v in comp.get("collective_by_size", {}).items()
        ),
        "",
    ]
    lines += [
        "| group | id | what | measured | llmcap | error | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in comp["rows"]:
        lines.append(
            f"| {r['group']} | {r['id']} | {r['what']} | {r['measured']:,.1f} | "
            f"{r['predicted']:,.1f} | {r['error']:+.1%} | {r['source'].split(' (')[0]} |"
        )
    lines.append("")
    return lines
