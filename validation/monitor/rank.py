"""The monitor of one validation rank, built from its `RunSpec` (used by `worker`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from validation.monitor.prom import Exporter
from validation.monitor.stepmon import Prediction, StepMonitor

if TYPE_CHECKING:
    from validation.spec import RunSpec

LOG_DIR = "monitor"
"""Per-run folder of the ranks' JSON-lines logs (``monitor/rank<R>.jsonl``)."""


def log_path(run_dir: Path, rank: int) -> Path:
    return run_dir / LOG_DIR / f"rank{rank}.jsonl"


def rank_monitor(spec: RunSpec, rank: int, run_dir: Path) -> StepMonitor | None:
    """A `StepMonitor` writing ``monitor/rank<R>.jsonl`` (and serving Prometheus on
    base port + rank when asked), or None when the run is not monitored. A port that cannot
    be bound costs the endpoint, never the run."""
    m = spec.monitor
    if m is None:
        return None
    exporter = Exporter(spec.run_id, rank)
    if m.metrics_port:
        try:
            exporter.serve(m.metrics_port + rank)
        except OSError as exc:
            print(f"llmcap monitor: no metrics endpoint on port {m.metrics_port + rank}: {exc}",
                  file=sys.stderr)  # fmt: skip
    predicted = Prediction(m.predicted_step_time_s, m.predicted_power_w, m.memory_capacity_bytes)
    return StepMonitor(spec.run_id, rank, predicted, m.thresholds, log_path(run_dir, rank),
                       exporter)  # fmt: skip
