"""`llmcap calibrate`: measure this machine and save it as a hardware profile.

Thin entry point: parses options, calls `hwprofiles.calibration.run.calibrate`, renders a
progress bar and the summary on stderr/stdout (``--json``: the summary JSON on stdout).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from analysis.cli.common import check_output, echo_json, fail, run_guarded
from hwprofiles.errors import UserError
from hwprofiles.outputs import exclusive


def _csv(value: str, field: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise UserError(f"{field}: {value!r} is empty; give a comma-separated list")
    return items


def _ints(value: str, field: str) -> tuple[int, ...]:
    out = []
    for item in _csv(value, field):
        try:
            out.append(int(item))
        except ValueError:
            raise UserError(f"{field}: {item!r} is not an integer") from None
    return tuple(out)


def _locked(target: Path, cfg: Any, force: bool, bar: Any) -> dict[str, Any]:
    """Calibrate holding a lock beside `target`: a second `--out SAME` is refused at once."""
    from hwprofiles.calibration.run import calibrate as run_calibration

    with exclusive(target, "--out"):
        return run_calibration(cfg, target, force, bar)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM handler: unwind like Ctrl-C, so workers are stopped and temporaries removed."""
    raise KeyboardInterrupt


class _Bar:
    """rich progress bar on stderr, fed by the calibration's ProgressHook calls."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("calibrating"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        )
        self._task: Any = None

    def __enter__(self) -> _Bar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def start(self, total: int) -> None:
        self._task = self._progress.add_task("", total=total)

    def advance(self, label: str) -> None:
        self._progress.update(self._task, advance=1, description=label)


def summary_table(summary: dict[str, Any], where: Path) -> Table:
    """The few figures a user wants after a calibration (units converted for display)."""
    t = Table(title=f"calibrated profile {where}", show_header=True)
    t.add_column("quantity")
    t.add_column("value", justify="right")
    comp = summary["compute"]
    for dtype, peak in comp["peak_flops"].items():
        t.add_row(f"GEMM peak {dtype} (measured)", f"{peak / 1e12:.3g} TFLOP/s")
    mem = summary["memory"]
    t.add_row(
        "memory bandwidth (copy/triad best)", f"{mem['bandwidth_bytes_per_s'] / 1e9:.3g} GB/s"
    )
    for fit in summary["network"]["fits"]:
        if fit["collective"] == "all_reduce":
            t.add_row(
                f"{fit['backend']} all_reduce n={fit['world_size']} α / max busbw",
                f"{fit['alpha_s'] * 1e6:.3g} µs / {fit['max_busbw_bytes_per_s'] / 1e9:.3g} GB/s",
            )
    p = summary["power"]
    t.add_row(
        f"power per device ({p['kind']})", f"idle {p['idle_w']:.3g} W, max {p['tdp_w']:.3g} W"
    )
    n = summary["noise"]
    t.add_row("noisy measurements", f"{n['noisy']} of {n['measurements']}")
    st = summary.get("stability", {})
    if st:
        why = "; ".join(st.get("reasons", []))
        t.add_row("steadiness (workload GEMMs)", st["verdict"] + (f": {why}" if why else ""))
    return t


def register(app: typer.Typer) -> None:
    """Register `llmcap calibrate` on the app."""

    @app.command()
    def calibrate(
        device: str = typer.Option("cpu", help="cpu or cuda."),
        dtypes: str = typer.Option(
            "",
            help="Comma-separated, e.g. fp32,bf16 \\[default: fp32,bf16 on cpu; "
            "fp32,tf32,bf16,fp16 on cuda]",
        ),
        world_sizes: str = typer.Option("1,2", help="Collective world sizes (processes)."),
        quick: bool = typer.Option(
            False, help="Small sizes: 1.5-3 min fp32-only on a 2-core CPU (docs/validation.md)."
        ),
        out: Path | None = typer.Option(
            None, help="Profile directory \\[default: saved by --name in ~/.llmcap/profiles]"
        ),
        name: str = typer.Option("", help="Name to save under \\[default: <hostname>-<device>]"),
        force: bool = typer.Option(
            False,
            help="Overwrite an existing profile at --out (a saved profile, without --out, "
            "is always refreshed).",
        ),
        threads_per_rank: int = typer.Option(1, help="Torch threads per CPU rank (device)."),
        timeout: float = typer.Option(120.0, help="Seconds before a collective group is stopped."),
        level: str = typer.Option("", hidden=True, help="tiny|quick|full (overrides --quick)."),
        json_out: bool = typer.Option(False, "--json", help="Print the summary JSON on stdout."),
        attention_shape: str = typer.Option(
            "",
            help="A workload's SDPA shapes, BATCHxHEADSxSEQxHEAD_DIM, comma-separated "
            "(e.g. 4x4x128x64): timed per pass (forward, backward) so that predictions "
            "for that workload price its attention as measured \\[default: none]",
        ),
    ) -> None:
        """Measure this machine with torch micro-benchmarks and write a hardware profile."""
        from hwprofiles.calibration.collectives import CollectiveError
        from hwprofiles.calibration.plan import AttentionShape
        from hwprofiles.calibration.run import CalibrationConfig
        from hwprofiles.calibration.store import (
            default_name,
            default_profile_root,
            is_profile_dir,
            safe_name,
        )
        from hwprofiles.calibration.writer import check_target

        def configure() -> tuple[CalibrationConfig, Path, bool]:
            cfg = CalibrationConfig(
                device=device,
                dtypes=_csv(dtypes, "dtypes") if dtypes else (),
                world_sizes=_ints(world_sizes, "world-sizes"),
                level=level or ("quick" if quick else "full"),
                threads_per_rank=threads_per_rank,
                timeout_s=timeout,
                name=safe_name(name) if name else "",
                attention_shapes=tuple(
                    AttentionShape.parse(t) for t in attention_shape.split(",") if t.strip()
                ),
            )
            cfg.validate()
            target = out or default_profile_root() / (cfg.name or default_name(device))
            check_output(target, "--out", "dir")  # refuse before measuring, not after
            # a saved profile (no --out) is refreshed: `calibrate --quick && validate` must
            # work on a second run; an explicit --out is still only replaced with --force
            refresh = out is None and is_profile_dir(target)
            check_target(target, force or refresh)
            return cfg, target, force or refresh

        cfg, target, force = run_guarded(configure)
        err = Console(stderr=True)
        if out is None and is_profile_dir(target):
            err.print(f"refreshing the saved profile {target} (it is replaced when done)")
        old_term = signal.signal(signal.SIGTERM, _interrupt)  # clean up on kill/timeout too
        try:
            with _Bar(err) as bar:
                summary = run_guarded(lambda: _locked(target, cfg, force, bar))
        except CollectiveError as exc:
            fail(str(exc), code=1)
        except KeyboardInterrupt:
            fail("interrupted; no profile was written", code=130)
        finally:
            signal.signal(signal.SIGTERM, old_term)
        hint = target.name if out is None else str(target)
        err.print(f"saved profile to {target}  (use it with --hardware {hint})")
        if json_out:
            echo_json({"path": str(target), **summary})
        else:
            Console().print(summary_table(summary, target))
