"""`llmcap hardware [NAME] [--json]`: the hardware catalogue, or one resolved profile.

Thin entry point: without NAME it lists the accelerator, node and link presets; with NAME (a
preset, a user TOML file or a calibrated profile directory) it resolves the profile with
`hwprofiles.catalogue.load_profile` and shows every number with its source. Units are converted
for display only (`hwprofiles.units`); ``--json`` prints SI values on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from analysis.cli.common import echo_json, run_guarded
from analysis.report.fit import fold_text
from hwprofiles import catalogue
from hwprofiles.describe import (
    Quantity,
    describe_link,
    describe_price,
    describe_profile,
    profile_quantities,
)
from hwprofiles.units import fmt_bytes, fmt_duration, fmt_flops, fmt_rate


def _peak16(peaks: dict[str, float]) -> str:
    """bf16 dense peak in TFLOP/s; devices without bf16 show their fp16 peak, labelled."""
    if "bf16" in peaks:
        return f"{peaks['bf16'] / 1e12:.4g}"
    if "fp16" in peaks:
        return f"fp16 {peaks['fp16'] / 1e12:.4g}"
    return "-"


def catalogue_json(prices: dict[str, Any]) -> dict[str, Any]:
    """Every preset as JSON-ready dicts (SI units)."""
    accels = {
        key: {
            "peak_flops": dict(a.peak_flops),
            "memory_bytes": a.memory_bytes,
            "memory_bandwidth_bytes_per_s": a.memory_bandwidth_bytes_per_s,
            "tdp_w": a.tdp_w,
            "idle_w": a.idle_w,
            "matmul_max_fraction": round(a.matmul_efficiency.max_fraction, 4),
            "attention_max_fraction": round(a.attention_efficiency.max_fraction, 4),
            "memory_efficiency": a.memory_efficiency,
            "default_node": catalogue.default_node(key),
            "price": describe_price(prices.get(key)),
            "sources": dict(a.sources),
        }
        for key, a in catalogue.list_accelerators().items()
    }
    nodes = {
        key: {
            "accelerator": p.accelerator,
            "gpus_per_node": p.node.gpus_per_node,
            "scale_up": p.node.scale_up.name,
            "scale_out": p.node.scale_out.name,
            "nics_per_node": p.node.nics_per_node,
            "fabric": {
                "topology": p.fabric.topology,
                "oversubscription": p.fabric.oversubscription,
            },
            "source": p.node.source,
        }
        for key, p in catalogue.list_nodes().items()
    }
    links = {key: describe_link(link) for key, link in catalogue.list_links().items()}
    return {"accelerators": accels, "nodes": nodes, "links": links}


def catalogue_tables(prices: dict[str, Any]) -> list[Table]:
    """Three Rich tables: accelerators, nodes, links (display units)."""
    ta = Table(title="accelerators (dense peaks, no sparsity)")
    accels = catalogue.list_accelerators()
    ta.add_column("name", min_width=max(map(len, accels)), no_wrap=True)
    for col in ("peak bf16 TFLOP/s", "memory GiB", "HBM TB/s", "TDP W", "$/GPU-h"):
        ta.add_column(col, justify="right")
    for key, a in accels.items():
        price = prices.get(key)
        cost = f"{price.usd_per_gpu_hour:.2f} ({price.provider})" if price else "-"
        ta.add_row(
            key,
            _peak16(dict(a.peak_flops)),
            f"{a.memory_bytes / 2**30:.0f}",
            f"{a.memory_bandwidth_bytes_per_s / 1e12:.3g}",
            f"{a.tdp_w:.0f}",
            cost,
        )
    tn = Table(title="nodes (scale-up GB/s per direction per GPU; scale-out per NIC)")
    nodes = catalogue.list_nodes()
    tn.add_column("name", min_width=max(map(len, nodes)), no_wrap=True)
    for col in ("accelerator", "GPUs/node", "scale-up", "scale-out", "fabric"):
        tn.add_column(col, justify="right" if col == "GPUs/node" else "left")
    for key, p in nodes.items():
        up, out = p.node.scale_up, p.node.scale_out
        tn.add_row(
            key,
            p.accelerator,
            str(p.node.gpus_per_node),
            f"{up.name} {up.bandwidth_bytes_per_s / 1e9:.4g} GB/s",
            f"{p.node.nics_per_node} x {out.name} {fmt_rate(out.bandwidth_bytes_per_s, bits=True)}",
            f"{p.fabric.topology} {p.fabric.oversubscription:g}:1",
        )
    tl = Table(title="links (per direction)")
    links = catalogue.list_links()
    tl.add_column("name", min_width=max(map(len, links)), no_wrap=True)
    for col in ("bandwidth", "(bits)", "latency", "efficiency"):
        tl.add_column(col, justify="right")
    for key, link in links.items():
        bw = link.bandwidth_bytes_per_s
        tl.add_row(
            key,
            fmt_rate(bw),
            fmt_rate(bw, bits=True),
            fmt_duration(link.latency_s),
            f"{link.efficiency:.2f}",
        )
    return [ta, tn, tl]


def _value(q: Quantity) -> str:
    v = q.value
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    formats = {
        "FLOP/s": fmt_flops,
        "B": fmt_bytes,
        "B/s": fmt_rate,
        "s": fmt_duration,
        "FLOP": lambda x: f"{x:.3g} FLOP",
        "W": lambda x: f"{x:.0f} W",
        "USD/GPU-h": lambda x: f"${x:.2f}/GPU-h",
    }
    return formats[q.unit](v) if q.unit in formats else f"{v:g}"


def profile_table(quantities: list[Quantity], title: str) -> Table:
    t = Table(title=title, show_lines=False)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_column("source", overflow="fold")
    previous = None
    for q in quantities:
        t.add_row(q.key, _value(q), "″" if q.source and q.source == previous else q.source)
        previous = q.source
    return t


def register(app: typer.Typer) -> None:
    """Register `llmcap hardware` on the app."""

    @app.command()
    def hardware(
        name: str | None = typer.Argument(
            None, help="A preset (see the list), a user TOML file or a calibrated profile dir "
            "\\[default: list the catalogue]"
        ),
        prices: Path | None = typer.Option(
            None, help="Price file replacing catalogue prices \\[default: catalogue]."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print JSON (SI units) on stdout."),
    ) -> None:
        """List the hardware catalogue, or show one resolved profile with every source."""
        if name is None:
            table = run_guarded(lambda: catalogue.load_prices(prices))
            if json_out:
                echo_json(catalogue_json(table))
                return
            console = Console()
            tables = catalogue_tables(table)
            fold_text(*tables)
            for t in tables:
                console.print(t)
            return
        profile = run_guarded(lambda: catalogue.load_profile(name, prices=prices))
        if json_out:
            echo_json(describe_profile(profile))
            return
        prov = profile.provenance
        title = f"{profile.name} ({prov.kind}{', ' + prov.date if prov.date else ''})"
        t = profile_table(profile_quantities(profile), title)
        fold_text(t)
        Console().print(t)
