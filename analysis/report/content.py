"""What a plan report says, as a list of blocks that the markdown and HTML renderers both draw.

Blocks are plain tuples so the two renderers cannot drift apart:
``("h", level, text)``, ``("p", text)``, ``("list", [items])``,
``("table", headers, rows)`` and ``("figure", name, caption)``.
Numbers are formatted here (the report edge): days, USD, MWh, tonnes, GiB.
"""

from __future__ import annotations

from typing import Any

from analysis.labels import label
from analysis.planner.costs import DEFAULT_GRID_G_PER_KWH, SECONDS_PER_DAY
from analysis.planner.result import BREAKDOWN_KEYS, Candidate, PlanResult
from analysis.report.answer import facts, rule_text, smallest_lines, usd
from analysis.report.figures import FIGURES, at_gpus, reference_gpus
from analysis.report.whatchange import what_would_change

Block = tuple[Any, ...]


def _n(x: float | None, fmt: str = "{:,.1f}") -> str:
    return "—" if x is None else fmt.format(x)


def _count(x: float) -> str:
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if x >= scale:
            return f"{x / scale:g}{unit}"
    return f"{x:g}"


def inputs_blocks(result: PlanResult, date: str) -> list[Block]:
    q = result.request
    b = q.batch
    rows = [
        ("model", f"{q.model.name} ({q.model.num_params() / 1e9:.1f}B parameters)"),
        ("tokens to train", _count(q.tokens)),
        ("hardware", ", ".join(h.name for h in q.hardware)),
        ("GPU counts", ", ".join(str(g) for g in q.gpus)),
        ("precisions", ", ".join(q.precisions)),
        ("sequence length", f"{q.sequence_length:,} tokens ({q.sequence_length_source})"),
        ("global batch", f"{b.target_sequences} sequences ({b.source})"),
        ("deadline", "—" if q.deadline_s is None else f"{q.deadline_s / SECONDS_PER_DAY:g} days"),
        ("budget", "—" if q.budget_usd is None else f"${q.budget_usd:,.0f}"),
        (
            "grid carbon intensity",
            f"{q.grid_g_per_kwh:g} gCO2/kWh"
            + (
                " (default: world average 2023, Ember)"
                if q.grid_g_per_kwh == DEFAULT_GRID_G_PER_KWH
                else ""
            ),
        ),
        ("PUE", f"{q.pue:g}"),
        ("usable memory", f"{q.usable_memory_fraction:.0%} of each device"),
        (
            "layouts searched",
            f"{result.layouts_evaluated:,} ({result.layouts_priced:,} priced in full; the "
            "others' floor could not beat the best)",
        ),
        ("date", date),
    ]
    return [("h", 2, "Question"), ("table", ["input", "value"], rows)]


def answer_blocks(result: PlanResult) -> list[Block]:
    q = result.request
    out: list[Block] = [("h", 2, "Answer")]
    if result.recommended is not None:
        c = result.candidates[result.recommended]
        out.append(("p", f"**Recommended ({rule_text(result)}): {c.label}**"))
        out.append(
            (
                "table",
                ["recommended", c.label],
                [(k, f"`{v}`" if k == "layout" else v) for k, v in facts(result, c)],
            )
        )
    elif result.closest is not None:
        c = result.candidates[result.closest]
        out.append(
            (
                "p",
                f"No candidate meets the deadline/budget; closest: {c.label} "
                f"({_n(c.cost.days)} days, {usd(c.money)}).",  # type: ignore[union-attr]
            )
        )
    else:
        out.append(
            (
                "p",
                "No deadline or budget given: the Pareto front below is the answer "
                "(give --deadline or --budget for a single recommendation). "
                + result.price_note
                + ".",
            )
        )
    if result.smallest:
        out.append(("h", 3, f"Smallest cluster meeting {q.deadline_s / 86400:g} days"))  # type: ignore[operator]
        out.append(
            (
                "p",
                "Searched over whole nodes (any count, not only powers of two): the fewest "
                "GPUs of each hardware and precision whose best layout meets the deadline.",
            )
        )
        out.append(("table", ["hardware", "answer"], smallest_lines(result)))
    front = [result.candidates[i] for i in result.ranking][:8]
    if front:
        owning = q.ownership is not None
        order = (
            "meeting the deadline, cheapest first"
            if q.deadline_s is not None
            else ("within the budget, fastest first" if q.budget_usd else "the Pareto front")
        )
        out.append(("h", 3, f"Ranking ({order})"))
        out.append(
            (
                "table",
                [
                    "rank",
                    "candidate",
                    "layout",
                    "days",
                    "own" if owning else "rent",
                    "$/M tokens",
                    "MWh",
                ],
                [
                    (
                        str(k + 1),
                        c.label,
                        f"`{c.layout_text}`",
                        _n(c.cost.days),  # type: ignore[union-attr]
                        usd(c.money),
                        usd(c.usd_per_mtok),
                        _n(c.cost.energy_mwh),  # type: ignore[union-attr]
                    )
                    for k, c in enumerate(front)
                ],
            )
        )
    return out


def change_blocks(result: PlanResult) -> list[Block]:
    """What would change the answer (price class, utilisation, deadline)."""
    return [
        ("h", 2, "What would change the answer"),
        (
            "p",
            "The same candidates re-ranked under other assumptions (no new search: a "
            "candidate's step does not depend on prices or deadlines).",
        ),
        ("list", what_would_change(result)),
    ]


def recheck_blocks(result: PlanResult) -> list[Block]:
    """The SimPy engine's step for the re-checked candidates, beside the closed form."""
    ranked = [result.candidates[i] for i in result.ranking]
    done = [c for c in ranked if c.des_step_time_s is not None]
    out: list[Block] = [
        ("h", 2, "Re-check with the SimPy engine"),
        ("p", result.recheck_note + "."),
    ]
    if not done:
        return out
    q = result.request
    rows = []
    for c in done:
        des_days = c.des_time_to_train_s() / SECONDS_PER_DAY  # type: ignore[operator]
        meets = "—"
        if q.deadline_s is not None:
            meets = "yes" if des_days * SECONDS_PER_DAY <= q.deadline_s else "**no**"
        rows.append(
            (
                c.label,
                f"`{c.layout_text}`",
                _n(c.step.step_time_s, "{:.2f}"),  # type: ignore[union-attr]
                _n(c.des_step_time_s, "{:.2f}"),
                f"{c.des_ratio:.2f}",
                _n(c.cost.days),  # type: ignore[union-attr]
                _n(des_days),
                meets,
            )
        )
    heads = [
        "candidate",
        "layout",
        "closed-form step (s)",
        "DES step (s)",
        "DES / closed form",
        "days (closed form)",
        "days (DES)",
        "meets deadline (DES)",
    ]
    out.append(("table", heads, rows))
    return out


def _cand_row(c: Candidate, owning: bool = False) -> tuple[str, ...]:
    s, t = c.step, c.cost
    own = (usd(c.own.capex_usd), usd(c.own.run_usd)) if c.own else ("—", "—")
    return (
        c.label,
        f"`{c.layout_text}`",
        _n(s.step_time_s, "{:.2f}"),
        f"{s.mfu:.1%}",
        _n(s.memory_per_gpu_bytes / 2**30),  # type: ignore[union-attr]
        _n(t.days),
        _n(t.gpu_hours, "{:,.0f}"),
        usd(t.cost_usd),  # type: ignore[union-attr]
        *(own if owning else ()),
        _n(t.energy_mwh),
        _n(t.co2_t),
        "yes" if c.on_pareto else "",  # type: ignore[union-attr]
        _n(c.des_step_time_s, "{:.2f}"),
    )


def _drop_empty(heads: list[str], rows: list[tuple[str, ...]], empty=("—", "0.0%", "")):
    """Leave out the columns that say nothing in every row (never the first)."""
    keep = [0] + [i for i in range(1, len(heads)) if any(r[i] not in empty for r in rows)]
    return [heads[i] for i in keep], [tuple(r[i] for i in keep) for r in rows]


def candidates_blocks(result: PlanResult) -> list[Block]:
    heads = [
        "candidate",
        "best layout",
        "step (s)",
        "MFU",
        "GiB/GPU",
        "days",
        "GPU-hours",
        "rent",
        *(("capex", "own (this run)") if result.request.ownership is not None else ()),
        "MWh",
        "t CO2",
        "Pareto",
        "DES step (s)",
    ]
    out: list[Block] = [
        ("h", 2, "Candidates"),
        (
            "p",
            "Best layout of every feasible (hardware, GPU count, precision), closed form. "
            "MFU counts model FLOPs without recompute over the dense peak of the precision.",
        ),
        (
            "table",
            *_drop_empty(
                heads,
                [_cand_row(c, result.request.ownership is not None) for c in result.feasible],
            ),
        ),
    ]
    bad = [c for c in result.candidates if not c.feasible]
    if bad:
        out += [
            ("h", 3, "Without a feasible layout"),
            ("table", ["candidate", "why"], [(c.label, c.search.reason or "") for c in bad]),
        ]
    return out


def figure_blocks(result: PlanResult) -> list[Block]:
    out: list[Block] = [("h", 2, "Figures")]
    for name, (_, caption) in FIGURES.items():
        out.append(("figure", name, caption))
        if name == "breakdown":
            out.append(_breakdown_table(result))
    return out


def _breakdown_table(result: PlanResult) -> Block:
    cands = at_gpus(result, reference_gpus(result))
    rows = [
        (
            c.label,
            *(
                f"{c.step.breakdown.get(k, 0.0) / c.step.step_time_s:.1%}"  # type: ignore[union-attr]
                for k in BREAKDOWN_KEYS
            ),
        )
        for c in cands
    ]
    return ("table", *_drop_empty(["candidate", *(label(k) for k in BREAKDOWN_KEYS)], rows))


def seed_blocks(result: PlanResult) -> list[Block]:
    """The seed formulas beside llmcap for the ranked (or reference) candidates."""
    picks = [result.candidates[i] for i in result.ranking[:6]] or at_gpus(
        result, reference_gpus(result)
    )
    rows = []
    for c in picks:
        d = c.step.document  # type: ignore[union-attr]
        seed_t = c.seed_time_to_train_s()
        lit, intended = d.get("energy_mixed_literal_j"), d.get("energy_mixed_intended_j")
        e_ratio = "—"
        if lit is not None:
            e_ratio = (
                f"{lit / d['E_fp32_j']:.2f} / {intended / d['E_fp32_j']:.2f} / "
                f"{d['energy_llmcap_j'] / d['E_fp32_j']:.2f}"
            )
        rows.append(
            (
                c.label,
                f"{d['speedup_m_times_k']:,.0f}",
                f"{d['speedup_llmcap']:,.1f}",
                _n(seed_t / SECONDS_PER_DAY if seed_t else None),
                _n(c.cost.days),
                e_ratio,
            )
        )  # type: ignore[union-attr]
    heads = [
        "candidate",
        "seed speed-up m×k",
        "llmcap speed-up",
        "seed days",
        "llmcap days",
        "energy vs fp32: E×P/L / E×L/P / llmcap",
    ]
    return [
        ("h", 2, "What the seed formulas would have predicted"),
        (
            "p",
            "The seed article's linear speed-up C_accel = m × k × C counts every GPU as a "
            "perfect multiplier; llmcap's speed-up is the ideal single-GPU step time of the same "
            "global batch divided by the predicted step time (communication, bubbles, efficiency "
            "loss included). Its mixed-precision energy E_mixed = E × P/L, read literally, "
            "multiplies the fp32 energy; the intended reading is E × L/P.",
        ),
        ("table", heads, rows),
    ]


def provenance_blocks(result: PlanResult) -> list[Block]:
    q = result.request
    items = []
    for hw in q.hardware:
        pv = hw.provenance
        if pv.kind == "calibrated":
            measured = ", ".join(pv.measured) or "see the profile"
            items.append(
                f"{hw.name}: **calibrated** profile ({pv.date}); measured: {measured}; "
                "the rest datasheet or modelled"
            )
        else:
            items.append(
                f"{hw.name}: **datasheet** profile (catalogue revised {pv.date}): "
                "peaks, memory, TDP from datasheets; efficiencies and idle power "
                "modelled; nothing measured on this machine"
            )
    prices = {}
    for c in result.candidates:
        prices[c.hardware] = (c.price.usd_per_gpu_hour, c.price.source)
    for hw, (rate, src) in prices.items():
        items.append(f"price {hw}: {_n(rate, '${:.2f}')}/GPU-hour — {src}")
    owned = {c.hardware: c.own for c in result.candidates if c.own is not None}
    for hw, o in owned.items():
        items.append(f"server {hw}: {o.server_source}")
        items.append(f"network {hw}: {o.network_source}")
    if q.ownership is not None:
        names = {
            "years": "depreciation (years)",
            "utilisation": "utilisation",
            "usd_per_kwh": "electricity (USD/kWh)",
            "pue": "PUE",
            "installation_fraction": "installation (share of hardware)",
            "maintenance_fraction": "maintenance (share of hardware per year)",
            "storage_fraction": "storage (share of servers)",
        }
        for k, v in q.ownership.sources.items():
            items.append(f"{names.get(k, k)} = {getattr(q.ownership, k):g}: {v}")
    items += [
        "modelled, not measured: the step structure (1F1B, bubbles, overlap), communication "
        "(alpha-beta over the profile's links), memory (Korthikanti et al. 2022 accounting) "
        "and power states; the SimPy re-check models contention the closed form ignores",
        "days are the expected wall clock with failures, checkpoints and restarts (Llama 3 "
        "interruption rates per component, optimal checkpoint interval; docs/wholerun.md), "
        "so GPU-hours and cost include the downtime; energy is the whole run's IT energy "
        "(node wall power: GPU boards below TDP, CPUs, DRAM, NICs, NVSwitch, fans; plus network "
        "switches and optics) times PUE; rent is rental only; the owner's power bill counts "
        "whole nodes, switches and optics (power.toml)",
        *result.notes,
    ]
    return [("h", 2, "Where the numbers come from"), ("list", items)]


def build(result: PlanResult, date: str, files: dict[str, str] | None = None) -> list[Block]:
    """Every block of the report, in order."""
    q = result.request
    title = f"llmcap plan: {q.model.name} on {_count(q.tokens)} tokens"
    blocks: list[Block] = [("h", 1, title)]
    blocks += inputs_blocks(result, date)
    blocks += answer_blocks(result)
    blocks += change_blocks(result)
    blocks += recheck_blocks(result)
    blocks += candidates_blocks(result)
    blocks += figure_blocks(result)
    blocks += seed_blocks(result)
    blocks += provenance_blocks(result)
    if files:
        blocks += [("h", 2, "Files"), ("list", [f"`{k}`: {v}" for k, v in files.items()])]
    return blocks
