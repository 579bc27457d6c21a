"""Cost of owning a cluster for one training run, beside renting it (US dollars, SI inside).

For a candidate of `gpus` GPUs on `hw` that trains in `run_s` seconds:

    nodes        = ceil(gpus / GPUs per node)
    servers      = nodes * server price                       (data/ownership.toml)
    network      = endpoints * (switch ports + optics per endpoint); endpoints = nodes * NICs;
                   a fat-tree of T tiers (T from the switch radix: 1 if E <= r, 2 if
                   E <= r^2/2, else 3) uses 1 + 2(T-1)/o switch ports and 2(1 + (T-1)/o)
                   transceivers per endpoint at leaf oversubscription o; none for one node
    storage      = servers * storage fraction
    installation = (servers + network + storage) * installation fraction
    capex        = servers + network + storage + installation
    fixed / year = capex / years + (servers + network + storage) * maintenance fraction
    power        = (whole nodes' wall power + switches and optics) * PUE, from the energy
                   model of the predicted step (`analysis.energy_levels`, data/power.toml)
    run cost     = fixed / year * run hours / (8760 h * utilisation) + power * run time * $/kWh

The run is charged its share of the cluster's useful life (`utilisation` of `years`). Renting
costs GPUs * run hours * $/GPU-hour (power included). Owning beats renting for the same work
above the break-even utilisation fixed / year / (8760 h * (rent/h - power cost/h)); at the
chosen utilisation the purchase pays back after capex / (yearly rent saved - yearly opex).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hwprofiles.errors import UserError
from hwprofiles.ownership import OwnershipData
from hwprofiles.profile import HardwareProfile

HOURS_PER_YEAR = 8760.0
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class OwnershipParams:
    """Finance and facility figures (defaults from data/ownership.toml; flags override)."""

    years: float
    utilisation: float
    usd_per_kwh: float
    pue: float
    installation_fraction: float
    maintenance_fraction: float
    storage_fraction: float
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        checks = (
            ("years", self.years, self.years > 0, "must be > 0 (depreciation period)"),
            (
                "utilisation",
                self.utilisation,
                0 < self.utilisation <= 1,
                "must be in (0, 1] (share of the cluster's life doing useful work)",
            ),
            ("power-price", self.usd_per_kwh, self.usd_per_kwh >= 0, "must be >= 0 USD/kWh"),
            ("pue", self.pue, self.pue >= 1, "must be >= 1 (facility energy / IT energy)"),
        )
        for name, value, ok, rule in checks:
            if not (isinstance(value, int | float) and math.isfinite(value) and ok):
                raise UserError(name, value, rule)
        for name in ("installation_fraction", "maintenance_fraction", "storage_fraction"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise UserError(name, v, "must be a finite number >= 0")

    @classmethod
    def from_data(cls, data: OwnershipData, **given: float | None) -> OwnershipParams:
        """The catalogue's defaults, with every non-None keyword replacing one."""
        from hwprofiles.power_levels import facility

        fac = facility()
        vals = {"pue": fac.pue} | dict(data.defaults)
        srcs = {"pue": "power.toml [facility]: " + fac.source} | dict(data.default_sources)
        for k, v in given.items():
            if v is not None:
                vals[k] = v
                srcs[k] = "given"
        return cls(**vals, sources=srcs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class OwnershipCost:
    """Owning vs renting one candidate for one run (USD, W, s)."""

    nodes: int
    servers_usd: float
    network_usd: float
    storage_usd: float
    installation_usd: float
    fabric_tiers: int
    fixed_usd_per_year: float
    power_w: float
    """Facility draw while training (whole nodes and network, times PUE)."""
    run_fixed_usd: float
    run_power_usd: float
    rent_usd: float | None
    break_even_utilisation: float | None
    """Utilisation above which owning is cheaper than renting (None: no rent price; inf:
    never, rent per hour does not even cover the power)."""
    payback_years: float | None
    """Years of use at the chosen utilisation until the rent saved repays the capex."""
    server_source: str
    network_source: str

    @property
    def capex_usd(self) -> float:
        return self.servers_usd + self.network_usd + self.storage_usd + self.installation_usd

    @property
    def run_usd(self) -> float:
        """What the run costs an owner: its share of the fixed costs plus its power."""
        return self.run_fixed_usd + self.run_power_usd

    def to_dict(self) -> dict[str, float | int | str | None]:
        return {
            "nodes": self.nodes,
            "capex_usd": self.capex_usd,
            "servers_usd": self.servers_usd,
            "network_usd": self.network_usd,
            "storage_usd": self.storage_usd,
            "installation_usd": self.installation_usd,
            "fabric_tiers": self.fabric_tiers,
            "fixed_usd_per_year": self.fixed_usd_per_year,
            "power_w": self.power_w,
            "run_fixed_usd": self.run_fixed_usd,
            "run_power_usd": self.run_power_usd,
            "run_usd": self.run_usd,
            "rent_usd": self.rent_usd,
            "break_even_utilisation": (
                None
                if self.break_even_utilisation is None or math.isinf(self.break_even_utilisation)
                else self.break_even_utilisation
            ),
            "payback_years": self.payback_years,
            "server_source": self.server_source,
            "network_source": self.network_source,
        }


def fabric(endpoints: int, radix: int, oversubscription: float) -> tuple[int, float, float]:
    """(tiers, switch ports per endpoint, transceivers per endpoint) of a fat-tree."""
    if endpoints <= 1:
        return 0, 0.0, 0.0
    if endpoints <= radix:
        tiers = 1
    elif endpoints <= radix * radix / 2:
        tiers = 2
    else:
        tiers = 3
    o = max(1.0, oversubscription)
    ports = 1 + 2 * (tiers - 1) / o
    optics = 2 * (1 + (tiers - 1) / o)
    return tiers, ports, optics


def unpriced_reason(hw: HardwareProfile, data: OwnershipData) -> str | None:
    """Why owning `hw` cannot be costed (no server price), or None."""
    if hw.node.name in data.nodes:
        return None
    return (
        f"no server price for node {hw.node.name!r} (of {hw.name}): add [nodes.{hw.node.name}] "
        "with server_usd to an --ownership file"
    )


def ownership_cost(
    hw: HardwareProfile,
    gpus: int,
    run_s: float,
    it_power_w: float,
    params: OwnershipParams,
    data: OwnershipData,
    rent_usd_per_gpu_hour: float | None = None,
) -> OwnershipCost:
    """Owning `gpus` GPUs of `hw` for a run of `run_s` seconds drawing `it_power_w` (nodes and
    network, before PUE) while it trains."""
    node = data.nodes.get(hw.node.name)
    if node is None:
        raise UserError("hardware", hw.name, unpriced_reason(hw, data) or "")
    gpn = hw.node.gpus_per_node
    nodes = math.ceil(gpus / gpn)
    servers = nodes * node.server_usd
    net_key, net = data.network_for(hw.node.scale_out.name)
    tiers, ports, optics = fabric(
        nodes * hw.node.nics_per_node, net.radix, hw.fabric.oversubscription
    )
    endpoints = nodes * hw.node.nics_per_node if tiers else 0
    network = endpoints * (ports * net.switch_port_usd + optics * net.optic_usd)
    storage = servers * params.storage_fraction
    hardware = servers + network + storage
    installation = hardware * params.installation_fraction
    capex = hardware + installation
    fixed = capex / params.years + hardware * params.maintenance_fraction
    power_w = it_power_w * params.pue
    run_h = run_s / 3600.0
    usd_per_hour_power = power_w / 1000.0 * params.usd_per_kwh
    run_fixed = fixed * run_h / (HOURS_PER_YEAR * params.utilisation)
    run_power = usd_per_hour_power * run_h
    rent = be = payback = None
    if rent_usd_per_gpu_hour is not None:
        rent_h = gpus * rent_usd_per_gpu_hour
        rent = rent_h * run_h
        margin = rent_h - usd_per_hour_power
        be = fixed / (HOURS_PER_YEAR * margin) if margin > 0 else math.inf
        busy_h = HOURS_PER_YEAR * params.utilisation
        saved = margin * busy_h - hardware * params.maintenance_fraction
        payback = capex / saved if saved > 0 else None
    return OwnershipCost(
        nodes=nodes,
        servers_usd=servers,
        network_usd=network,
        storage_usd=storage,
        installation_usd=installation,
        fabric_tiers=tiers,
        fixed_usd_per_year=fixed,
        power_w=power_w,
        run_fixed_usd=run_fixed,
        run_power_usd=run_power,
        rent_usd=rent,
        break_even_utilisation=be,
        payback_years=payback,
        server_source=f"{node.source} ({node.date})",
        network_source=f"network.{net_key}: {net.source} ({net.date})",
    )
