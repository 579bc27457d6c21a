"""Prometheus exposition of a run's per-step figures (`prometheus_client`).

Metric names follow Prometheus conventions (base units, ``_seconds``/``_bytes``/``_watts``,
``_total`` for counters); every series carries ``run`` and ``rank`` labels. One HTTP endpoint
per rank process (port = base + rank), on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from hwprofiles.errors import UserError

LABELS = ("run", "rank")
GAUGES = {
    "llmcap_step_time_seconds": "Last training step's wall time",
    "llmcap_predicted_step_time_seconds": "llmcap's predicted step time for this layout",
    "llmcap_tokens_per_second": "Tokens per second of the last step, this rank's share",
    "llmcap_peak_memory_bytes": "Peak memory of this rank so far",
    "llmcap_power_watts": "Average power over the last step (where a meter exists)",
    "llmcap_step": "Index of the last finished step (warm-up included)",
}
COUNTERS = {
    "llmcap_steps": "Training steps finished",
    "llmcap_alerts": "Alerts fired, by metric",
}


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """UserError naming ``--metrics-port`` if `port` cannot be bound now."""
    if not 1 <= port <= 65535:
        raise UserError("--metrics-port", port, "must be 1-65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc})"
            raise UserError("--metrics-port", port, why) from None


class Exporter:
    """The gauges and counters of one rank; `serve(port)` starts the HTTP endpoint."""

    def __init__(self, run: str, rank: int, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.labels = {"run": run, "rank": str(rank)}
        self.gauges = {n: Gauge(n, h, LABELS, registry=self.registry) for n, h in GAUGES.items()}
        self.steps = Counter("llmcap_steps", COUNTERS["llmcap_steps"], LABELS,
                             registry=self.registry)  # fmt: skip
        self.alerts = Counter("llmcap_alerts", COUNTERS["llmcap_alerts"], (*LABELS, "metric"),
                              registry=self.registry)  # fmt: skip
        self.server: Any = None

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        self.server = start_http_server(port, addr=host, registry=self.registry)

    def set(self, name: str, value: float) -> None:
        self.gauges[name].labels(**self.labels).set(value)

    def step(self) -> None:
        self.steps.labels(**self.labels).inc()

    def alert(self, metric: str) -> None:
        self.alerts.labels(**self.labels, metric=metric).inc()

    def close(self) -> None:
        if isinstance(self.server, tuple):  # prometheus_client >= 0.20: (server, thread)
            self.server[0].shutdown()
            self.server[0].server_close()
        self.server = None
