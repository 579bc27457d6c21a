"""Energy meters: cumulative joules from RAPL (Linux CPUs) or NVML (NVIDIA GPUs).

A meter is anything with a `name` and a monotonic `read_j()`; a measurement is a window
between two reads (`measure`), as Zeus does it. Where the machine exposes nothing readable,
`probe_energy_meter` returns ``None`` with a one-line reason, so callers can record a labelled
absence instead of crashing. The sysfs root and the `pynvml` module are parameters, so tests
run against fakes.

RAPL: ``<root>/intel-rapl:<N>/energy_uj`` is a package's energy in microjoules; it wraps to
zero after ``max_energy_range_uj`` (Linux powercap ABI, Documentation/power/powercap). Only
package zones (``name`` starting with ``package``) are summed: sub-zones (core, uncore, dram)
are parts of a package or separate rails, and ``psys`` covers the whole platform.
NVML: ``nvmlDeviceGetTotalEnergyConsumption`` is the board's energy in millijoules since the
driver was loaded (Volta and newer).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from hwprofiles.errors import UserError

RAPL_ROOT = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")
UJ_PER_J = 1e6  # microjoules per joule (powercap ABI unit)
MJ_PER_J = 1e3  # millijoules per joule (NVML unit)


class EnergyMeter(Protocol):
    """A monotonic energy counter."""

    name: str

    def read_j(self) -> float:
        """Energy consumed since the meter was opened, in joules (never decreases)."""
        ...


@dataclass
class _RaplZone:
    energy_file: Path
    max_range_uj: int
    last_uj: int
    total_uj: int = 0


class RaplMeter:
    """Sum of the RAPL package zones under a powercap sysfs root, wrap-around corrected.

    Wrap-around is corrected between consecutive reads; a zone that wraps more than once
    between two reads cannot be detected, so read well within one wrap: a zone's range is
    its `max_energy_range_uj` (a 2^32 uJ = 4295 J range wraps after about 14 s at 300 W).
    """

    def __init__(self, zones: list[tuple[Path, int]]) -> None:
        self.name = "rapl:" + "+".join(p.parent.name for p, _ in zones)
        self._zones = [_RaplZone(p, rng, _read_int(p)) for p, rng in zones]

    def read_j(self) -> float:
        for z in self._zones:
            now = _read_int(z.energy_file)
            delta = now - z.last_uj
            if delta < 0:  # the counter wrapped through max_energy_range_uj
                delta += z.max_range_uj
            z.total_uj += delta
            z.last_uj = now
        return sum(z.total_uj for z in self._zones) / UJ_PER_J


class NvmlMeter:
    """One NVIDIA GPU's total-energy counter through `pynvml` (millijoules -> joules)."""

    def __init__(self, nvml: Any, handle: Any, index: int) -> None:
        self.name = f"nvml:{index}"
        self._nvml = nvml
        self._handle = handle
        self._start_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))

    def read_j(self) -> float:
        now = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        return (now - self._start_mj) / MJ_PER_J


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _probe_rapl(root: Path) -> tuple[RaplMeter | None, str]:
    if not root.is_dir():
        return None, f"RAPL: {root} does not exist (no powercap driver)"
    zones: list[tuple[Path, int]] = []
    problems: list[str] = []
    for zone in sorted(p for p in root.iterdir() if _PACKAGE_ZONE.match(p.name)):
        try:
            name = (zone / "name").read_text().strip()
            if not name.startswith("package"):
                continue
            energy = zone / "energy_uj"
            _read_int(energy)
            zones.append((energy, _read_int(zone / "max_energy_range_uj")))
        except (OSError, ValueError) as exc:
            problems.append(f"{zone.name}: {type(exc).__name__}")
    if problems:
        return None, "RAPL: unreadable package zone(s) " + ", ".join(problems)
    if not zones:
        return None, f"RAPL: no package zones under {root}"
    return RaplMeter(zones), ""


def _probe_nvml(nvml: ModuleType | Any | None, index: int) -> tuple[NvmlMeter | None, str]:
    if nvml is None:
        try:
            import pynvml as nvml  # nvidia-ml-py
        except ImportError:
            return None, "NVML: nvidia-ml-py (pynvml) is not installed"
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        return NvmlMeter(nvml, handle, index), ""
    except Exception as exc:  # pynvml raises NVMLError subclasses (library, driver, support)
        return None, f"NVML: {type(exc).__name__}: {exc}".strip()


def probe_energy_meter(
    device: str = "cpu",
    *,
    sysfs_root: Path = RAPL_ROOT,
    nvml: Any | None = None,
    index: int = 0,
) -> tuple[EnergyMeter | None, str]:
    """The energy meter for `device` ("cpu" -> RAPL, "cuda" -> NVML) and why not if absent.

    Returns ``(meter, "")`` or ``(None, reason)``; never raises for a missing counter.
    """
    if device == "cpu":
        return _probe_rapl(Path(sysfs_root))
    if device == "cuda":
        return _probe_nvml(nvml, index)
    raise UserError(f"device: {device!r} is not one of cpu, cuda")


def open_energy_meter(
    device: str = "cpu",
    *,
    sysfs_root: Path = RAPL_ROOT,
    nvml: Any | None = None,
    index: int = 0,
) -> EnergyMeter | None:
    """The energy meter for `device`, or ``None`` where nothing is readable."""
    return probe_energy_meter(device, sysfs_root=sysfs_root, nvml=nvml, index=index)[0]


@dataclass
class EnergyWindow:
    """One measurement window: filled in when the `measure` block exits."""

    meter: str | None
    seconds: float = 0.0
    joules: float | None = None
    """Energy over the window in joules; ``None`` when no meter was available."""

    @property
    def watts(self) -> float | None:
        """Mean power over the window (W), or ``None`` without a meter or duration."""
        if self.joules is None or self.seconds <= 0:
            return None
        return self.joules / self.seconds


@contextmanager
def measure(meter: EnergyMeter | None) -> Iterator[EnergyWindow]:
    """Measure energy (J) and wall time (s) of the enclosed block.

    >>> with measure(open_energy_meter("cpu")) as w:
    ...     work()
    >>> w.joules, w.seconds, w.watts
    """
    window = EnergyWindow(meter=meter.name if meter is not None else None)
    e0 = meter.read_j() if meter is not None else None
    t0 = time.perf_counter()
    try:
        yield window
    finally:
        window.seconds = time.perf_counter() - t0
        if meter is not None and e0 is not None:
            window.joules = meter.read_j() - e0
