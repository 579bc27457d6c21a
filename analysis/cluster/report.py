"""A cluster result as report blocks (markdown and HTML share them) and the files of `--out`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis.cli.common import dumps, staged_dir, write_atomic
from analysis.report import html as html_render
from analysis.report import markdown as md_render
from analysis.report.content import Block

FIGURES = {
    "utilisation": "Allocated share of each pool's GPUs over time (hourly averages)",
    "queue": "Jobs waiting in the queue over time (hourly averages)",
}


def _h(x: float | None) -> str:
    return "—" if x is None else f"{x:,.2f}"


def blocks(result: dict[str, Any]) -> list[Block]:
    """What the report says, in order."""
    inp = result["inputs"]
    pools = ", ".join(f"{p['name']}:{p['gpus']}" for p in inp["pools"])
    out: list[Block] = [
        ("h", 1, f"Shared cluster: {pools} over {inp['days']:g} days"),
        (
            "p",
            f"{inp['jobs']} jobs drawn from the job mix (seed {inp['seed']}) and replayed under "
            f"each policy. {inp['mix']['description']}. Source of the mix: "
            f"{inp['mix']['source'] or 'not given'}.",
        ),
        ("h", 2, "Pools"),
        (
            "table",
            ["pool", "GPUs", "node", "USD per GPU-hour", "idle W per GPU"],
            [
                [
                    p["name"],
                    p["gpus"],
                    p["node"],
                    f"{p['usd_per_gpu_hour']:.2f}",
                    f"{p['idle_w']:.0f}",
                ]
                for p in inp["pools"]
            ],
        ),
        ("h", 2, "Job classes"),
        (
            "table",
            ["class", "model", "GPUs", "arrivals/day", "mean tokens", "priority", "preemptible"],
            [
                [
                    c["name"],
                    c["model"],
                    ", ".join(str(g) for g in c["gpus"]),
                    f"{c['arrivals_per_s'] * 86400:g}",
                    f"{c['tokens']:.3g}",
                    c["priority"],
                    "yes" if c["preemptible"] else "no",
                ]
                for c in inp["mix"]["classes"]
            ],
        ),
        ("h", 2, "Step model (closed-form planner search, best layout per pool)"),
        (
            "table",
            ["class / GPUs / pool", "seconds per step", "W per GPU", "layout"],
            [
                [k, f"{v['step_time_s']:.2f}", f"{v['power_w']:.0f}", v["layout"]]
                for k, v in inp["step_model"].items()
            ],
        ),
        ("h", 2, "Policies compared"),
        (
            "table",
            [
                "policy",
                "utilisation",
                "goodput",
                "mean queueing delay (h)",
                "finished / submitted",
                "energy (MWh)",
                "cost (USD)",
                "USD per useful GPU-h",
            ],
            [
                [
                    name,
                    f"{t['utilisation']:.1%}",
                    f"{t['goodput']:.1%}",
                    _h(t["mean_queueing_delay_h"]),
                    f"{t['jobs_finished']} / {t['jobs_submitted']}",
                    f"{t['energy_j'] / 3.6e9:,.1f}",
                    f"{t['cost_usd']:,.0f}",
                    _h(t["usd_per_useful_gpu_h"]),
                ]
                for name, t in ((n, r["totals"]) for n, r in result["policies"].items())
            ],
        ),
        (
            "p",
            "Utilisation: GPU-time allocated / GPU-time of the cluster. Goodput: GPU-time "
            "computing steps that count / GPU-time of the cluster (restarts, lost work and idle "
            "GPUs of whole-node allocations excluded). Cost: every GPU paid for the whole "
            "period at its list price (hwprofiles/data/prices.toml).",
        ),
        ("h", 2, "Queueing delay and slowdown per job class"),
    ]
    rows = []
    for name, r in result["policies"].items():
        for cls, c in r["classes"].items():
            q, s = c["queueing_delay_h"], c["slowdown"]
            rows.append(
                [
                    name,
                    cls,
                    f"{c['finished']} / {c['submitted']}",
                    _h(q["mean"]),
                    _h(q["p95"]),
                    _h(s["mean"]),
                    _h(s["p95"]),
                    c["stops"],
                    c.get("failures", 0),
                    f"{c['lost_gpu_h']:,.0f}",
                ]
            )
    out.append(
        (
            "table",
            [
                "policy",
                "class",
                "finished / submitted",
                "mean delay (h)",
                "p95 delay (h)",
                "mean slowdown",
                "p95 slowdown",
                "preemptions / switches",
                "failures",
                "lost GPU-h",
            ],
            rows,
        )
    )
    out.append(("h", 2, "Utilisation per pool"))
    out.append(
        (
            "table",
            ["policy", "pool", "utilisation", "allocated GPU-h", "useful GPU-h", "energy (MWh)"],
            [
                [
                    name,
                    pool,
                    f"{p['utilisation']:.1%}",
                    f"{p['allocated_gpu_h']:,.0f}",
                    f"{p['useful_gpu_h']:,.0f}",
                    f"{p['energy_j'] / 3.6e9:,.1f}",
                ]
                for name, r in result["policies"].items()
                for pool, p in r["pools"].items()
            ],
        )
    )
    out += purchase_blocks(result.get("purchase"))
    out.append(("h", 2, "Figures"))
    for name, caption in FIGURES.items():
        out.append(("figure", name, caption))
    for name in result["policies"]:
        out.append(("figure", f"gantt-{name}", f"Nodes held by each job class under {name}"))
    out.append(("p", f"Provenance: {result['provenance']['modelled']}."))
    return out


def purchase_blocks(pu: dict[str, Any] | None) -> list[Block]:
    """The "which pool to add" ranking, if the run asked for one."""
    if not pu:
        return []
    b = pu["baseline"]
    target = pu["target_delay_h"]
    head = (
        f"Under {pu['policy']} (mean over seeds {', '.join(map(str, pu['seeds']))}), the "
        f"cluster as it is ({', '.join(b['pools'])}) has a mean queueing delay of "
        f"{b['mean_queueing_delay_h']:.2f} h ({b['waited_job_h']:,.0f} job-hours of waiting)."
    )
    if target is not None:
        best = pu["cheapest_meeting_target"]
        head += (
            f" Target: {target:g} h; cheapest addition that meets it: {best}."
            if best
            else f" Target: {target:g} h; no candidate meets it."
        )
    return [
        ("h", 2, "Which pool to add"),
        ("p", head),
        (
            "table",
            [
                "rank",
                "add",
                "mean delay (h)",
                "job-hours saved",
                "added cost (USD)",
                "USD per job-hour saved",
                "meets target",
                "utilisation",
                "price (USD/GPU-h) and source",
            ],
            [
                [
                    c["rank"],
                    c["add"],
                    f"{c['mean_queueing_delay_h']:.2f}",
                    f"{c['delay_saved_job_h']:,.0f}",
                    f"{c['added_cost_usd']:,.0f}",
                    _h(c["usd_per_job_hour_saved"]),
                    "—" if c["meets_target"] is None else ("yes" if c["meets_target"] else "no"),
                    f"{c['utilisation']:.1%}",
                    f"{c['usd_per_gpu_hour']:.2f}: {c['price_source']}",
                ]
                for c in pu["candidates"]
            ],
        ),
        (
            "p",
            "Added cost: the new GPUs at their list price for the whole period. Prices come "
            "from different providers and pricing models (on-demand, capacity blocks, GPU "
            "clouds); compare like with like or pass your own price file.",
        ),
    ]


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The result without its per-job rows (what `--json` prints and cluster.json holds)."""
    pols = {n: {k: v for k, v in r.items() if k != "jobs"} for n, r in result["policies"].items()}
    return result | {"policies": pols}


def write_report(result: dict[str, Any], out_dir: str | Path, figures: bool = True) -> list[Path]:
    """Write cluster.json (no per-job rows), jobs-<policy>.jsonl (one job per line),
    report.md, report.html and figures/*.png under `out_dir`, all at once (`staged_dir`)."""
    final = Path(out_dir)
    with staged_dir(final, "--out") as out:
        rel = _write_files(result, out, figures)
    return [final / p.relative_to(out) for p in rel]


def _write_files(result: dict[str, Any], out: Path, figures: bool) -> list[Path]:
    written = [write_atomic(out / "cluster.json", dumps(summary(result)))]
    for name, r in result["policies"].items():
        lines = "".join(json.dumps(j, separators=(",", ":")) + "\n" for j in r.get("jobs", []))
        written.append(write_atomic(out / f"jobs-{name}.jsonl", lines))
    pngs: dict[str, bytes] = {}
    if figures:
        from analysis.cluster.figures import render_all

        pngs = render_all(result)
        for name, data in pngs.items():
            written.append(write_atomic(out / "figures" / f"{name}.png", data))
    b = blocks(result)
    paths = {name: f"figures/{name}.png" for name in pngs}
    written.append(write_atomic(out / "report.md", md_render.render(b, paths)))
    written.append(write_atomic(out / "report.html", html_render.render(b, pngs)))
    return written
