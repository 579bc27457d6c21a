"""Terminal summary of a plan (Rich): the answer with its money and prices, the smallest
cluster per hardware, then every candidate in a table that fits the terminal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from analysis.planner.result import PlanResult
from analysis.report.answer import facts, rule_text, smallest_lines, usd
from analysis.report.fit import Col, fit_table


def _lines(con: Console, items: list[tuple[str, str]]) -> None:
    """Label/value lines; a long value wraps under itself, not under the label."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, style="dim")
    grid.add_column(overflow="fold")
    for k, v in items:
        grid.add_row(f" {k}", escape(v))
    con.print(grid, highlight=False)


def render_plan(
    result: PlanResult, out_dir: Path | None = None, console: Console | None = None
) -> None:
    """Print the recommendation (or the Pareto front) and a table of feasible candidates."""
    con = console or Console()
    q = result.request
    con.print(
        f"[bold]{escape(q.model.name)}[/bold] on {q.tokens:.3g} tokens; sequence "
        f"{q.sequence_length:,} tokens ({escape(q.sequence_length_source)}); global batch "
        f"{q.batch.target_sequences:,} sequences",
        highlight=False,
    )
    if result.recommended is not None:
        c = result.candidates[result.recommended]
        con.print(f"\n[bold]Recommended[/bold] ({rule_text(result)}): [bold]{c.label}[/bold]")
        _lines(con, facts(result, c))
    elif not (q.deadline_s or q.budget_usd):
        con.print("\nNo deadline or budget: the Pareto front (marked *) is the answer.")
    if result.smallest:
        con.print(f"\n[bold]Smallest cluster meeting {q.deadline_s / 86400:g} days[/bold]")  # type: ignore[operator]
        _lines(con, smallest_lines(result))
    owning = q.ownership is not None
    cols = [
        Col("candidate", "left", 9, wrap=True),
        Col("days", priority=8),
        Col("own" if owning else "rent", priority=7),
        Col("rent" if owning else "GPU-h", priority=3),
        Col("$/Mtok", priority=5),
        Col("MFU", priority=4),
        Col("MWh", priority=2),
        Col("t CO2", priority=1),
        Col("front", priority=6),
    ]
    rows = []
    for c in result.feasible:
        t = c.cost
        rows.append(
            [
                c.label,
                f"{t.days:,.1f}",  # type: ignore[union-attr]
                usd(c.money),
                usd(t.cost_usd) if owning else f"{t.gpu_hours:,.0f}",  # type: ignore[union-attr]
                usd(c.usd_per_mtok),
                f"{c.step.mfu:.1%}",  # type: ignore[union-attr]
                f"{t.energy_mwh:,.1f}",  # type: ignore[union-attr]
                f"{t.co2_t:,.1f}",  # type: ignore[union-attr]
                "*" if c.on_pareto else "",
            ]
        )
    con.print()
    table, dropped = fit_table(cols, rows, con, title="Every candidate (best layout each)")
    con.print(table)
    if dropped:
        con.print(f"(narrow terminal: columns {', '.join(dropped)} left out; see --json)")
    front = [result.candidates[i] for i in result.ranking][:5]
    if front:
        con.print("layouts of the first ranked:", highlight=False)
        _lines(con, [(c.label, c.layout_text) for c in front])
    skipped = len(result.candidates) - len(result.feasible)
    if skipped:
        con.print(f"{skipped} candidate(s) without a feasible layout (see the report or --json)")
    con.print(
        f"{result.recheck_note}; {result.layouts_evaluated:,} layouts searched, "
        f"{result.layouts_priced:,} priced in full (the others' floor could not beat the best)"
    )
    for note in result.notes:
        con.print(f"note: {escape(note)}", highlight=False)
    if out_dir is not None:
        con.print(f"reports written to {out_dir}/ (report.md, report.html, candidates.csv)")
