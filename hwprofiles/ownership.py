"""What owning a cluster costs: server prices, fabric prices and finance/facility defaults, from
`data/ownership.toml` plus an optional user file of the same shape (its rows replace rows).

Only data and validation live here; the cost model is `analysis.planner.tco`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.inputs import read_toml
from hwprofiles.presets import check_keys, data, number

DEFAULT_KEYS = {
    "years",
    "utilisation",
    "usd_per_kwh",
    "installation_fraction",
    "maintenance_fraction",
    "storage_fraction",
}
NODE_KEYS = {"server_usd", "date", "source"}
NETWORK_KEYS = {"switch_port_usd", "optic_usd", "radix", "date", "source"}


@dataclass(frozen=True)
class NodePrice:
    """One server as delivered (GPUs, host, local storage, compute NICs)."""

    server_usd: float
    date: str
    source: str


@dataclass(frozen=True)
class NetworkPrice:
    """Fabric prices for one scale-out link class."""

    switch_port_usd: float
    optic_usd: float
    radix: int
    date: str
    source: str


@dataclass(frozen=True)
class OwnershipData:
    """Everything `data/ownership.toml` (and a user file) says."""

    defaults: dict[str, float]
    default_sources: dict[str, str]
    nodes: dict[str, NodePrice]
    network: dict[str, NetworkPrice]
    origin: str = "catalogue"

    def network_for(self, link: str) -> tuple[str, NetworkPrice]:
        """(row name, prices) for a scale-out link class; the `default` row otherwise."""
        base = link.split("@")[0]
        key = base if base in self.network else "default"
        return key, self.network[key]


def _defaults(raw: Mapping[str, Any], where: str) -> tuple[dict[str, float], dict[str, str]]:
    check_keys(raw, DEFAULT_KEYS, where)
    vals = {k: raw[k] for k in DEFAULT_KEYS if k in raw}
    out = {}
    for k in vals:
        out[k] = number(raw, k, where, minimum=0.0, strict=k in ("years", "utilisation"))
    srcs = {k[: -len("_source")]: str(v) for k, v in raw.items() if k.endswith("_source")}
    return out, srcs


def _node(raw: Any, where: str) -> NodePrice:
    if not isinstance(raw, Mapping):
        raise UserError(where, raw, "must be a table with server_usd")
    check_keys(raw, NODE_KEYS, where)
    return NodePrice(
        server_usd=number(raw, "server_usd", where),
        date=str(raw.get("date", "")),
        source=str(raw.get("source", "")),
    )


def _network(raw: Any, where: str) -> NetworkPrice:
    if not isinstance(raw, Mapping):
        raise UserError(where, raw, "must be a table with switch_port_usd, optic_usd, radix")
    check_keys(raw, NETWORK_KEYS, where)
    radix = number(raw, "radix", where, minimum=2.0, strict=False)
    if radix != int(radix):
        raise UserError(f"{where}.radix", raw["radix"], "must be a whole number of ports")
    return NetworkPrice(
        switch_port_usd=number(raw, "switch_port_usd", where, strict=False),
        optic_usd=number(raw, "optic_usd", where, strict=False),
        radix=int(radix),
        date=str(raw.get("date", "")),
        source=str(raw.get("source", "")),
    )


def _merge(out: OwnershipData | None, raw: Mapping[str, Any], name: str) -> OwnershipData:
    unknown = sorted(set(raw) - {"revised", "defaults", "nodes", "network"})
    if unknown:
        raise UserError(
            f"{name}: [{unknown[0]}]", rule="unknown table (known: defaults, nodes, network)"
        )
    defaults, srcs = _defaults(raw.get("defaults", {}), f"{name}: defaults")
    nodes = {k: _node(v, f"{name}: nodes.{k}") for k, v in raw.get("nodes", {}).items()}
    network = {k: _network(v, f"{name}: network.{k}") for k, v in raw.get("network", {}).items()}
    if out is None:
        return OwnershipData(defaults, srcs, nodes, network)
    user = {k: f"your file {name}" for k in defaults}
    return OwnershipData(
        out.defaults | defaults,
        out.default_sources | user | srcs,
        out.nodes | nodes,
        out.network | network,
        origin=f"catalogue with {name}",
    )


def load_ownership(path: str | os.PathLike[str] | None = None) -> OwnershipData:
    """The catalogue's ownership figures, with the rows of `path` (if given) replacing them."""
    out = _merge(None, data("ownership"), "ownership.toml")
    if path is not None:
        p = Path(path)
        out = _merge(out, read_toml(p, "ownership"), p.name)
    return out
