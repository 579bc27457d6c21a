"""Live monitoring of a training run against llmcap's prediction: `StepMonitor` (per rank),
alert rules and thresholds, Prometheus exposition, cross-rank checks (straggler, hang) and
the replay of a finished run's logs (`llmcap monitor`)."""

from validation.monitor.prom import Exporter
from validation.monitor.rules import Alert
from validation.monitor.stepmon import Prediction, StepMonitor, read_log
from validation.monitor.thresholds import DEFAULTS, Thresholds, parse_thresholds

__all__ = [
    "DEFAULTS",
    "Alert",
    "Exporter",
    "Prediction",
    "StepMonitor",
    "Thresholds",
    "parse_thresholds",
    "read_log",
]
