"""Matplotlib figures of a plan, returned as `Figure`s (no pyplot state) or PNG bytes.

Units are converted here, at the edge: days, US dollars, MWh. Each function takes a
`PlanResult` (or plain rows) and returns one figure; `png_bytes` renders it reproducibly
(Agg, fixed DPI, no timestamp or software metadata), so the same plan gives the same bytes.
Figures are built with `matplotlib.figure.Figure`, not pyplot: nothing global is touched, no
backend is forced, and Jupyter shows a returned figure inline.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from analysis.labels import label
from analysis.planner.costs import SECONDS_PER_DAY
from analysis.planner.result import BREAKDOWN_KEYS, Candidate, PlanResult

DPI = 110
MARKERS = {
    "fp32": "s",
    "tf32": "D",
    "fp16": "^",
    "bf16": "o",
    "fp8": "v",
    "mxfp8": "<",
    "nvfp4": ">",
}
BREAKDOWN_COLOURS = {
    "compute": "#4c72b0",
    "comm_tp": "#dd8452",
    "comm_cp": "#c44e52",
    "comm_pp": "#8172b3",
    "comm_dp": "#937860",
    "comm_zero3": "#da8bc3",
    "pipeline_bubble": "#8c8c8c",
    "copies": "#ccb974",
    "hooks": "#64b5cd",
    "optimizer": "#55a868",
}


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, without metadata that changes between runs."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def _colours(names: Sequence[str]) -> dict[str, str]:
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    return {n: cycle[i % len(cycle)] for i, n in enumerate(names)}


def reference_gpus(result: PlanResult) -> int | None:
    """The GPU count the per-precision and breakdown figures compare at: the recommended
    candidate's, else the largest count at which most hardware has a feasible layout."""
    if result.recommended is not None:
        return result.candidates[result.recommended].gpus
    counts: dict[int, int] = {}
    for c in result.feasible:
        counts[c.gpus] = counts.get(c.gpus, 0) + 1
    if not counts:
        return None
    top = max(counts.values())
    return max(g for g, n in counts.items() if n == top)


def at_gpus(result: PlanResult, gpus: int | None) -> list[Candidate]:
    return [c for c in result.feasible if c.gpus == gpus]


def speedup_figure(result: PlanResult) -> Figure:
    """llmcap's speed-up over one ideal GPU vs GPU count, per hardware, with the seed's m*k."""
    fig = Figure(figsize=(10.0, 4.8))
    ax = fig.subplots()
    hw_names = [h.name for h in result.request.hardware]
    col = _colours(hw_names)
    gmin, gmax = None, 1
    for hw in hw_names:
        for prec in result.request.precisions:
            pts = sorted(
                (c.gpus, c.step.document["speedup_llmcap"])  # type: ignore[union-attr]
                for c in result.feasible
                if c.hardware == hw and c.precision == prec
            )
            if not pts:
                continue
            gmax = max(gmax, pts[-1][0])
            gmin = pts[0][0] if gmin is None else min(gmin, pts[0][0])
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker=MARKERS.get(prec, "o"), color=col[hw], label=f"{hw} {prec}")
    line = [gmin or 1, gmax]
    ax.plot(line, line, "k--", lw=1, label="seed: linear m×k")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("GPUs")
    ax.set_ylabel("speed-up over one ideal GPU")
    ax.set_title(f"{result.request.model.name}: speed-up of the best layout")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def breakdown_figure(result: PlanResult) -> Figure:
    """Where the step time goes for each (hardware, precision) at the reference GPU count."""
    gpus = reference_gpus(result)
    cands = at_gpus(result, gpus)
    fig = Figure(figsize=(10.0, 1.4 + 0.45 * max(1, len(cands))))
    ax = fig.subplots()
    labels = [f"{c.hardware} {c.precision}" for c in cands]
    left = [0.0] * len(cands)
    for key in BREAKDOWN_KEYS:
        widths = [c.step.breakdown.get(key, 0.0) / c.step.step_time_s for c in cands]  # type: ignore[union-attr]
        if not any(widths):
            continue
        ax.barh(labels, widths, left=left, color=BREAKDOWN_COLOURS[key], label=label(key))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of the step time (closed form)")
    ax.set_title(f"Where the step time goes at {gpus} GPUs")
    ax.invert_yaxis()
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return fig


def pareto_figure(result: PlanResult) -> Figure:
    """Time to train vs cost of every feasible candidate, each labelled with its GPU count;
    the Pareto front joined. Cost is the owner's cost of the run with --own, else rental."""
    fig = Figure(figsize=(10.0, 5.2))
    ax = fig.subplots()
    col = _colours([h.name for h in result.request.hardware])
    priced = [c for c in result.feasible if c.money is not None]
    for c in priced:
        x, y = c.cost.days, c.money / 1e6  # type: ignore[union-attr, operator]
        ax.scatter(
            x, y, color=col[c.hardware], marker=MARKERS.get(c.precision, "o"), s=34, alpha=0.85
        )
        ax.annotate(
            f"{c.gpus:,}",
            (x, y),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=7,
            color=col[c.hardware],
        )
    front = sorted((c.cost.days, c.money / 1e6) for c in priced if c.on_pareto)  # type: ignore[union-attr, operator]
    if front:
        xs, ys = zip(*front, strict=True)
        ax.step(xs, ys, where="post", color="k", lw=1, label="Pareto front")
    if result.recommended is not None:
        r = result.candidates[result.recommended]
        if r.money is not None:
            ax.scatter(
                r.cost.days,  # type: ignore[union-attr]
                r.money / 1e6,
                s=180,
                facecolors="none",
                edgecolors="red",
                label=f"recommended: {r.label}",
            )
    q = result.request
    if q.deadline_s is not None:
        ax.axvline(q.deadline_s / SECONDS_PER_DAY, color="red", ls=":", lw=1, label="deadline")
    if q.budget_usd is not None:
        ax.axhline(q.budget_usd / 1e6, color="red", ls="--", lw=1, label="budget")
    for hw, c in col.items():
        ax.scatter([], [], color=c, label=hw)
    for prec in q.precisions:
        ax.scatter([], [], color="grey", marker=MARKERS.get(prec, "o"), label=prec)
    ax.set_xscale("log")
    days = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(days)
    ax.xaxis.set_minor_formatter(days)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("time to train (days); labels: GPU count")
    what = "owning, this run's share" if q.ownership is not None else "renting"
    cls = f", {q.price_class} prices" if q.price_class and q.ownership is None else ""
    ax.set_ylabel(f"cost (million USD, {what}{cls})")
    ax.set_title("Time vs cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def precision_figure(result: PlanResult) -> Figure:
    """Energy and time to train per precision, for each hardware, at the reference GPU count."""
    gpus = reference_gpus(result)
    cands = at_gpus(result, gpus)
    precs = list(result.request.precisions)
    hws = [h.name for h in result.request.hardware]
    fig = Figure(figsize=(10.0, 4.0))
    ax_e, ax_t = fig.subplots(1, 2)
    width = 0.8 / max(1, len(precs))
    for j, prec in enumerate(precs):
        xs, energy, days = [], [], []
        for i, hw in enumerate(hws):
            c = next((c for c in cands if c.hardware == hw and c.precision == prec), None)
            if c is None:
                continue
            xs.append(i + (j - (len(precs) - 1) / 2) * width)
            energy.append(c.cost.energy_mwh)  # type: ignore[union-attr]
            days.append(c.cost.days)  # type: ignore[union-attr]
        ax_e.bar(xs, energy, width, label=prec)
        ax_t.bar(xs, days, width, label=prec)
    for ax, ylabel in ((ax_e, "energy (MWh, GPUs × PUE)"), (ax_t, "time to train (days)")):
        ax.set_xticks(range(len(hws)), hws, rotation=20, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", alpha=0.3)
    ax_e.legend(fontsize=7)
    fig.suptitle(f"Energy and time per precision at {gpus} GPUs")
    fig.tight_layout()
    return fig


FIGURES = {
    "speedup": (speedup_figure, "Speed-up vs GPUs per hardware, with the seed's linear m×k line"),
    "breakdown": (
        breakdown_figure,
        "Where the step time goes (compute, exposed communication "
        "by kind, pipeline bubble, optimizer)",
    ),
    "pareto": (pareto_figure, "Time to train vs cost, with the Pareto front"),
    "precision": (precision_figure, "Energy and time to train per precision"),
}
"""name -> (function, caption), in report order."""


def render_all(result: PlanResult) -> dict[str, bytes]:
    """Every report figure as PNG bytes, by name."""
    return {name: png_bytes(fn(result)) for name, (fn, _) in FIGURES.items()}
