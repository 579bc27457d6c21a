"""The recommendation as label/value lines, shared by the terminal, markdown and HTML reports,
so the three say the same thing: time, money (own and rent), break-even, the prices used and
the caveat, all next to the candidate they are about."""

from __future__ import annotations

import math

from analysis.planner.result import Candidate, PlanResult


def usd(x: float | None) -> str:
    """$1.42M, $312k, $950, $0.33 (report edge)."""
    if x is None or not math.isfinite(x):
        return "—"
    for scale, unit, digits in ((1e9, "B", 2), (1e6, "M", 2), (1e3, "k", 0)):
        if abs(x) >= scale:
            return f"${x / scale:,.{digits}f}{unit}"
    return f"${x:,.2f}" if abs(x) < 100 else f"${x:,.0f}"


def rule_text(result: PlanResult) -> str:
    q = result.request
    what = "to own" if q.ownership is not None else "to rent"
    if q.deadline_s is not None:
        return f"the cheapest {what} that meets the deadline"
    return f"the fastest within the budget ({what})"


def caveat(result: PlanResult) -> str:
    q = result.request
    cls = q.price_class or "mixed"
    text = (
        f"rental prices are public {cls} list prices; one class is used for every GPU so "
        "that like is compared with like, but they move by tens of percent a year and "
        "volume quotes differ: pass your quotes with --prices before signing"
    )
    if q.ownership is not None:
        text += (
            "; server and network prices are public estimates (data/ownership.toml), "
            "some of them assumptions: replace them with quotes (--ownership)"
        )
    return text


def facts(result: PlanResult, c: Candidate) -> list[tuple[str, str]]:
    """Label/value lines about one candidate (the recommendation)."""
    q = result.request
    t = c.cost
    assert t is not None and c.step is not None
    out = [
        ("layout", c.layout_text),
        (
            "time",
            f"{t.days:,.1f} days"
            + (f" (deadline {q.deadline_s / 86400:g})" if q.deadline_s is not None else ""),
        ),
        ("energy", f"{t.energy_mwh:,.1f} MWh, {t.co2_t:,.1f} t CO2, MFU {c.step.mfu:.1%}"),
    ]
    if c.own is not None:
        o = c.own
        p = q.ownership
        out += [
            (
                "capex",
                f"{usd(o.capex_usd)} for {o.nodes} nodes: servers {usd(o.servers_usd)}, "
                f"network {usd(o.network_usd)} ({o.fabric_tiers}-tier fat-tree), storage "
                f"{usd(o.storage_usd)}, installation {usd(o.installation_usd)}",
            ),
            (
                "opex",
                f"{usd(o.fixed_usd_per_year - o.capex_usd / p.years)}/year maintenance; "  # type: ignore[union-attr]
                f"power {o.power_w / 1e6:,.2f} MW at PUE {p.pue:g}, "  # type: ignore[union-attr]
                f"${p.usd_per_kwh:g}/kWh",  # type: ignore[union-attr]
            ),
            (
                "own",
                f"{usd(o.run_usd)} for this run ({usd(o.run_fixed_usd)} of depreciation and "
                f"maintenance over {p.years:g} years at {p.utilisation:.0%} utilisation + "  # type: ignore[union-attr]
                f"{usd(o.run_power_usd)} power); {usd(c.usd_per_mtok)} per M tokens",
            ),
        ]
    rent = t.cost_usd
    if rent is not None:
        out.append(
            (
                "rent",
                f"{usd(rent)} ({usd(rent / t.tokens * 1e6)} per M tokens) at "
                f"${c.price.usd_per_gpu_hour:,.2f}/GPU-h, {c.price.price_class or 'unclassed'}"
                f"{', ' + c.price.provider if c.price.provider else ''}"
                f"{', ' + c.price.date if c.price.date else ''}",
            )
        )
    else:
        out.append(("rent", "no rental price in this class"))
    if c.own is not None and rent is not None:
        be = c.own.break_even_utilisation
        if be is None or math.isinf(be) or be > 1:
            line = "renting is cheaper at any utilisation"
        else:
            line = f"owning is cheaper above {be:.0%} utilisation"
            if c.own.payback_years is not None:
                line += (
                    f"; at {q.ownership.utilisation:.0%} the purchase pays back in "  # type: ignore[union-attr]
                    f"{c.own.payback_years:.1f} years"
                )
        out.append(("break-even", line))
    out.append(("prices", result.price_note))
    out.append(("caveat", caveat(result)))
    return out


def smallest_lines(result: PlanResult) -> list[tuple[str, str]]:
    """(hardware precision, answer) for the smallest cluster meeting the deadline."""
    rows = []
    for s in result.smallest:
        if s.gpus is None:
            rows.append((f"{s.hardware} {s.precision}", f"none up to {s.max_gpus:,} GPUs meets it"))
        else:
            rows.append((f"{s.hardware} {s.precision}", f"{s.gpus:,} GPUs, {s.days:,.1f} days"))
    return rows
