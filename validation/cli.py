"""`llmcap validate` (registered on the llmcap app through the `llmcap.commands` entry point).

Parses the options, checks them before anything runs (one-line errors, exit 2), calls
`validation.validate.validate`, renders. Exit status: 0 when every run completed, 1 when a
run failed (the report says which rank and why; completed runs are kept), 130 on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from analysis.cli.common import check_output, echo_json, run_guarded, staged_dir
from hwprofiles.errors import UserError
from validation.compare import ENGINES
from validation.gptconfig import load_config
from validation.monitor.config import MonitorSpec, parse_inject
from validation.monitor.prom import check_port_free
from validation.monitor.rules import Alert
from validation.monitor.thresholds import parse_thresholds
from validation.netns import check_can_link, parse_rate
from validation.spec import DEVICES, PRECISIONS, STRATEGIES, Fault, format_rate
from validation.suite import Matrix, Record

EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


def _items(value: str, field: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UserError(f"{field}: {value!r} is empty; give a comma-separated list")
    return items


def _choices(value: str, field: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = _items(value, field)
    for v in items:
        if v not in allowed:
            raise UserError(f"{field}: {v!r} must be one of {', '.join(allowed)}")
    return tuple(dict.fromkeys(items))


def _nprocs(value: str) -> tuple[int, ...]:
    out = []
    for v in _items(value, "nproc"):
        if not v.isdigit() or int(v) < 1:
            raise UserError(f"nproc: {v!r} must be an integer >= 1")
        out.append(int(v))
    return tuple(sorted(set(out)))


def _links(value: str) -> tuple[float | None, ...]:
    """ "none" (loopback) or rates, e.g. "none,1Gbit,200Mbit"."""
    if not value:
        return (None,)
    return tuple(None if v.lower() == "none" else parse_rate(v) for v in _items(value, "link"))


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM/SIGHUP: unwind like Ctrl-C so ranks and namespaces are removed."""
    raise KeyboardInterrupt


def build_matrix(**o: Any) -> Matrix:
    """The matrix from the CLI options, validated (ValueError names field, value and rule)."""
    links = _links(o["link_bandwidth"])
    nprocs = _nprocs(o["nproc"])
    if any(link is not None for link in links) and max(nprocs) > 1:
        try:
            check_can_link()
        except PermissionError as exc:  # a user error here: one line, exit 2
            raise UserError(str(exc)) from None
    if o["device"] == "cuda":
        import torch

        have = torch.cuda.device_count()
        if max(nprocs) > have:
            raise UserError(f"nproc: {max(nprocs)} ranks need {max(nprocs)} GPUs, found {have}")
    m = Matrix(
        model=load_config(o["model"]),
        nprocs=nprocs,
        strategies=_choices(o["strategy"], "strategy", STRATEGIES),
        precisions=_choices(o["precision"], "precision", PRECISIONS),
        links=links,
        steps=o["steps"],
        warmup=o["warmup"],
        comm_pairs=o["comm_pairs"],
        device=_choices(o["device"], "device", DEVICES)[0],
        threads_per_rank=o["threads_per_rank"],
        seed=o["seed"],
        rounds=o["rounds"],
        fault=Fault.parse(o["inject_fault"]) if o["inject_fault"] else None,
        monitor=None
        if o["no_monitor"]
        else MonitorSpec(thresholds=parse_thresholds(o["alert"]), metrics_port=o["metrics_port"]),
        inject=parse_inject(o["inject"], max(nprocs)),
    )
    if m.inject.link_drop is not None and all(link is None for link in links):
        raise UserError("--inject link-drop", o["inject"], "needs --link-bandwidth (root)")
    if m.monitor is not None and m.monitor.metrics_port:
        for r in range(max(nprocs)):
            check_port_free(m.monitor.metrics_port + r)
    m.specs()  # RunSpec validation of steps, warm-up, ... before anything runs
    if o["hang_timeout"] <= 0 or o["start_timeout"] <= 0:
        raise UserError("timeouts: --hang-timeout and --start-timeout must be > 0 s")
    return m


def canonical_command(m: Matrix, o: dict[str, Any]) -> str:
    """The command that regenerates this report (options spelled out)."""
    links = ",".join("none" if x is None else format_rate(x) for x in m.links)
    parts = [
        "llmcap validate",
        f"--nproc {','.join(map(str, m.nprocs))}",
        f"--model {o['model']}",
        f"--steps {m.steps}",
        f"--precision {','.join(m.precisions)}",
        f"--strategy {','.join(m.strategies)}",
        f"--link-bandwidth {links}",
    ]
    if m.rounds > 1:
        parts.append(f"--rounds {m.rounds}")
    if o["hardware"]:
        parts.append(f"--hardware {o['hardware']}")
    if o["out"]:
        parts.append(f"--out {o['out']}")
    return " ".join(parts)


def register(app: typer.Typer) -> None:
    """Register `llmcap validate` and `llmcap monitor` on the app."""

    @app.command()
    def monitor(
        report_dir: Path = typer.Argument(..., help="An `llmcap validate --out` directory."),
        plot: Path | None = typer.Option(
            None, help="Timeline PNG to write \\[default: REPORT_DIR/monitor.png]"
        ),
        json_out: bool = typer.Option(False, "--json", help="Print runs and alerts as JSON."),
    ) -> None:
        """Replay a finished run's monitor logs: timeline plot, measured vs predicted, alerts."""
        from validation.monitor import replay

        runs = run_guarded(lambda: replay.load(report_dir))
        target = plot or report_dir / "monitor.png"
        run_guarded(lambda: check_output(target, "--plot", "file"))
        replay.plot(runs, target)
        if json_out:
            echo_json({name: {"alerts": r["alerts"], "predicted_step_time_s": r["predicted"]}
                       for name, r in runs.items()})  # fmt: skip
            return
        from analysis.report.fit import Col, fit_table

        out = Console()
        cols = [Col("run", "left", 9, wrap=True), Col("ranks", priority=5)]
        cols += [Col("median ms", priority=8), Col("pred. ms", priority=7)]
        cols += [Col("error", priority=6), Col("alerts", "left", 4, wrap=True)]
        table, dropped = fit_table(cols, replay.summary_rows(runs), out)
        out.print(table)
        if dropped:
            out.print(f"(narrow terminal: columns {', '.join(dropped)} left out; see --json)")
        out.print(f"timeline written to {target}")

    @app.command()
    def validate(
        nproc: str = typer.Option("1,2", help="Rank counts, comma-separated."),
        model: str = typer.Option(
            "auto",
            help="tiny, small, gpt2-small, a config.json, or auto: small, or tiny where bf16 "
            "runs on a CPU without a 16-bit matrix unit (no amx_bf16/avx512_bf16).",
        ),
        steps: int = typer.Option(20, help="Timed steps per run (after the warm-up)."),
        rounds: int = typer.Option(
            1, help="Run the whole matrix this many times, round-robin; steps are pooled."
        ),
        precision: str = typer.Option("fp32,bf16", help="fp32 and/or bf16 (autocast)."),
        strategy: str = typer.Option("ddp,fsdp", help="ddp and/or fsdp (full shard)."),
        link_bandwidth: str = typer.Option(
            "",
            help="Rate-limited links (root), e.g. none,1Gbit,200Mbit; none = loopback "
            "\\[default: none]",
        ),
        hardware: str = typer.Option(
            "",
            help="Profile to predict with, or none "
            "\\[default: this machine's calibration, made now if missing]",
        ),
        out: Path | None = typer.Option(
            None, help="Write report.md, report.json, runs/ here \\[default: none]"
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the report JSON on stdout."),
        warmup: int = typer.Option(3, help="Untimed warm-up steps per run."),
        comm_pairs: int = typer.Option(10, help="DDP sync/no_sync step pairs (comm share)."),
        device: str = typer.Option("cpu", help="cpu (gloo) or cuda (NCCL)."),
        threads_per_rank: int = typer.Option(1, help="Torch threads per CPU rank."),
        seed: int = typer.Option(0, help="Seed of weights and synthetic tokens."),
        engines: str = typer.Option(",".join(ENGINES), help="Prediction engines."),
        hang_timeout: float = typer.Option(120.0, help="Seconds without progress = hung."),
        start_timeout: float = typer.Option(180.0, help="Seconds for ranks to start training."),
        repredict: Path | None = typer.Option(
            None,
            help="Only redo the predictions of the report in this directory "
            "\\[default: none: run the matrix]",
        ),
        remeasure_drifted: bool = typer.Option(
            False,
            help="When the pre-run re-probe finds the profile drifted, put what it measured "
            "in place (the model's GEMMs re-measured, attention, memory-bound and collective "
            "rates, host contention) instead of leaving those runs out of the headline.",
        ),
        inject_fault: str = typer.Option("", hidden=True, help="RANK:exit|raise|hang[:STEP]"),
        alert: str = typer.Option(
            "",
            help="Alert thresholds, e.g. step_time=+15%,memory=90%,power=+10%,straggler=+25%,"
            "hang=60s,window=5 \\[default: these]",
        ),
        on_alert: str = typer.Option(
            "",
            help="Shell command run at each alert (the alert as JSON in $LLMCAP_ALERT) "
            "\\[default: none]",
        ),
        metrics_port: int = typer.Option(
            0, help="Serve Prometheus metrics on 127.0.0.1:PORT+rank while runs go (0: off)."
        ),
        no_monitor: bool = typer.Option(False, help="Do not watch the runs live."),
        inject: str = typer.Option(
            "",
            help="Faults that prove the monitor: slow-rank=R:FACTOR\\[@stepN], hang-rank=R@stepN, "
            "link-drop=RATE@stepN (with --link-bandwidth) \\[default: none]",
        ),
    ) -> None:
        """Train a real GPT with torch.distributed here; set measured beside predicted."""
        import torch  # noqa: F401  (needs the torch extra: a missing one is a one-line error)

        o = dict(locals())  # the options, by name
        from validation.validate import resolve_hardware
        from validation.validate import validate as run_validation

        err = Console(stderr=True)
        if repredict is not None:
            _repredict(repredict, hardware, engines, json_out, err)
            return
        if out is not None:
            run_guarded(lambda: check_output(out, "--out", "dir"))  # before any run
        why = _auto_model(o)
        matrix = run_guarded(lambda: build_matrix(**o))
        eng = run_guarded(lambda: _choices(engines, "engines", ENGINES))
        if why:  # said once the input is known good: a bad option stays a one-line error
            err.print(why, markup=False, highlight=False)
        hw = run_guarded(
            lambda: resolve_hardware(
                hardware or None,
                matrix.device,
                threads_per_rank,
                err.print,
                matrix.model.attention_shape(),
            )
        )
        hw, drift = run_guarded(lambda: _guard(hw, matrix, err, remeasure_drifted))
        n_runs = len(matrix.specs()) * matrix.rounds
        done: list[Record] = []

        def progress(rec: Record) -> None:
            done.append(rec)
            what = (
                f"{rec.measured.step.median_s * 1e3:.1f} ms/step"
                if rec.measured
                else f"FAILED: {rec.failure.reason if rec.failure else '?'}"
            )
            err.print(f"[{len(done)}/{n_runs}] {rec.spec.run_id}: {what} ({rec.wall_s:.0f} s)")

        old = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
        try:
            # the results are staged beside --out and renamed into place when the report is
            # written (Ctrl-C included: the report holds the completed runs); a failure or a
            # second Ctrl-C leaves nothing behind
            stage = (
                staged_dir(out, "--out", check=False)
                if out is not None
                else tempfile.TemporaryDirectory(prefix="llmcap-validate-")
            )
            with stage as tmp:
                v = run_validation(
                    matrix,
                    hw,
                    out=Path(tmp),
                    command=canonical_command(matrix, o),
                    engines=eng,
                    on_done=progress,
                    drift=drift,
                    on_alert=alert_printer(err, on_alert),
                    notes=[why] if why else [],
                    hang_timeout_s=hang_timeout,
                    start_timeout_s=start_timeout,
                )
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        _render(v.doc, json_out, out)
        if v.result.interrupted:
            raise typer.Exit(EXIT_INTERRUPTED)
        if not v.ok:
            raise typer.Exit(EXIT_RUN_FAILED)


def _auto_model(o: dict[str, Any]) -> str:
    """Resolve `--model auto` in `o` (`gptconfig.auto_model`); the reason when it chose tiny."""
    from hwprofiles.calibration.machine import cpu_16bit_matrix_flag
    from validation.gptconfig import AUTO, auto_model

    if o["model"] != AUTO:
        return ""
    precisions = tuple(v.strip() for v in o["precision"].split(","))
    o["model"], why = auto_model(o["device"], precisions, cpu_16bit_matrix_flag())
    return why


def _guard(hw: Any, matrix: Matrix, err: Console, again: bool = False) -> tuple[Any, list[Any]]:
    """Print the profile's status line; on a CPU, re-probe the component rates the runs rest
    on (GEMMs, attention, memory-bound kernels, collectives, host contention) and warn of
    drift; with `again`, put the drifted figures measured now in place and probe GEMMs once
    more."""
    from validation.components import check_components, replaced
    from validation.drift import (
        check_contention,
        check_drift,
        drift_notes,
        drifted_dtypes,
        dtypes_of,
        remeasure,
        status_line,
        with_contention,
    )
    from validation.guard import after_replacement, component_notes
    from validation.hollow import with_passes

    err.print(status_line(hw), markup=False, highlight=False)
    if hw is None or hw.provenance.kind != "calibrated" or matrix.device != "cpu":
        return hw, []
    threads = matrix.threads_per_rank
    rows = check_drift(hw, matrix.model, matrix.precisions, threads=threads)
    off = drifted_dtypes(rows)
    if again and off:
        _print_probes(rows, err)
        err.print(f"re-measuring the model's {', '.join(off)} GEMMs in place", markup=False)
        hw = remeasure(hw, matrix.model, off, threads=threads)
        rows = check_drift(hw, matrix.model, matrix.precisions, threads=threads)
        rows = [r | {"remeasured": r["dtype"] in off} for r in rows]
    _print_probes(rows, err)
    loopback = any(link is None for link in matrix.links)
    parts = check_components(
        hw, matrix.model, dtypes_of(matrix.precisions), max(matrix.nprocs) > 1 and loopback,
        threads=threads,
    )  # fmt: skip
    if again and any(r["drifted"] for r in parts):
        hw = replaced(hw, parts)
        parts = after_replacement(hw, parts)
    _print_probes(parts, err)
    # host contention only where it is used: its benchmark starts 2 x 3 processes (torch
    # imports), 135 s of the guard's 153 s under load 11 on the 2-core VM (2026-12-03), and a
    # drift of it is never withheld (`guard` docstring)
    ranks = min(max(matrix.nprocs), 2)
    held = check_contention(hw, matrix.precisions, ranks, threads) if again else []
    for r in held:
        err.print(
            f"re-probe host contention {r['kernel']}: {r['measured']:.2f}, profile "
            f"{r['profile']:.2f}" + ("  DRIFTED" if r["drifted"] else ""),
            markup=False,
        )
    if again and any(r["drifted"] for r in held):
        hw = with_contention(hw, held)
        held = [r | {"remeasured": True} for r in held]
    frame = _framework(hw, matrix, threads)
    hw = with_passes(hw, {r["key"]: r["measured_s"] for r in frame})
    _print_probes(frame, err, "measure")
    rows += parts + held + frame
    for note in drift_notes(rows) + component_notes(rows):
        err.print(f"warning: {note}", markup=False, highlight=False)
    return hw, rows


def _framework(hw: Any, matrix: Matrix, threads: int) -> list[dict[str, Any]]:
    """The model's framework host time per forward + backward, measured now on its hollow
    twin (`validation/hollow.py`), beside what the profile's generic terms price."""
    from simulator.costmodel.framework import host_times
    from validation.hollow import measure_passes, rows
    from validation.mapping import model_spec, stack_options

    passes = measure_passes(matrix.model, matrix.strategies, matrix.precisions, threads)
    spec, opts = model_spec(matrix.model), stack_options("cpu")
    generic = {}
    for key in passes:
        _, strategy, precision = key.split("|")
        zero = 3 if strategy == "fsdp" else 0
        layers = spec.num_hidden_layers
        optimizer, hooks = host_times(hw.host, spec, layers, zero, 1, opts, precision)
        generic[key] = float(optimizer if precision == "optimizer" else hooks)
    return rows(passes, generic)


def _print_probes(rows: list[dict[str, Any]], err: Console, verb: str = "re-probe") -> None:
    from validation.guard import probe_rows

    for name, what, meas, prof, speed, state in probe_rows({"drift": rows}):
        flag = {"ok": "", "DRIFTED": "  DRIFTED", "re-measured": "  (re-measured)"}[state]
        err.print(
            f"{verb} {name} {what}: {meas}, profile {prof}, speed {speed}{flag}",
            markup=False,
            highlight=False,
        )


def alert_printer(err: Console, command: str) -> Callable[[Alert], None]:
    """Print each alert in one line; run `command` (if any) with the alert as JSON in
    ``$LLMCAP_ALERT``, without waiting for it; a failing command is reported, never fatal."""

    def on_alert(alert: Alert) -> None:
        err.print(alert.line(), markup=False, highlight=False)
        if not command:
            return
        env = {**os.environ, "LLMCAP_ALERT": json.dumps(alert.to_dict())}
        try:
            subprocess.Popen(command, shell=True, env=env, stdin=subprocess.DEVNULL)
        except OSError as exc:
            err.print(f"--on-alert: {command!r} could not start: {exc}", markup=False)

    return on_alert


def _repredict(out: Path, hardware: str, engines: str, json_out: bool, err: Console) -> None:
    """`--repredict DIR`: new predictions for stored measurements; exit 1 if runs failed."""
    from validation import validate as v

    eng = run_guarded(lambda: _choices(engines, "engines", ENGINES))
    doc = run_guarded(lambda: v.read_report(out))
    st = doc["settings"]
    hw = run_guarded(
        lambda: v.resolve_hardware(
            hardware or None, st["device"], st["threads_per_rank"], err.print
        )
    )
    from validation.drift import status_line

    err.print(status_line(hw), markup=False, highlight=False)
    result = run_guarded(lambda: v.repredict(out, hw, engines=eng, hardware_spec=hardware))
    _print_probes(result.doc.get("drift", []), err, "re-check (probe before the runs)")
    _render(result.doc, json_out, out)
    if not result.ok:
        raise typer.Exit(EXIT_RUN_FAILED)


def _render(doc: dict[str, Any], json_out: bool, out: Path | None) -> None:
    from validation import report

    if json_out:
        echo_json(doc)
    else:
        console = Console()
        for table, dropped in report.fitted_tables(doc, console):
            console.print(table)
            if dropped:
                console.print(f"(narrow terminal: {', '.join(dropped)} left out; see report.md)")
        for note in doc["notes"]:
            console.print(f"note: {note}")
    failed = [r for r in doc["runs"] if "failure" in r]
    err = Console(stderr=True)
    for r in failed:
        err.print(f"llmcap: run {r['run']} failed: {r['failure']['reason']}")
    if out is not None:
        err.print(f"report written to {out / 'report.md'} and {out / 'report.json'}")
