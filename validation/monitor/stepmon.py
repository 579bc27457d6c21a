"""`StepMonitor`: watch a training loop against llmcap's prediction, step by step.

Use it in any torch loop (it imports no torch)::

    from validation.monitor import Prediction, StepMonitor
    mon = StepMonitor("my-run", rank, Prediction(step_time_s=0.41), log_path="mon/rank0.jsonl")
    for batch in data:
        with mon.step(tokens=batch.numel()):
            train_step(batch)
    mon.close()
    mon.alerts  # [Alert(...)] with first/last step, measured, predicted, threshold

Per step it records step time, tokens/s, peak memory, the local compute time a caller marks
(`compute_s`, for the cross-rank straggler rule) and, where the caller passes energy from a
meter (NVML, RAPL), power; it appends one JSON line per step to `log_path`, updates the
Prometheus gauges when an `Exporter` is given, and evaluates the per-rank rules (`rules.py`).
Monitoring never kills the run it watches: an exception inside the monitor is logged once
(``{"type": "monitor_error"}``) and the monitor goes quiet.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from validation.monitor.prom import Exporter
from validation.monitor.rules import Alert, LevelRule, WindowRule
from validation.monitor.thresholds import DEFAULTS, Thresholds


@dataclass(frozen=True)
class Prediction:
    """llmcap's prediction for the watched layout (SI units); None where not predicted."""

    step_time_s: float | None = None
    power_w: float | None = None
    """Average power per device over a step (W)."""
    memory_capacity_bytes: float | None = None
    """The device's memory (bytes): the memory rule's 100 %."""


class StepMonitor:
    """Records steps of rank `rank` of run `run` and raises alerts (see module doc)."""

    def __init__(
        self,
        run: str,
        rank: int,
        predicted: Prediction,
        thresholds: Thresholds = DEFAULTS,
        log_path: str | Path | None = None,
        exporter: Exporter | None = None,
        on_alert: Callable[[Alert], None] | None = None,
    ) -> None:
        self.run, self.rank, self.predicted, self.thresholds = run, rank, predicted, thresholds
        self.exporter, self.on_alert = exporter, on_alert
        self.alerts: list[Alert] = []
        self.steps = 0
        self.failed = False
        t = thresholds
        self.rules = {
            "step_time": WindowRule(run, "step_time", rank, predicted.step_time_s,
                                    t.step_time, t.window),
            "power": WindowRule(run, "power", rank, predicted.power_w, t.power, t.window),
            "memory": LevelRule(run, "memory", rank, predicted.memory_capacity_bytes, t.memory),
        }  # fmt: skip
        self._log: IO[str] | None = None
        if log_path is not None:
            path = Path(log_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if exporter is not None and predicted.step_time_s:
            exporter.set("llmcap_predicted_step_time_seconds", predicted.step_time_s)

    @contextmanager
    def step(self, tokens: int = 0, **extra: float | None) -> Iterator[dict[str, Any]]:
        """Time the body as one step; the yielded dict takes figures known only inside
        (``rec["compute_s"] = ...``, ``rec["energy_j"] = ...``)."""
        rec: dict[str, Any] = dict(extra)
        t0 = time.perf_counter()
        yield rec
        self.record(time.perf_counter() - t0, tokens=tokens, **rec)

    def record(
        self,
        step_time_s: float,
        *,
        tokens: int = 0,
        compute_s: float | None = None,
        peak_memory_bytes: float | None = None,
        energy_j: float | None = None,
        exposed_comm_s: float | None = None,
        phase: str = "train",
    ) -> list[Alert]:
        """Record one finished step; returns the alerts it opened (never raises). Steps of
        phase ``"warmup"`` are logged but not held against the step-time and power
        predictions."""
        if self.failed:
            return []
        try:
            return self._record(step_time_s, tokens, compute_s, peak_memory_bytes, energy_j,
                                exposed_comm_s, phase)  # fmt: skip
        except Exception as exc:  # the monitor must not kill the training run it watches
            self.failed = True
            with suppress(Exception):
                self._write({"type": "monitor_error", "error": f"{type(exc).__name__}: {exc}"})
            print(f"llmcap monitor: stopped after an error: {exc}", file=sys.stderr)
            return []

    def _record(
        self,
        step_time_s: float,
        tokens: int,
        compute_s: float | None,
        peak_memory_bytes: float | None,
        energy_j: float | None,
        exposed_comm_s: float | None,
        phase: str,
    ) -> list[Alert]:
        step = self.steps
        self.steps += 1
        power_w = energy_j / step_time_s if energy_j is not None and step_time_s > 0 else None
        rec = {
            "type": "step", "run": self.run, "rank": self.rank, "step": step, "phase": phase,
            "wall_time": time.time(), "step_time_s": step_time_s,
            "tokens_per_s": tokens / step_time_s if step_time_s > 0 else None,
            "compute_s": compute_s, "exposed_comm_s": exposed_comm_s,
            "peak_memory_bytes": peak_memory_bytes, "power_w": power_w,
            "predicted_step_time_s": self.predicted.step_time_s,
        }  # fmt: skip
        self._write(rec)
        opened = []
        for metric, value in (
            ("step_time", step_time_s), ("power", power_w), ("memory", peak_memory_bytes),
        ):  # fmt: skip
            if metric != "memory" and phase == "warmup":
                continue  # warm-up steps (allocation, first-call costs) are not predicted
            if value is not None:
                alert = self.rules[metric].update(step, value)
                if alert is not None:
                    opened.append(alert)
        for alert in opened:
            self.alerts.append(alert)
            self._write({"type": "alert", **alert.to_dict()})
            if self.exporter is not None:
                self.exporter.alert(alert.metric)
            if self.on_alert is not None:
                self.on_alert(alert)
        self._export(rec)
        return opened

    def _export(self, rec: dict[str, Any]) -> None:
        e = self.exporter
        if e is None:
            return
        e.step()
        e.set("llmcap_step", rec["step"])
        e.set("llmcap_step_time_seconds", rec["step_time_s"])
        for key, name in (
            ("tokens_per_s", "llmcap_tokens_per_second"),
            ("peak_memory_bytes", "llmcap_peak_memory_bytes"),
            ("power_w", "llmcap_power_watts"),
        ):
            if rec[key] is not None:
                e.set(name, rec[key])

    def _write(self, rec: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(json.dumps(rec, sort_keys=True) + "\n")
            self._log.flush()

    def close(self) -> None:
        """Close the log (and stop the exporter's endpoint)."""
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.exporter is not None:
            self.exporter.close()


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines log; a torn last line (a run killed mid-write) is skipped."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
