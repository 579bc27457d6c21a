"""`llmcap cluster`: a job mix on a shared cluster of GPU pools, under scheduling policies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from analysis.cli.common import UserError, check_output, echo_json, run_guarded
from hwprofiles.typed import number

Opt = typer.Option


def register(app: typer.Typer) -> None:
    """Register `llmcap cluster`."""

    @app.command()
    def cluster(
        jobs: Annotated[Path, Opt(help="Job-mix TOML file (see examples/jobmix.toml)")],
        hardware: Annotated[
            str, Opt(help="Pools as NAME:GPUS, comma-separated (e.g. h100-sxm:512,a100-80gb:256)")
        ],
        policy: Annotated[
            str, Opt(help="Policies to compare: fifo, backfill, priority, gang (comma-separated)")
        ] = "fifo,backfill",
        days: Annotated[float, Opt(help="Simulated period (days)")] = 30.0,
        seed: Annotated[int, Opt(help="Seed of the job draws")] = 0,
        out: Annotated[
            Path | None,
            Opt(help="Write cluster.json, report.md, report.html, figures/ here \\[default: none]"),
        ] = None,
        add: Annotated[
            str | None,
            Opt(
                help="Candidate pools to add, NAME:GPUS comma-separated (e.g. b200:64,h200:128): "
                "ranks them by USD per job-hour of queueing saved (first policy) \\[default: none]"
            ),
        ] = None,
        target_delay: Annotated[
            float | None, Opt(help="Target mean queueing delay (hours) for --add \\[default: none]")
        ] = None,
        replicas: Annotated[
            int, Opt(help="Seeds (seed, seed+1, ...) averaged in the --add sweep", min=1)
        ] = 1,
        failures: Annotated[
            bool,
            Opt(help="Interrupt running jobs at the whole-run model's failure rates (Llama 3)"),
        ] = True,
        placement: Annotated[
            str,
            Opt(
                help="Pool a job starts on: fastest-free (fastest pool free now) or "
                "earliest-finish (wait for a faster pool when that finishes sooner)"
            ),
        ] = "fastest-free",
        no_figures: Annotated[bool, Opt("--no-figures", help="Skip the PNG figures")] = False,
        json_out: Annotated[bool, Opt("--json", help="Print the result as JSON on stdout")] = False,
    ) -> None:
        """A job mix on a shared cluster: queueing delay, slowdown, utilisation, energy, cost."""

        def go() -> dict[str, Any]:
            from analysis.cluster import (
                ClusterConfig,
                StepModel,
                parse_pools,
                read_mix,
                simulate_cluster,
            )

            if out is not None:
                check_output(out, "--out", "dir")  # before the simulation, not after it
            number(seed, "--seed", minimum=0, maximum=2**63 - 1, integer=True)  # numpy seeds
            pols = tuple(p.strip() for p in policy.split(",") if p.strip())
            config = ClusterConfig(
                parse_pools(hardware), read_mix(jobs), pols, days, failures, placement
            )
            if target_delay is not None and add is None:
                raise UserError("target-delay", target_delay, "needs --add (pools to compare)")
            if target_delay is not None:  # before the simulation, not after it
                number(target_delay, "target-delay", minimum=0.0, strict=True)
            steps = StepModel()
            result = simulate_cluster(config, seed, steps)
            if add is not None:
                from analysis.cluster.purchase import sweep_additions

                seeds = tuple(range(seed, seed + replicas))
                result["purchase"] = sweep_additions(config, add, seeds, target_delay, steps=steps)
            if out is not None:
                from analysis.cluster.report import write_report

                write_report(result, out, figures=not no_figures)
            return result

        result = run_guarded(go)
        if json_out:
            from analysis.cluster.report import summary

            echo_json(summary(result))
            return
        print_cluster(result)
        if out is not None:
            typer.echo(f"report: {out / 'report.html'}")


def print_cluster(result: dict[str, Any]) -> None:
    """The policies (and any pool candidates) as tables that fit the terminal."""
    from rich.console import Console

    from analysis.report.fit import Col, fit_table

    con = Console()
    cols = [
        Col("policy", "left", 9),
        Col("utilisation", priority=8),
        Col("goodput", priority=5),
        Col("queueing h", priority=7),
        Col("finished", priority=6),
        Col("MWh", priority=3),
        Col("cost USD", priority=4),
    ]
    rows = []
    for name, r in result["policies"].items():
        t = r["totals"]
        delay = t["mean_queueing_delay_h"]
        rows.append(
            [
                name,
                f"{t['utilisation']:.1%}",
                f"{t['goodput']:.1%}",
                "-" if delay is None else f"{delay:.2f}",
                f"{t['jobs_finished']}/{t['jobs_submitted']}",
                f"{t['energy_j'] / 3.6e9:,.1f}",
                f"${t['cost_usd']:,.0f}",
            ]
        )
    _print_fitted(con, fit_table(cols, rows, con, title="Policies (mean queueing delay, hours)"))
    if "purchase" not in result:
        return
    pu = result["purchase"]
    title = (
        f"Adding a pool ({pu['policy']}, {len(pu['seeds'])} seed(s)); now "
        f"{pu['baseline']['mean_queueing_delay_h']:.2f} h mean queueing delay"
    )
    cols = [
        Col("#", priority=9),
        Col("add", "left", 9),
        Col("queueing h", priority=8),
        Col("added USD", priority=6),
        Col("USD per job-h saved", priority=7),
        Col("target", "left", 5),
    ]
    rows = []
    for c in pu["candidates"]:
        usd = c["usd_per_job_hour_saved"]
        rows.append(
            [
                f"{c['rank']}",
                c["add"],
                f"{c['mean_queueing_delay_h']:.2f}",
                f"${c['added_cost_usd']:,.0f}",
                "saves nothing" if usd is None else f"${usd:,.1f}",
                "met" if c["meets_target"] else "",
            ]
        )
    con.print()
    _print_fitted(con, fit_table(cols, rows, con, title=title))


def _print_fitted(con: Any, fitted: tuple[Any, list[str]]) -> None:
    table, dropped = fitted
    con.print(table)
    if dropped:
        con.print(f"(narrow terminal: columns {', '.join(dropped)} left out; see --json)")
