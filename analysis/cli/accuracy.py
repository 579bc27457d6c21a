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
        out: Annotated[Path | None, typer.Option(help="Write the markdown report here")] = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
    ) -> None:
        """Predicted vs published step time for the reference runs (median and worst error)."""

        def go():
            if out is not None:
                check_output(out, "--out")  # before the work, not after it
            from analysis.accuracy.collectives import collective_comparisons
            from analysis.accuracy.run import run_accuracy
            from analysis.accuracy.wholerun import whole_run_comparisons

            return run_accuracy(), collective_comparisons(), whole_run_comparisons()

        result, coll, whole = run_guarded(go)
        if out is not None:
            from analysis.accuracy.report import to_markdown

            run_guarded(lambda: write_output(out, to_markdown(result, coll, whole), "--out"))
        if json_out:
            echo_json({**result, "collectives": coll, "whole_run": whole})
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
