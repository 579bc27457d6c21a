"""Interruption rates per component, from a published large training run, scaled to a cluster.

Default: Meta's Llama 3 405B pre-training, "The Llama 3 Herd of Models" (Dubey et al. 2024,
arXiv 2407.21783), section 3.3.4 and Table 5: 419 unexpected interruptions in a 54-day
snapshot on 16,384 H100 GPUs (2,048 Grand Teton servers of 8 GPUs, one 400 Gb/s NIC per GPU);
"more than 90% effective training time". Table 5's root-cause categories are grouped into six
components, each counted per unit that can fail (per GPU or per node):

    gpu       148 faulty GPU + 19 GPU SRAM + 17 GPU system processor + 6 silent data corruption
              + 6 GPU thermal interface/sensor = 196                                 per GPU
    hbm       72 GPU HBM3 memory                                                       per GPU
    software  54 software bug + 7 NCCL watchdog timeout + 2 dependency = 63             per GPU
              (software faults are taken to grow with the number of ranks: a modelling choice)
    network   35 network switch/cable                                                  per node
    nic       7 NIC                                                                     per NIC
    host      32 host maintenance + 3 SSD + 3 power supply + 2 chassis + 2 IO expansion
              board + 2 CPU + 2 system memory = 46                                      per node

Rates are in failures per unit per second (SI). A failure-rate file (TOML) replaces them:

    [rates_per_unit_hour]   gpu = 9.2e-6  hbm = 3.4e-6 ...   # any subset of the components
    source = "where the numbers come from"
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hwprofiles.errors import UserError
from hwprofiles.inputs import read_toml

COMPONENTS = ("gpu", "hbm", "software", "network", "nic", "host")
PER_NODE = frozenset({"network", "host"})
"""Components counted once per node; `nic` per NIC; the others per GPU."""

# Llama 3 405B snapshot (Dubey et al. 2024, Table 5)
_L3_GPUS = 16384  # H100 GPUs in the run (sec. 3.3.1)
_L3_NODES = 2048  # 8 GPUs per Grand Teton server
_L3_NICS = 16384  # one 400 Gb/s NIC per GPU (sec. 3.3.1)
_L3_WINDOW_S = 54 * 86400.0  # the 54-day snapshot of Table 5
_L3_COUNTS = {"gpu": 196, "hbm": 72, "software": 63, "network": 35, "nic": 7, "host": 46}
_L3_UNITS = {
    "gpu": _L3_GPUS,
    "hbm": _L3_GPUS,
    "software": _L3_GPUS,
    "network": _L3_NODES,
    "nic": _L3_NICS,
    "host": _L3_NODES,
}

LLAMA3_SOURCE = (
    "Dubey et al. 2024, 'The Llama 3 Herd of Models' (arXiv 2407.21783), Table 5: 419 "
    "unexpected interruptions in 54 days on 16,384 H100 (2,048 nodes), grouped per component"
)


@dataclass(frozen=True)
class FailureRates:
    """Failures per unit per second for each component in `COMPONENTS`."""

    per_unit_s: dict[str, float]
    source: str = LLAMA3_SOURCE

    def job_rate_s(
        self, gpus: int, gpus_per_node: int, nics_per_node: int, scale: float = 1.0
    ) -> dict[str, float]:
        """Job-level interruption rate (1/s) per component for a job on `gpus` GPUs.

        `scale` multiplies every MTBF (2.0 = components fail half as often)."""
        nodes = math.ceil(gpus / gpus_per_node)
        units = {
            "gpu": gpus,
            "hbm": gpus,
            "software": gpus,
            "network": nodes,
            "nic": nodes * nics_per_node,
            "host": nodes,
        }
        return {c: self.per_unit_s.get(c, 0.0) * units[c] / scale for c in COMPONENTS}


def llama3_rates() -> FailureRates:
    """The default rates, from the Llama 3 405B run (module docstring)."""
    return FailureRates({c: _L3_COUNTS[c] / (_L3_UNITS[c] * _L3_WINDOW_S) for c in COMPONENTS})


def read_failure_rates(path: str | Path) -> FailureRates:
    """A failure-rate TOML file (format in the module docstring); errors are one line."""
    p = Path(path)
    data = read_toml(p, "failure_rates")
    table = data.get("rates_per_unit_hour")
    if not isinstance(table, dict) or not table:
        raise UserError("failure_rates", str(p), "needs a [rates_per_unit_hour] table")
    rates: dict[str, float] = {}
    for name, value in table.items():
        if name not in COMPONENTS:
            raise UserError(
                f"failure_rates.{name}",
                value,
                f"is not a component (known: {', '.join(COMPONENTS)})",
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and value >= 0)
        ):
            raise UserError(f"failure_rates.{name}", value, "must be a finite number >= 0")
        rates[name] = float(value) / 3600.0
    if not any(rates.values()):
        raise UserError("failure_rates", str(p), "has every rate 0 (give at least one > 0)")
    return FailureRates(rates, str(data.get("source", f"user file {p}")))
