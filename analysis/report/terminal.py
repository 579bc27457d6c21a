"""Terminal summary of a plan (Rich): the answer, then the best layout of every candidate."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from analysis.planner.result import PlanResult


def render_plan(
    result: PlanResult, out_dir: Path | None = None, console: Console | None = None
) -> None:
    """Print the recommendation (or the Pareto front) and a table of feasible candidates."""
    con = console or Console()
    q = result.request
    con.print(
        f"sequence {q.sequence_length:,} tokens ({q.sequence_length_source}); "
        f"global batch {q.batch.target_sequences:,} sequences ({q.batch.source})",
        highlight=False,
    )
    if result.recommended is not None:
        c = result.candidates[result.recommended]
        con.print(
            f"[bold]Recommended:[/bold] {c.label}  {c.layout_text}  "
            f"{c.cost.days:,.1f} days  ${c.cost.cost_usd or 0:,.0f}  "  # type: ignore[union-attr]
            f"{c.cost.energy_mwh:,.1f} MWh  {c.cost.co2_t:,.1f} t CO2"  # type: ignore[union-attr]
        )
    table = Table(
        title=f"{q.model.name}, {q.tokens:g} tokens: best layout per candidate",
        title_justify="left",
    )
    for col in ("candidate", "layout", "MFU", "days", "GPU-h", "USD", "MWh", "t CO2", "front"):
        table.add_column(col, justify="left" if col in ("candidate", "layout") else "right")
    for c in result.feasible:
        t = c.cost
        table.add_row(
            c.label,
            c.layout_text,
            f"{c.step.mfu:.1%}",
            f"{t.days:,.1f}",  # type: ignore[union-attr]
            f"{t.gpu_hours:,.0f}",
            "—" if t.cost_usd is None else f"{t.cost_usd:,.0f}",  # type: ignore[union-attr]
            f"{t.energy_mwh:,.1f}",
            f"{t.co2_t:,.1f}",
            "*" if c.on_pareto else "",  # type: ignore[union-attr]
        )
    con.print(table)
    skipped = len(result.candidates) - len(result.feasible)
    if skipped:
        con.print(f"{skipped} candidate(s) without a feasible layout (see the report or --json)")
    con.print(f"{result.recheck_note}; {result.layouts_evaluated:,} layouts evaluated")
    for note in result.notes:
        con.print(f"note: {note}")
    if out_dir is not None:
        con.print(f"reports written to {out_dir}/ (report.md, report.html, candidates.csv)")
