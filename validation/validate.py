"""`validate`: the library function behind ``llmcap validate``.

Resolve the hardware profile (given, saved from an earlier ``llmcap calibrate``, or calibrated
now), run the matrix, predict every run with both engines, compare, and write the report
(``report.json``, ``report.md`` and the per-run directories under ``out``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from analysis.cli.common import dumps, write_atomic
from hwprofiles.calibration.machine import load_average, machine_info
from hwprofiles.errors import UserError
from hwprofiles.inputs import path_kind, read_json
from hwprofiles.profile import HardwareProfile
from validation import report
from validation.compare import (
    ENGINES,
    Predictor,
    compare,
    diagnostics,
    predict_runs,
    speed_probes,
    summarise,
)
from validation.drift import drift_notes, status_line
from validation.guard import component_notes, drifted_during, kind, material, recheck
from validation.hollow import with_passes
from validation.monitor.config import MonitorSpec
from validation.monitor.rules import Alert
from validation.spec import RunSpec
from validation.suite import Matrix, Record, SuiteResult, run_matrix

NO_HARDWARE = "none"
"""`--hardware none`: measure only, predict nothing."""


def resolve_hardware(
    spec: str | None,
    device: str,
    threads_per_rank: int,
    log: Callable[[str], None],
    attention_shape: str = "",
) -> HardwareProfile | None:
    """The profile to predict with: `spec` (preset, file, profile dir or saved name), else the
    saved calibration of this machine, else a quick ``llmcap calibrate`` run now (timing the
    model's `attention_shape` too); None for "none". A bad `spec` raises ValueError (a user
    error)."""
    from hwprofiles.calibration.store import default_name, find_saved
    from hwprofiles.catalogue import load_profile

    if spec == NO_HARDWARE:
        return None
    if spec:
        return load_profile(spec)
    name = default_name(device)
    if find_saved(name) is None:
        log(f"no saved calibration {name!r}: running `llmcap calibrate --quick` first")
        cmd = [
            sys.executable,
            "-c",
            "from analysis.cli.main import app; app()",
            "calibrate",
            "--quick",
            "--device",
            device,
            "--threads-per-rank",
            str(threads_per_rank),
            *(["--attention-shape", attention_shape] if attention_shape else []),
        ]
        proc = subprocess.run(cmd, stdout=sys.stderr, check=False)
        if proc.returncode or find_saved(name) is None:
            log(f"calibration failed (exit {proc.returncode}): predictions skipped")
            return None
    return load_profile(name)


def hardware_info(hw: HardwareProfile | None) -> dict[str, Any] | None:
    if hw is None:
        return None
    pv = hw.provenance
    return {"name": hw.name, "kind": pv.kind, "date": pv.date, "notes": pv.notes}


@dataclass
class Validation:
    """The report document and whether every run completed."""

    doc: dict[str, Any]
    result: SuiteResult

    @property
    def ok(self) -> bool:
        return not self.result.failed and not self.result.interrupted


def validate(
    matrix: Matrix,
    hardware: HardwareProfile | None,
    *,
    out: Path,
    command: str,
    engines: tuple[str, ...] = ENGINES,
    predictor: Predictor | None = None,
    on_done: Callable[[Record], None] | None = None,
    drift: list[dict[str, Any]] | None = None,
    on_alert: Callable[[Alert], None] | None = None,
    notes: list[str] | None = None,
    **timeouts: float,
) -> Validation:
    """Run `matrix`, compare with predictions on `hardware`, write the report under `out`.
    A monitored matrix (`matrix.monitor`) is watched live against the analytic prediction
    of each run, made before it starts; `on_alert` sees each alert as it opens. `drift`: the
    pre-run re-probe (`validation.drift.check_drift`); drifted dtypes' runs are compared but
    not headlined."""
    machine: dict[str, Any] = machine_info(matrix.device, matrix.threads_per_rank)
    monitors = live_predictions(matrix, hardware, predictor)
    result = run_matrix(matrix, out / "runs", on_done, monitors, on_alert, **timeouts)
    machine["load_average_1m_end"] = load_average()
    return finish(
        matrix,
        result,
        hardware,
        machine,
        out=out,
        command=command,
        engines=engines,
        predictor=predictor,
        drift=drift,
        extra_notes=notes,
    )


def live_predictions(
    matrix: Matrix, hardware: HardwareProfile | None, predictor: Predictor | None = None
) -> dict[str, MonitorSpec]:
    """Per run id, the monitor settings with the analytic engine's prediction for that run
    (nominal links: the collectives through a rate-limited link are measured only when its
    first run starts). Empty when the matrix is not monitored or nothing can be predicted."""
    if matrix.monitor is None or hardware is None:
        return {}
    specs = matrix.specs()
    preds, _ = predict_runs(specs, hardware, ("analytic",), predictor)
    out = {}
    for spec in specs:
        r = preds.get((spec.run_id, "analytic"))
        if r is None:
            continue
        out[spec.run_id] = replace(
            matrix.monitor,
            predicted_step_time_s=r.step_time_s,
            predicted_power_w=r.avg_power_w if spec.device == "cuda" else None,
            memory_capacity_bytes=r.memory_capacity_bytes,
        )
    return out


def finish(
    matrix: Matrix,
    result: SuiteResult,
    hardware: HardwareProfile | None,
    machine: dict[str, Any],
    *,
    out: Path,
    command: str,
    engines: tuple[str, ...] = ENGINES,
    predictor: Predictor | None = None,
    drift: list[dict[str, Any]] | None = None,
    extra_notes: list[str] | None = None,
) -> Validation:
    """Predict the measured runs, compare, and write ``report.json`` and ``report.md``."""
    notes: list[str] = [status_line(hardware), *result.notes, *(extra_notes or [])]
    drift = drift or []
    in_run, per_run = [], {}
    calibrated = hardware is not None and hardware.provenance.kind == "calibrated"
    if calibrated and result.measured():  # a datasheet profile is what it says, not re-priced
        in_run, per_run = rates_in_place(result.measured(), hardware)
    everyone = bool(per_run) and len(per_run) == len(result.measured())
    gate = [r for r in drift if not everyone or kind(r) not in IN_RUN]
    notes += drift_notes(gate) + component_notes(gate)
    busiest = max(matrix.nprocs) * matrix.threads_per_rank
    cores = int(machine.get("cpu_cores", 0) or 0)
    if matrix.device == "cpu" and cores and busiest > cores:
        notes.append(
            f"{busiest} threads on {cores} cores: ranks share cores, so step times include "
            "time-slicing that no model predicts"
        )
    comparisons, summary, predictions = [], [], {}
    if hardware is not None and result.measured():
        specs = [spec for spec, _ in result.measured().values()]
        predictions, why = predict_runs(
            specs, hardware, engines, predictor, link_fits=result.link_fits, per_run=per_run
        )
        notes += why
        if in_run:
            as_calibrated, _ = predict_runs(
                specs, hardware, ("analytic",), predictor, link_fits=result.link_fits
            )
            for row in in_run:
                rid = row["run"]
                row["measured_step_s"] = result.measured()[rid][1].step.median_s
                row["predicted_as_calibrated_s"] = as_calibrated[(rid, "analytic")].step_time_s
                row["predicted_in_place_s"] = predictions[(rid, "analytic")].step_time_s
            notes.append(IN_PLACE_NOTE.format(n=len(per_run), total=len(specs)))
        comparisons = compare(result.measured(), predictions, engines)
        limited = {r.spec.run_id for r in result.records if r.spec.link_bytes_per_s}

        def step_time(runs: list[RunSpec], hw: HardwareProfile) -> dict[str, float]:
            got, _ = predict_runs(runs, hw, ("analytic",), predictor, link_fits=result.link_fits)
            return {rid: r.step_time_s for (rid, _), r in got.items()}

        off, kept_notes = material(gate, specs, hardware, step_time)
        notes += kept_notes
        during = speed_probes(result.measured(), hardware) if calibrated else []
        during = [row for row in during if row["run"] not in per_run]
        slow, slow_notes = drifted_during(during)
        off, notes = off | slow, notes + slow_notes
        kept = {s.run_id for s in specs if s.run_id not in off}
        summary = summarise(
            [c for c in comparisons if c.run in kept and c.baseline in (None, *kept)], limited
        )
        if hardware.provenance.kind != "calibrated":
            notes.append(
                f"predictions use the datasheet profile {hardware.name!r}, not a calibration "
                "of this machine"
            )
    elif hardware is None:
        notes.append("no hardware profile: measured figures only")
    diag = diagnostics(result.measured(), predictions, engines)
    speed = speed_probes(result.measured(), hardware) if hardware is not None else []
    unmetered = {
        m.energy_reason for _, m in result.measured().values() if m.energy_per_step_j is None
    }
    notes += [f"energy not measured: {why}" for why in sorted(unmetered) if why]
    if result.interrupted:
        notes.append("interrupted: the report holds the runs completed before Ctrl-C")
    doc = report.document(
        matrix,
        result,
        comparisons,
        summary,
        diagnostics=diag,
        speed=speed,
        machine=machine,
        hardware=hardware_info(hardware),
        notes=notes,
        command=command,
    )
    if in_run:
        doc["in_run"] = in_run
    if drift:
        doc["drift"] = drift
    write_atomic(out / "report.json", dumps(doc))
    write_atomic(out / "report.md", report.markdown(doc))
    return Validation(doc, result)


IN_RUN = ("gemm", "attention", "framework")
"""Pre-run probe kinds whose rates the in-run probes measure again (`validation.inrun`):
their drift does not withhold a run priced in place."""
IN_PLACE_NOTE = (
    "{n} of {total} runs predicted at the component rates measured between their own steps "
    "(GEMM rate, framework host times, collectives; `validation.inrun`; table 'In-run "
    "component rates'), not at the "
    "calibration's: what is confirmed is the composition of the step from its components"
)


def rates_in_place(
    runs: dict[str, tuple[RunSpec, Any]], hardware: HardwareProfile
) -> tuple[list[dict[str, Any]], dict[str, HardwareProfile]]:
    """Each run's in-run rates (`inplace.rates`) and its profile with them in place; runs
    without in-run probes (measured before they existed) are left out of both."""
    from validation.inplace import at_rates, rates

    rows, per_run = [], {}
    for rid, (spec, m) in sorted(runs.items()):
        r = rates(hardware, spec, m)
        if r is not None:
            rows.append(r)
            per_run[rid] = at_rates(hardware, spec, r)
    return rows, per_run


def read_report(out: Path) -> dict[str, Any]:
    """The report document in `out` (``report.json``), checked to be a validation report."""
    path = out / "report.json"
    if path_kind(path) != "file":
        raise UserError(f"repredict: {path} does not exist (run llmcap validate first)")
    doc = read_json(path, "repredict")
    if not isinstance(doc, dict) or doc.get("format") != report.FORMAT:
        raise UserError(f"repredict: {path} is not a {report.FORMAT} report")
    return doc


def repredict(
    out: Path,
    hardware: HardwareProfile | None,
    *,
    engines: tuple[str, ...] = ENGINES,
    predictor: Predictor | None = None,
    hardware_spec: str = "",
) -> Validation:
    """Redo the predictions and comparisons of the report in `out` without measuring again
    (after a model or calibration change); the measurements come from its report.json.
    `hardware_spec` is how the user named the profile (for the regenerating command). The
    probes the report took before its runs are re-checked against `hardware`
    (`guard.recheck`): runs resting on a figure of `hardware` the machine did not run at then
    are not headlined."""
    doc = read_report(out)
    stored = doc.get("drift", [])
    checkable = hardware is not None and hardware.provenance.kind == "calibrated"
    drift = recheck(hardware, stored) if checkable else []
    passes = {r["key"]: r["measured_s"] for r in stored if r.get("probe") == "framework"}
    if hardware is not None and passes:  # the framework host time measured before the runs
        hardware = with_passes(hardware, passes)
    matrix, result = report.read_measurements(doc)
    measured_by = doc["command"].split(" && ")[0]
    command = f"{measured_by} && llmcap validate --repredict {out}"
    if hardware_spec:
        command += f" --hardware {hardware_spec}"
    return finish(
        matrix,
        result,
        hardware,
        doc["machine"],
        out=out,
        command=command,
        engines=engines,
        predictor=predictor,
        drift=drift,
        extra_notes=[]
        if not checkable or stored
        else ["drift not re-checked: the report holds no probes taken before its runs"],
    )
