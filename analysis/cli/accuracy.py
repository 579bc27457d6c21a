"""`llmcap accuracy`: predict every usable published run and print the error table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analysis.cli.common import check_output, echo_json, run_guarded, write_output
from analysis.report.fit import fold_text


def register(app: typer.Typer) -> None:
    """Register `llmcap accuracy`."""

    @app.command()
    def accuracy(
        out: Annotated[
            Path | None, typer.Option(help="Write the markdown report here \\[default: none]")
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
        cross_validate: Annotated[
            bool,
            typer.Option(
                "--cross-validate",
                help="Leave-one-source-out: refit the sustained fraction without each source",
            ),
        ] = False,
        components: Annotated[
            bool,
            typer.Option("--components", help="Kernel and collective models vs measured rows"),
        ] = False,
        memory: Annotated[
            bool,
            typer.Option("--memory", help="Memory model vs published and measured memory rows"),
        ] = False,
    ) -> None:
        """Predicted vs published step time for the reference runs (median and worst error)."""

        def go():
            if out is not None:
                check_output(out, "--out")  # before the work, not after it
            from analysis.accuracy.collectives import collective_comparisons
            from analysis.accuracy.moe_rows import moe_comparisons
            from analysis.accuracy.run import run_accuracy
            from analysis.accuracy.wholerun import whole_run_comparisons

            return (
                run_accuracy(),
                collective_comparisons(),
                whole_run_comparisons(),
                moe_comparisons(),
            )

        if cross_validate or components or memory:
            _extra(cross_validate, components, json_out, memory)
            if out is None:
                return
        result, coll, whole, moe = run_guarded(go)
        if out is not None:
            from analysis.accuracy.components import component_comparisons
            from analysis.accuracy.crossval import cross_validate as loso
            from analysis.accuracy.report import to_markdown

            cv, comp = run_guarded(lambda: (loso(), component_comparisons()))
            md = to_markdown(result, coll, whole, cv, comp, moe)
            run_guarded(lambda: write_output(out, md, "--out"))
            if cross_validate or components or memory:
                return
        if json_out:
            echo_json({**result, "collectives": coll, "whole_run": whole, "moe": moe})
            return
        from rich.console import Console
        from rich.table import Table

        tab = Table(title="llmcap vs published runs (step time)")
        for col in ("id", "model", "GPUs", "measured s", "predicted s", "error"):
            tab.add_column(col, justify="right" if col != "id" else "left")
        for c in result["comparisons"]:
            tab.add_row(
                c["id"],
                c["model"],
                str(c["gpus"]),
                f"{c['measured_step_s']:.3f}",
                f"{c['predicted_step_s']:.3f}",
                f"{c['error']:+.1%}",
            )
        con = Console()
        fold_text(tab)
        con.print(tab)
        wt = Table(title="llmcap vs published whole runs (scope per row)")
        for col in ("id", "metric", "scope", "kind", "published", "predicted", "error"):
            wt.add_column(
                col, justify="right" if col in ("published", "predicted", "error") else "left"
            )
        for c in whole["comparisons"]:
            wt.add_row(
                c["id"],
                c["metric"],
                c["scope"],
                c["kind"],
                f"{c['measured']:,.3g}",
                f"{c['predicted']:,.3g}",
                f"{c['error']:+.1%}",
            )
        fold_text(wt)
        con.print(wt)
        s = result["summary"]
        con.print(
            f"median |error| {s['median_abs_error']:.1%}, worst {s['worst_abs_error']:.1%} "
            f"({s['worst_row']}) over {s['rows_compared']} rows"
        )


def _extra(cross_validate: bool, components: bool, json_out: bool, memory: bool = False) -> None:
    """Print the leave-one-source-out, component and/or memory comparisons."""
    from rich.console import Console
    from rich.table import Table

    from analysis.accuracy.components import component_comparisons
    from analysis.accuracy.crossval import cross_validate as loso

    doc: dict = {}
    if cross_validate:
        doc["cross_validation"] = run_guarded(loso)
    if components:
        doc["components"] = run_guarded(component_comparisons)
    if memory:
        from analysis.accuracy.memory_check import memory_comparisons, memory_summary

        rows = run_guarded(memory_comparisons)
        doc["memory"] = {"rows": rows, "summary": memory_summary(rows)}
    if json_out:
        echo_json(doc)
        return
    con = Console()
    if cross_validate:
        cv = doc["cross_validation"]
        tab = Table(title="leave-one-source-out step time (sustained refitted without the source)")
        for col in ("id", "source", "stack", "hardware", "GPUs", "sustained", "error"):
            tab.add_column(col, justify="left" if col in ("id", "source", "stack") else "right")
        for r in cv["rows"]:
            tab.add_row(r["id"], r["source"], r["stack"], r["hardware"], str(r["gpus"]),
                        f"{r['sustained']:.3g}", f"{r['error']:+.1%}")  # fmt: skip
        con.print(tab)
        s = cv["summary"]
        con.print(
            f"out-of-sample median |error| {s['median_abs_error']:.1%}, within 10% "
            f"{s['within_10pct']}/{s['rows']}, worst {s['worst_abs_error']:.1%} ({s['worst_row']})"
        )
        for key in ("by_source", "by_hardware", "by_stack"):
            con.print(
                key.replace("_", " ") + ": "
                + ", ".join(f"{g} {v['median_abs_error']:.1%}" for g, v in cv[key].items())
            )  # fmt: skip
    if components:
        comp = doc["components"]
        tab = Table(title="components: llmcap model vs published measurement")
        for col in ("group", "id", "what", "measured", "llmcap", "error"):
            tab.add_column(
                col, justify="right" if col in ("measured", "llmcap", "error") else "left"
            )
        for r in comp["rows"]:
            tab.add_row(r["group"], r["id"], r["what"], f"{r['measured']:,.1f}",
                        f"{r['predicted']:,.1f}", f"{r['error']:+.1%}")  # fmt: skip
        con.print(tab)
        con.print(
            "median |error| by group: "
            + ", ".join(f"{g} {v:.1%}" for g, v in comp["median_abs_error_by_group"].items())
        )
    if memory:
        _print_memory(con, doc["memory"])


def _print_memory(con, mem: dict) -> None:
    """The memory rows: published (or measured) vs llmcap, per row and per group."""
    from rich.table import Table

    tab = Table(title="memory: llmcap model vs published / measured figures")
    for col in ("group", "id", "what", "kind", "published", "llmcap", "unit", "error"):
        tab.add_column(col, justify="right" if col in ("published", "llmcap", "error") else "left")
    for r in mem["rows"]:
        tab.add_row(r["group"], r["id"], r["what"], r["kind"], f"{r['published']:.4g}",
                    f"{r['llmcap']:.4g}", r["unit"], f"{r['error']:+.1%}")  # fmt: skip
    fold_text(tab)
    con.print(tab)
    con.print(
        "median |error| by group: "
        + ", ".join(f"{g} {v['median_abs_error']:.1%}" for g, v in mem["summary"].items())
    )
