"""What training the token budget costs: time, GPU-hours, dollars, energy and CO2.

All from one predicted step (throughput, energy per step) and the token budget:

    time      = tokens / (tokens per second)
    GPU-hours = GPUs * time / 3600
    cost      = GPU-hours * price per GPU-hour            (rental price, nothing else)
    energy    = energy per step * tokens / tokens per step * PUE
    CO2       = energy * grid carbon intensity

Scope, said plainly: when the step comes from `predict` with a token budget (the planner's
case), time is the expected wall clock with failures, checkpoints and restarts
(`simulator.reliability`), so GPU-hours and rental cost include the downtime, and energy is the
IT energy of the whole run (node wall power: GPU boards, CPUs, DRAM, NICs, NVSwitch, fans, PSU
loss; plus network switches and optics; `analysis.energy_levels`) times the PUE. Without them
(direct calls) energy is the accelerators' own times the PUE. Cost is rental only (no staff,
storage or egress).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hwprofiles.errors import UserError
from hwprofiles.prices import Price
from hwprofiles.profile import HardwareProfile

J_PER_MWH = 3.6e9
"""Joules in one megawatt-hour (1 MWh = 1e6 W * 3600 s)."""

DEFAULT_GRID_G_PER_KWH = 481.0
"""World power-sector average carbon intensity in 2023: 481 gCO2/kWh (Ember, Global
Electricity Review 2024, as charted by Statista 943137). Pass the site's own figure with
--grid-intensity; it ranges from ~30 (Norway) to ~700 (India)."""

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class UnitPrice:
    """The price the planner uses for one hardware candidate, with its provenance."""

    usd_per_gpu_hour: float | None
    source: str
    provider: str = ""
    date: str = ""
    price_class: str = ""


@dataclass(frozen=True)
class TrainingCost:
    """Totals for training `tokens` tokens on one candidate (SI units; USD; tonnes CO2)."""

    tokens: float
    steps: float
    time_to_train_s: float
    gpu_hours: float
    cost_usd: float | None
    """None when no price is known for this hardware."""
    energy_j: float
    co2_t: float

    @property
    def energy_mwh(self) -> float:
        return self.energy_j / J_PER_MWH

    @property
    def days(self) -> float:
        return self.time_to_train_s / SECONDS_PER_DAY


def unit_price(
    hw: HardwareProfile, prices: Mapping[str, Price], fallback: bool = True
) -> UnitPrice:
    """The price row for `hw` (by profile name, then accelerator name), else the profile's own
    (unless `fallback` is False: prices chosen from one provider class must not be mixed)."""
    for key in (hw.name, hw.accelerator.name, hw.accelerator.name.lower()):
        p = prices.get(key)
        if p is not None:
            src = p.source + (f" ({p.provider}, {p.pricing}, {p.date})" if p.provider else "")
            return UnitPrice(p.usd_per_gpu_hour, src, p.provider, p.date, p.price_class)
    if fallback and hw.price_per_gpu_hour_usd is not None:
        return UnitPrice(hw.price_per_gpu_hour_usd, hw.price_source or "hardware profile")
    return UnitPrice(None, f"no price for {hw.name} in this class: add a row to a --prices file")


def training_cost(
    *,
    tokens: float,
    tokens_per_step: float,
    step_time_s: float,
    gpus: int,
    energy_per_step_j: float,
    price: UnitPrice,
    grid_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH,
    pue: float = 1.0,
    wall_clock_s: float | None = None,
    it_energy_j: float | None = None,
) -> TrainingCost:
    """Totals for `tokens` tokens from one step's time and energy (all GPUs).

    `wall_clock_s` (goodput included) and `it_energy_j` (nodes + network for the whole run)
    replace steps x step time and steps x GPU energy per step when given."""
    if tokens <= 0:
        raise UserError(f"tokens: {tokens} must be > 0")
    if pue < 1.0:
        raise UserError(f"pue: {pue} must be >= 1 (facility energy / IT energy)")
    if grid_g_per_kwh < 0:
        raise UserError(f"grid_intensity: {grid_g_per_kwh} gCO2/kWh must be >= 0")
    steps = tokens / tokens_per_step
    time_s = steps * step_time_s if wall_clock_s is None else wall_clock_s
    gpu_hours = gpus * time_s / 3600.0
    cost = None if price.usd_per_gpu_hour is None else gpu_hours * price.usd_per_gpu_hour
    energy = (energy_per_step_j * steps if it_energy_j is None else it_energy_j) * pue
    co2_t = energy / 3.6e6 * grid_g_per_kwh / 1e6  # J -> kWh, g -> t
    return TrainingCost(tokens, steps, time_s, gpu_hours, cost, energy, co2_t)
