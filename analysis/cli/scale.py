"""`llmcap scale`: speed-up, scaling efficiency and communication share over GPU counts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from analysis.cli import runopts as ro
from analysis.cli.common import check_output, echo_json, run_guarded
from analysis.cli.progress import StepProgress
from hwprofiles.errors import UserError
from hwprofiles.typed import number
from simulator.limits import MAX_LINK_GBPS

Opt = typer.Option
PLOT_SUFFIXES = ("", ".png", ".svg", ".pdf")  # what matplotlib's Agg backend writes


def _numbers(text: str, what: str, cast: type = int, maximum: float | None = None) -> list[Any]:
    """A comma-separated list of positive, finite numbers (at most `maximum`)."""
    try:
        out = [cast(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise UserError(f"{what}: {text!r} must be a comma-separated list of numbers") from None
    if not out:
        raise UserError(what, text, "is empty; give a comma-separated list of numbers")
    return [
        number(x, what, minimum=0, strict=True, maximum=maximum, integer=cast is int) for x in out
    ]


def fix_sweep_layout(spec: dict[str, Any], counts: list[int], best_layout: bool) -> tuple[str, str]:
    """Settle what the sweep keeps fixed in `spec` (in place); returns how the layout is chosen.

    The sequence length and the global batch are fixed over the sweep (strong scaling). With
    --tp and --pp given, that layout; with --best-layout, the fastest layout at each count;
    else the fastest at the smallest count among those valid at every count, whose
    model-parallel part is then kept while dp grows. Returns (how the layout is chosen, where
    the sequence length comes from).
    """
    from analysis.autolayout import FLAG_TO_FIELD, fastest_layout
    from analysis.runconfig import (
        LAYOUT_FLAGS,
        default_global_batch,
        resolve_hardware,
        resolve_model,
    )
    from simulator.models_catalogue import pretraining_seq_len
    from simulator.parallel import RECOMPUTE_MODES

    par, train = spec["parallelism"], spec["training"]
    model = resolve_model(spec["model"])
    seq_note = "given"
    if train["seq_len"] is None:
        train["seq_len"], seq_note = pretraining_seq_len(model)
    if train["global_batch"] is None:
        train["global_batch"] = default_global_batch(train["seq_len"])
    given = {k: (par[k] if k in par else train[k]) for k in LAYOUT_FLAGS}
    if given["tp"] is not None and given["pp"] is not None:
        return "given", seq_note
    if best_layout:
        return "searched at each GPU count (--best-layout)", seq_note
    hw = resolve_hardware(spec["cluster"])
    chosen = fastest_layout(
        model,
        hw,
        counts[0],
        train["precision"],
        train["seq_len"],
        train["global_batch"],
        given,
        gpu_counts=tuple(counts),
    )
    for flag, col in FLAG_TO_FIELD.items():
        if flag == "dp":
            continue
        value = chosen.row[col]
        if flag == "recompute":
            value = RECOMPUTE_MODES[value]
        elif flag == "sp":
            value = bool(value)
        (par if flag in par else train)[flag] = value
    how = f"searched: the fastest at {counts[0]} GPUs valid at every count; dp grows"
    return how, seq_note


def register(app: typer.Typer) -> None:
    """Register `llmcap scale`."""

    @app.command()
    def scale(
        gpus: Annotated[str, Opt(help="GPU counts, comma-separated (e.g. 128,256,512)")],
        model: ro.Model = None,
        hardware: ro.Hardware = None,
        gpus_per_node: ro.GpusPerNode = None,
        scale_out: Annotated[
            str | None,
            Opt(
                help="NIC line rates to compare, Gb/s per direction, e.g. 100,400 "
                "\\[default: the node's]"
            ),
        ] = None,
        tp: ro.Tp = None,
        pp: ro.Pp = None,
        vpp: ro.Vpp = None,
        cp: ro.Cp = None,
        sp: ro.Sp = None,
        zero: ro.Zero = None,
        micro_batch: ro.MicroBatch = None,
        global_batch: Annotated[
            int | None,
            Opt(help="Sequences per step, fixed over the sweep \\[default: ~4M tokens per step]"),
        ] = None,
        seq_len: ro.SeqLen = None,
        precision: ro.Precision = None,
        recompute: ro.Recompute = None,
        config: ro.Config = None,
        engine: ro.Engine = "analytic",
        seed: ro.Seed = 0,
        jitter: ro.Jitter = 0.0,
        speed_sigma: ro.SpeedSigma = 0.0,
        contention: ro.Contention = True,
        best_layout: Annotated[
            bool,
            Opt(help="Search the fastest layout at each GPU count (not one for the whole sweep)"),
        ] = False,
        plot: Annotated[
            Path | None, Opt(help="Write the speed-up plot (PNG/SVG/PDF) \\[default: none]")
        ] = None,
        json_out: ro.JsonOut = False,
        progress: Annotated[
            bool,
            Opt(
                "--progress/--no-progress",
                help="Progress on stderr: a bar at a terminal, a line every 15 s elsewhere",
            ),
        ] = True,
    ) -> None:
        """Strong scaling of one model: speed-up vs the seed's linear m × k, efficiency, comm."""

        def go() -> tuple[list[Any], dict[str, Any]]:
            from analysis.runconfig import build_run, merge, read_run_file
            from analysis.scaling import sweep

            if plot is not None:
                check_output(plot, "--plot")  # before the sweep, not after it
                if plot.suffix.lower() not in PLOT_SUFFIXES:
                    raise UserError("--plot", str(plot), "must end in .png, .svg or .pdf")
            counts = _numbers(gpus, "gpus")
            rates = (
                None
                if scale_out is None
                else _numbers(scale_out, "--scale-out", float, MAX_LINK_GBPS)
            )
            file_spec = read_run_file(config) if config else None
            over = ro.overrides(
                model=model,
                hardware=hardware,
                gpus=counts[0],
                gpus_per_node=gpus_per_node,
                tp=tp,
                pp=pp,
                vpp=vpp,
                cp=cp,
                dp=-1,
                sp=sp,
                zero=zero,
                micro_batch=micro_batch,
                global_batch=global_batch,
                seq_len=seq_len,
                precision=precision,
                recompute=recompute,
            )
            spec = merge(file_spec, over)
            how, seq_note = fix_sweep_layout(spec, counts, best_layout)
            first = build_run(spec)

            def workload(n: int):
                spec["cluster"]["gpus"] = n
                return build_run(spec).workload

            kw = ro.des_options(engine, seed, jitter, speed_sigma, contention)
            with StepProgress("scale", progress) as bar:
                bar.stage(f"predicting ({engine})")
                points = sweep(
                    workload,
                    first.hardware,
                    counts,
                    engine,
                    first.options,
                    rates,
                    progress=bar.update,
                    **kw,
                )
            meta = {
                "model": first.workload.model.name,
                "hardware": first.hardware.name,
                "engine": engine,
                "global_batch": first.workload.parallel.global_batch_size,
                "seq_len": first.workload.seq_len,
                "seq_len_source": seq_note,
                "layout_source": how,
                "layout": {
                    k: getattr(first.workload.parallel, k)
                    for k in ("tp", "pp", "vpp", "cp", "zero_stage")
                },
            }
            return points, meta

        points, meta = run_guarded(go)
        if plot is not None:
            from analysis.scaling import plot as draw

            title = f"{meta['model']} on {meta['hardware']} ({meta['engine']})"
            run_guarded(lambda: draw(points, plot, title))
        if json_out:
            from analysis.scaling import to_records

            echo_json({"inputs": meta, "points": to_records(points)})
            return
        _render(points, meta)


def _render(points: list[Any], meta: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    con = Console()
    per_count = meta["layout_source"].startswith("searched at each")
    con.print(
        escape(
            f"{meta['model']} on {meta['hardware']}, {meta['engine']} engine; global batch "
            f"{meta['global_batch']:,} sequences of {meta['seq_len']:,} tokens "
            f"({meta['seq_len_source']})"
        ),
        highlight=False,
    )
    first = " ".join(w for w in points[0].layout.split() if not w.startswith("dp"))
    lay = "per GPU count, below" if per_count else first
    con.print(escape(f"layout: {lay} ({meta['layout_source']})"), highlight=False)
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    many = len({p.scale_out_gbps for p in points}) > 1
    cols = ["GPUs", "dp"] + (["NIC Gb/s"] if many else [])
    cols += ["step s", "speedup", "m×k", "eff", "comm", "ktok/s", "MFU"]
    for col in cols:
        t.add_column(col, justify="right", min_width=len(col))
    for p in points:
        t.add_row(
            *([str(p.gpus), str(p.dp)] + ([f"{p.scale_out_gbps:g}"] if many else [])),
            f"{p.step_time_s:.3g}",
            f"{p.speedup:.0f}",
            f"{p.linear_speedup:.0f}",
            f"{p.efficiency:.0%}",
            f"{p.comm_share:.0%}",
            f"{p.tokens_per_s / 1e3:,.0f}",
            f"{p.mfu:.0%}" + ("" if p.fits_in_memory else " (no fit)"),
        )
    con.print(t)
    if per_count:
        for p in points:
            con.print(f"{p.gpus:>6} GPUs: {p.layout}", highlight=False)
