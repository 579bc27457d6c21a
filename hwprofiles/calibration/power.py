"""Power per device, measured (RAPL, NVML) or, where nothing is readable, modelled.

Measured: an idle window, then one window around each dtype's GEMM benchmarks.
On a GPU the NVML counter is the board's, so idle and load are per device directly. RAPL
measures a whole CPU package while only one rank's threads are busy, so per device:
``idle = package_idle / ranks_per_node`` and ``full load = idle + (package_load -
package_idle)`` (the dynamic part belongs to the one busy rank).
Modelled: the figures in `fallback.toml`, labelled as such.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwprofiles.energy import EnergyMeter, EnergyWindow, measure

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

POWER_COLUMNS = ("phase", "meter", "seconds", "joules", "watts")
FALLBACK_FILE = Path(__file__).with_name("fallback.toml")


def fallback() -> dict[str, Any]:
    """The fallback figures (fallback.toml) as a dict."""
    with open(FALLBACK_FILE, "rb") as fh:
        return tomllib.load(fh)


def idle_window(meter: EnergyMeter, seconds: float) -> EnergyWindow:
    """Energy over `seconds` of doing nothing (the caller's process sleeps)."""
    with measure(meter) as w:
        time.sleep(seconds)
    return w


def window_row(phase: str, w: EnergyWindow) -> dict[str, object]:
    return {
        "phase": phase,
        "meter": w.meter or "",
        "seconds": w.seconds,
        "joules": w.joules if w.joules is not None else float("nan"),
        "watts": w.watts if w.watts is not None else float("nan"),
    }


@dataclass(frozen=True)
class DevicePower:
    """Per-device power for the profile: idle and full-load watts, and how they were got."""

    idle_w: float
    tdp_w: float
    kind: str
    """"measured" or "modelled"."""
    source: str
    load_w: dict[str, float]
    """Measured mean power per dtype during its GEMMs (package or board), empty if modelled."""


def measured_power(
    rows: list[dict[str, object]], device: str, ranks_per_node: int, meter: str
) -> DevicePower:
    """Per-device power from the idle row and the ``gemm-<dtype>`` rows of power.csv."""
    idle = next(float(r["watts"]) for r in rows if r["phase"] == "idle")  # type: ignore[arg-type]
    load = {
        str(r["phase"]).removeprefix("gemm-"): float(r["watts"])  # type: ignore[arg-type]
        for r in rows
        if str(r["phase"]).startswith("gemm-")
    }
    top = max(load.values(), default=idle)
    if device == "cuda":
        idle_w, tdp_w = idle, max(top, idle)
        how = (
            f"measured with {meter}: board idle; full load = the highest mean power of one "
            "dtype's GEMM sweep (small GEMMs included)"
        )
    else:
        idle_w = idle / ranks_per_node
        tdp_w = idle_w + max(top - idle, 0.0)
        how = (
            f"measured with {meter}: package idle / {ranks_per_node} ranks; full load = that "
            "+ package dynamic power averaged over one rank's GEMM sweep (highest dtype)"
        )
    return DevicePower(idle_w, max(tdp_w, idle_w * (1 + 1e-9)), "measured", how, load)


def modelled_power(device: str, threads_per_rank: int, power_limit_w: float | None) -> DevicePower:
    """Datasheet-derived power (fallback.toml) for a device whose energy cannot be read."""
    fb = fallback()
    if device == "cuda":
        g = fb["gpu_power"]
        tdp = power_limit_w if power_limit_w else float(g["tdp_w"])
        return DevicePower(tdp * g["idle_fraction"], tdp, "modelled", g["source"], {})
    c = fb["cpu_power"]
    tdp = float(c["tdp_w_per_core"]) * threads_per_rank
    return DevicePower(tdp * c["idle_fraction"], tdp, "modelled", c["source"], {})
