"""`llmcap plan`: which hardware, how many GPUs, which layout, at what cost, time and energy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analysis.cli.common import check_output, echo_json, fail, run_guarded
from analysis.cli.parse import parse_count, parse_gpus, split_list
from analysis.cli.progress import StepProgress
from analysis.planner.costs import SECONDS_PER_DAY
from hwprofiles.errors import UserError
from hwprofiles.inputs import path_kind
from hwprofiles.typed import number

Opt = typer.Option


def _no_feasible_message(result) -> str:
    """One line: why nothing is feasible, the most common reasons first."""
    reasons: dict[str, list[str]] = {}
    for c in result.candidates:
        key = (c.search.reason or "").split(":")[0]
        reasons.setdefault(key, []).append(f"{c.label}: {c.search.reason}")
    ordered = sorted(reasons.values(), key=lambda v: -len(v))
    return "no feasible layout for any candidate; " + " | ".join(v[0] for v in ordered[:3])


def _constraint_message(result) -> str:
    q = result.request
    c = result.candidates[result.closest]
    asked = []
    if q.deadline_s is not None:
        asked.append(f"within {q.deadline_s / SECONDS_PER_DAY:g} days")
    if q.budget_usd is not None:
        asked.append(f"for at most ${q.budget_usd:,.0f}")
    field = "deadline" if q.deadline_s is not None else "budget"
    cost = "no price" if c.cost.cost_usd is None else f"${c.cost.cost_usd:,.0f}"
    return (
        f"{field}: no candidate trains {q.tokens:g} tokens {' and '.join(asked)}; closest: "
        f"{c.label} ({c.layout_text}) in {c.cost.days:,.1f} days for {cost}"
    )


def register(app: typer.Typer) -> None:
    """Register `llmcap plan`."""

    @app.command()
    def plan(
        model: Annotated[str, Opt(help="Model preset name or HF config.json / .toml")],
        tokens: Annotated[str, Opt(help="Tokens to train, e.g. 2T, 1.5e12, 500B")],
        hardware: Annotated[str, Opt(help="Comma list: h100-sxm,a100-80gb,b200,mi300x")],
        gpus: Annotated[
            str | None,
            Opt(help="Comma list of cluster sizes: 64,128,... \\[default: powers of two to 1024]"),
        ] = None,
        max_gpus: Annotated[
            int | None, Opt(help="Try powers of two up to N GPUs \\[default: 1024]")
        ] = None,
        deadline: Annotated[float | None, Opt(help="Deadline in days \\[default: none]")] = None,
        budget: Annotated[float | None, Opt(help="Budget in US dollars \\[default: none]")] = None,
        precision: Annotated[str, Opt(help="Comma list: fp32,tf32,fp16,bf16,fp8")] = "bf16",
        prices: Annotated[
            Path | None,
            Opt(
                help="TOML of USD per GPU-hour, as hwprofiles/data/prices.toml "
                "\\[default: catalogue]"
            ),
        ] = None,
        grid_intensity: Annotated[
            float | None, Opt(help="Grid carbon intensity, gCO2/kWh \\[default: 481, world 2023]")
        ] = None,
        pue: Annotated[
            float | None,
            Opt(
                help="Facility PUE applied to the IT energy (nodes and network) "
                "\\[default: 1.0; with --own 1.2, power.toml]"
            ),
        ] = None,
        own: Annotated[
            bool,
            Opt(
                "--own/--rent",
                help="Cost owning the cluster (capex, power, maintenance, depreciation) with "
                "renting beside it, or renting only",
            ),
        ] = False,
        years: Annotated[
            float | None, Opt(help="With --own: depreciation years \\[default: 4]")
        ] = None,
        utilisation: Annotated[
            float | None,
            Opt(help="With --own: share of the cluster's life in use, (0, 1] \\[default: 0.7]"),
        ] = None,
        power_price: Annotated[
            float | None, Opt(help="With --own: electricity, USD/kWh \\[default: 0.081, US 2024]")
        ] = None,
        ownership: Annotated[
            Path | None,
            Opt(
                help="With --own: TOML of server/network prices, as "
                "hwprofiles/data/ownership.toml \\[default: catalogue]"
            ),
        ] = None,
        price_class: Annotated[
            str | None,
            Opt(
                help="Rental provider class for every GPU: quote, gpu-cloud, "
                "hyperscaler-reserved, hyperscaler-on-demand \\[default: the first that prices "
                "every GPU]"
            ),
        ] = None,
        seq_len: Annotated[
            int | None, Opt(help="Tokens per sequence \\[default: the model's pre-training length]")
        ] = None,
        global_batch: Annotated[
            int | None, Opt(help="Sequences per step \\[default: ~4M tokens]")
        ] = None,
        recheck: Annotated[int, Opt(help="Re-check the best N with the SimPy engine")] = 3,
        out: Annotated[
            Path | None, Opt(help="Write report.md/.html, CSV, JSON here \\[default: none]")
        ] = None,
        json_out: Annotated[bool, Opt("--json", help="JSON on stdout")] = False,
        progress: Annotated[
            bool,
            Opt(
                "--progress/--no-progress",
                help="Progress on stderr: a bar at a terminal, a line every 15 s elsewhere",
            ),
        ] = True,
    ) -> None:
        """Search every parallel layout on every hardware and cluster size; cost the budget."""

        def go():
            from analysis.planner import PlanRequest
            from analysis.planner import plan as run_plan
            from analysis.planner.costs import DEFAULT_GRID_G_PER_KWH
            from hwprofiles.catalogue import load_profile
            from hwprofiles.prices import Price, load_price_rows, select_prices
            from simulator.models_catalogue import load_model

            if out is not None:
                check_output(out, "--out", "dir")  # before the search, not after it
            for flag, value, low in (
                ("--deadline", deadline, 0.0),
                ("--budget", budget, 0.0),
                ("--grid-intensity", grid_intensity, None),
                ("--pue", pue, None),
            ):
                if value is not None:
                    number(value, flag, minimum=low, strict=True)
            if prices is not None and path_kind(prices) != "file":
                raise UserError("prices", str(prices), "is not a file")
            names = split_list(hardware, "hardware")
            profiles = tuple(load_profile(n, prices=prices) for n in names)
            rows = load_price_rows(prices)
            for h in profiles:  # a hardware file's own price is the user's quote for it
                if h.accelerator.name not in rows and h.price_per_gpu_hour_usd is not None:
                    rows[h.accelerator.name] = {
                        "quote": Price(
                            h.price_per_gpu_hour_usd,
                            "",
                            h.price_source or "hardware file",
                            price_class="quote",
                        )
                    }
            table, cls, _ = select_prices(rows, [h.accelerator.name for h in profiles], price_class)
            own_params = own_data = None
            if own:
                from analysis.planner.tco import OwnershipParams
                from hwprofiles.ownership import load_ownership

                if ownership is not None and path_kind(ownership) != "file":
                    raise UserError("ownership", str(ownership), "is not a file")
                own_data = load_ownership(ownership)
                own_params = OwnershipParams.from_data(
                    own_data,
                    years=years,
                    utilisation=utilisation,
                    usd_per_kwh=power_price,
                    pue=pue,
                )
            else:
                for flag, v in (
                    ("years", years),
                    ("utilisation", utilisation),
                    ("power-price", power_price),
                    ("ownership", ownership),
                ):
                    if v is not None:
                        raise UserError(flag, v, "needs --own (it prices owning the cluster)")
            req = PlanRequest(
                model=load_model(model),
                tokens=parse_count(tokens),
                hardware=profiles,
                gpus=parse_gpus(gpus, max_gpus),
                precisions=tuple(split_list(precision, "precision")),
                seq_len=seq_len,
                global_batch=global_batch,
                deadline_s=None if deadline is None else deadline * SECONDS_PER_DAY,
                budget_usd=budget,
                grid_g_per_kwh=DEFAULT_GRID_G_PER_KWH if grid_intensity is None else grid_intensity,
                pue=pue if pue is not None else (own_params.pue if own_params else 1.0),
                recheck=recheck,
                ownership=own_params,
                ownership_data=own_data,
                price_class=cls,
            )
            with StepProgress("plan", progress) as bar:
                result = run_plan(req, table, bar.update, bar.stage)
                ok = bool(result.feasible) and result.closest is None
                if ok and out is not None:
                    from analysis.report import write_reports

                    bar.stage("figures and reports")
                    write_reports(result, out)
            if not result.feasible:
                fail(_no_feasible_message(result))
            if result.closest is not None:
                fail(_constraint_message(result))
            return result

        result = run_guarded(go)
        if json_out:
            echo_json(result.to_dict())
            return
        from analysis.report.terminal import render_plan

        render_plan(result, out)
