"""`llmcap cluster`: a job mix on a shared cluster of GPU pools, under scheduling policies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from analysis.cli.common import echo_json, run_guarded

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
            Path | None, Opt(help="Write cluster.json, report.md, report.html, figures/ here")
        ] = None,
        no_figures: Annotated[bool, Opt("--no-figures", help="Skip the PNG figures")] = False,
        json_out: Annotated[bool, Opt("--json", help="Print the result as JSON on stdout")] = False,
    ) -> None:
        """A job mix on a shared cluster: queueing delay, slowdown, utilisation, energy, cost."""

        def go() -> dict[str, Any]:
            from analysis.cluster import ClusterConfig, parse_pools, read_mix, simulate_cluster

            pols = tuple(p.strip() for p in policy.split(",") if p.strip())
            config = ClusterConfig(parse_pools(hardware), read_mix(jobs), pols, days)
            result = simulate_cluster(config, seed)
            if out is not None:
                from analysis.cluster.report import write_report

                write_report(result, out, figures=not no_figures)
            return result

        result = run_guarded(go)
        if json_out:
            from analysis.cluster.report import summary

            echo_json(summary(result))
            return
        for name, r in result["policies"].items():
            t = r["totals"]
            delay = t["mean_queueing_delay_h"]
            typer.echo(
                f"{name:9s} utilisation {t['utilisation']:6.1%}  goodput {t['goodput']:6.1%}  "
                f"mean queueing delay {'-' if delay is None else f'{delay:.2f} h'}  "
                f"finished {t['jobs_finished']}/{t['jobs_submitted']}  "
                f"energy {t['energy_j'] / 3.6e9:,.1f} MWh  cost ${t['cost_usd']:,.0f}"
            )
        if out is not None:
            typer.echo(f"report: {out / 'report.html'}")
