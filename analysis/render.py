"""Terminal rendering of a `StepResult` (Rich tables); units converted here, at the edge."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from analysis.labels import label
from analysis.planner.costs import SECONDS_PER_DAY
from simulator.result import StepResult

GiB = 2**30


def _s(x: float) -> str:
    if x >= 1:
        return f"{x:.3f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.2f} ms"
    return f"{x * 1e6:.1f} µs"


def parallel_text(par: dict) -> str:
    """One line per layout from `StepResult.inputs["parallel"]`, as the planner writes it."""
    parts = [f"tp{par['tp']}", f"pp{par['pp']}"]
    if par["vpp"] > 1:
        parts.append(f"vpp{par['vpp']}")
    if par["cp"] > 1:
        parts.append(f"cp{par['cp']}")
    parts += [f"dp{par['dp']}", f"mb{par['micro_batch_size']}", f"gbs{par['global_batch_size']}"]
    if par.get("ep", 1) > 1:
        parts.append(f"ep{par['ep']}" + (f" etp{par['etp']}" if par.get("etp", 1) > 1 else ""))
    if par["zero_stage"]:
        parts.append(f"zero{par['zero_stage']}")
    if par["sequence_parallel"]:
        parts.append("sp")
    if par["recompute"] != "none":
        parts.append(f"rc-{par['recompute']}")
    return " ".join(parts)


def render_step(
    r: StepResult,
    console: Console | None = None,
    layout_note: str = "given",
    seq_note: str = "given",
) -> None:
    """Print the headline numbers, the time breakdown, memory and the seed formulas.

    `layout_note` and `seq_note` say where the layout and the sequence length come from.
    """
    con = console or Console()
    inp = r.inputs
    par = inp["parallel"]
    hw = inp["hardware"]
    seq = inp["seq_len"]
    gbs = par["global_batch_size"]
    con.print(
        f"[bold]{inp['model']['name']}[/bold] on {r.num_gpus} x {hw['accelerator']} "
        f"({hw['node']}), {par['precision']}, {r.engine} engine",
        highlight=False,
    )
    con.print(f"layout: {parallel_text(par)} ({layout_note})", highlight=False)
    con.print(
        f"sequence: {seq:,} tokens ({seq_note}); global batch {gbs:,} sequences "
        f"= {gbs * seq / 1e6:.2f}M tokens per step",
        highlight=False,
    )
    head = Table(show_header=False)
    head.add_column("metric")
    head.add_column("value", justify="right")
    rows = [
        ("step time", _s(r.step_time_s)),
        ("tokens/s (per GPU)", f"{r.tokens_per_s:,.0f} ({r.tokens_per_s_per_gpu:,.0f})"),
        ("model TFLOP/s per GPU", f"{r.model_tflops_per_gpu:.1f}"),
        (
            "MFU / HFU" + (" (active params)" if "active_params" in r.inputs["model"] else ""),
            f"{r.mfu:.1%} / {r.hfu:.1%}",
        ),
        ("exposed communication", f"{_s(r.comm_exposed_s)} ({r.comm_fraction:.1%} of step)"),
        (
            "memory per GPU",
            f"{r.memory_per_gpu_bytes / GiB:.1f} of "
            f"{r.memory_capacity_bytes / GiB:.1f} GiB"
            + ("" if r.fits_in_memory else "  DOES NOT FIT"),
        ),
        (
            "energy per step / avg power per GPU",
            f"{r.energy_per_step_j / 1e3:,.1f} kJ / {r.avg_power_w:.0f} W",
        ),
    ]
    if r.power:
        rows.append(
            (
                "avg power per GPU: board / node / facility",
                f"{r.avg_power_w:.0f} / {r.power['avg_node_power_per_gpu_w']:.0f} / "
                f"{r.power['avg_facility_power_per_gpu_w']:.0f} W",
            )
        )
    if r.scaling_efficiency is not None:
        rows.append(("scaling efficiency vs 1 ideal GPU", f"{r.scaling_efficiency:.1%}"))
    if r.time_to_train_s is not None:
        rows.append(("time to train", f"{r.time_to_train_s / SECONDS_PER_DAY:,.1f} days"))
    for k, v in rows:
        head.add_row(k, v)
    con.print(head)

    bd = Table(title="where the step time goes", title_justify="left")
    bd.add_column("part")
    bd.add_column("time", justify="right")
    bd.add_column("share", justify="right")
    for k, v in r.breakdown.items():
        if v > 0:
            bd.add_row(label(k), _s(v), f"{v / r.step_time_s:.1%}")
    con.print(bd)

    if r.whole_run:
        render_whole_run(r, con)

    doc = r.document
    dt = Table(title="seed document formulas vs llmcap", title_justify="left")
    dt.add_column("quantity")
    dt.add_column("seed formula", justify="right")
    dt.add_column("llmcap", justify="right")
    dt.add_row(
        "speed-up over 1 GPU (m x k)",
        f"{doc['speedup_m_times_k']:,.0f}",
        f"{doc['speedup_llmcap']:,.0f}",
    )
    if doc.get("step_time_s_linear") is not None:
        dt.add_row("step time", _s(doc["step_time_s_linear"]), _s(r.step_time_s))
    if "energy_mixed_literal_j" in doc:
        dt.add_row(
            "step energy, E x P/L (as printed)",
            f"{doc['energy_mixed_literal_j'] / 1e3:,.1f} kJ",
            f"{doc['energy_llmcap_j'] / 1e3:,.1f} kJ",
        )
        dt.add_row(
            "step energy, E x L/P (intended)",
            f"{doc['energy_mixed_intended_j'] / 1e3:,.1f} kJ",
            f"{doc['energy_llmcap_j'] / 1e3:,.1f} kJ",
        )
    con.print(dt)
    if "energy_note" in doc:
        note = doc["energy_note"].replace("is energy_llmcap_j", "is the llmcap column")
        con.print(f"[dim]{note}[/dim]")
    for note in r.notes:
        con.print(f"[yellow]note:[/yellow] {note}")
    con.print(f"[dim]provenance: {r.provenance.get('modelled', '')}[/dim]")


def _dur(x: float) -> str:
    if x >= SECONDS_PER_DAY:
        return f"{x / SECONDS_PER_DAY:,.1f} days"
    if x >= 3600:
        return f"{x / 3600:,.1f} h"
    if x >= 60:
        return f"{x / 60:,.1f} min"
    return _s(x)


def render_whole_run(r: StepResult, con: Console) -> None:
    """The whole run: goodput, failures, checkpoints, restarts and energy to train."""
    w = r.whole_run
    t = Table(title="whole run (failures, checkpoints, restarts)", title_justify="left")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("time to train, ideal (steps only)", _dur(w["time_to_train_ideal_s"]))
    t.add_row("time to train, expected wall clock", _dur(w["time_to_train_s"]))
    if "time_to_train_p50_s" in w:
        s = w["time_to_train_sampled"]
        t.add_row(
            f"  SimPy P10 / P50 / P90 ({s['runs']} runs)",
            " / ".join(_dur(w[f"time_to_train_p{q}_s"]) for q in (10, 50, 90)),
        )
    t.add_row("goodput", f"{w['goodput_fraction']:.1%}")
    t.add_row(
        "job MTBF / expected interruptions",
        f"{_dur(w['job_mtbf_s'])} / {w['expected_interruptions']:,.1f}",
    )
    how = "optimal" if w["checkpoint_interval_optimal"] else "given"
    t.add_row(f"checkpoint interval ({how})", _dur(w["checkpoint_interval_s"]))
    t.add_row(
        "checkpoint size / write" + (" (async; blocks)" if w["async_checkpoint"] else ""),
        f"{w['checkpoint_bytes'] / 1e9:,.0f} GB / {_s(w['checkpoint_write_s'])}"
        + (f" ({_s(w['checkpoint_block_s'])})" if w["async_checkpoint"] else ""),
    )
    t.add_row("restart (detect, relaunch, load, warm-up)", _dur(w["restart_s"]))
    for k, v in w["time_breakdown_s"].items():
        t.add_row(f"  time: {k.replace('_', ' ')}", _dur(v))
    for level in ("gpu", "node", "facility"):
        key = f"energy_to_train_{level}_j"
        if key in w:
            t.add_row(f"energy to train, {level}", f"{w[key] / 3.6e9:,.1f} MWh")
    con.print(t)
