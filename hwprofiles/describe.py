"""Plain, JSON-ready descriptions of profiles and catalogue entries, every number with its source.

Values stay SI (FLOP/s, bytes, bytes/s per direction, seconds, watts); renderers format them with
`hwprofiles.units`. Used by ``llmcap hardware``; also handy in notebooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwprofiles.prices import Price
from hwprofiles.profile import Accelerator, EfficiencyCurve, HardwareProfile, Link


@dataclass(frozen=True)
class Quantity:
    """One number of a profile: dotted key, SI value, unit and citation."""

    key: str
    value: float | int | str | None
    unit: str
    source: str


def half_size(curve: EfficiencyCurve) -> float | None:
    """The size at which `curve` first reaches half its maximum (log-interpolated), if it does."""
    sizes, fr = np.asarray(curve.sizes), np.asarray(curve.fractions)
    target = curve.max_fraction / 2.0
    above = np.nonzero(fr >= target)[0]
    if not len(above):
        return None
    i = int(above[0])
    if i == 0:
        return float(sizes[0])
    x0, x1 = math.log(sizes[i - 1]), math.log(sizes[i])
    t = (target - fr[i - 1]) / (fr[i] - fr[i - 1])
    return float(math.exp(x0 + t * (x1 - x0)))


def _curve(key: str, curve: EfficiencyCurve) -> list[Quantity]:
    return [
        Quantity(f"{key}.max_fraction", round(curve.max_fraction, 4), "1", curve.source),
        Quantity(f"{key}.half_size", half_size(curve), "FLOP", curve.source),
    ]


def _link(key: str, link: Link) -> list[Quantity]:
    return [
        Quantity(f"{key}.name", link.name, "", link.source),
        Quantity(f"{key}.bandwidth_bytes_per_s", link.bandwidth_bytes_per_s, "B/s", link.source),
        Quantity(f"{key}.latency_s", link.latency_s, "s", link.source),
        Quantity(f"{key}.efficiency", link.efficiency, "1", link.source),
    ]


def accelerator_quantities(acc: Accelerator, prefix: str = "accelerator") -> list[Quantity]:
    """Peaks (FLOP/s), memory (B, B/s), power (W) and curve summaries of one accelerator."""
    src = acc.sources
    rows = [Quantity(f"{prefix}.name", acc.name, "", "")]
    for dtype, peak in acc.peak_flops.items():
        rows.append(
            Quantity(f"{prefix}.peak_flops.{dtype}", peak, "FLOP/s", src.get("peak_flops", ""))
        )
    rows += [
        Quantity(f"{prefix}.memory_bytes", acc.memory_bytes, "B", src.get("memory_bytes", "")),
        Quantity(
            f"{prefix}.memory_bandwidth_bytes_per_s",
            acc.memory_bandwidth_bytes_per_s,
            "B/s",
            src.get("memory_bandwidth_bytes_per_s", ""),
        ),
        Quantity(
            f"{prefix}.memory_efficiency",
            acc.memory_efficiency,
            "1",
            src.get("memory_efficiency", ""),
        ),
        Quantity(f"{prefix}.tdp_w", acc.tdp_w, "W", src.get("tdp_w", "")),
        Quantity(f"{prefix}.idle_w", acc.idle_w, "W", src.get("idle_w", "")),
    ]
    rows += _curve(f"{prefix}.matmul_efficiency", acc.matmul_efficiency)
    for dtype, curve in acc.matmul_efficiency_by_dtype.items():
        if curve is not acc.matmul_efficiency:
            rows += _curve(f"{prefix}.matmul_efficiency_by_dtype.{dtype}", curve)
    rows += _curve(f"{prefix}.attention_efficiency", acc.attention_efficiency)
    return rows


def profile_quantities(profile: HardwareProfile) -> list[Quantity]:
    """Every number of `profile`, in reading order, with its unit and source."""
    node, fabric, power = profile.node, profile.fabric, profile.power
    rows = accelerator_quantities(profile.accelerator)
    rows += [
        Quantity("node.name", node.name, "", node.source),
        Quantity("node.gpus_per_node", node.gpus_per_node, "", node.source),
        *_link("node.scale_up", node.scale_up),
        *_link("node.scale_out", node.scale_out),
        Quantity("node.nics_per_node", node.nics_per_node, "", node.source),
        Quantity(
            "node.scale_out_bytes_per_s",
            node.scale_out_bytes_per_s,
            "B/s",
            "derived: scale_out bandwidth x efficiency x nics_per_node",
        ),
        Quantity("fabric.topology", fabric.topology, "", fabric.source),
        Quantity("fabric.oversubscription", fabric.oversubscription, "1", fabric.source),
        Quantity("power.idle_w", power.idle_w, "W", power.source),
        Quantity("power.tdp_w", power.tdp_w, "W", power.source),
        Quantity("power.comm_activity", power.comm_activity, "1", "modelled assumption"),
        Quantity(
            "power.memory_bound_activity", power.memory_bound_activity, "1", "modelled assumption"
        ),
        Quantity(
            "price.usd_per_gpu_hour",
            profile.price_per_gpu_hour_usd,
            "USD/GPU-h",
            profile.price_source,
        ),
    ]
    return rows


def describe_profile(profile: HardwareProfile) -> dict[str, Any]:
    """JSON-ready dict: name, provenance and ``quantities`` (key -> value, unit, source)."""
    prov = profile.provenance
    return {
        "name": profile.name,
        "provenance": {
            "kind": prov.kind,
            "date": prov.date,
            "measured": list(prov.measured),
            "machine": dict(prov.machine),
            "notes": prov.notes,
        },
        "quantities": {
            q.key: {"value": q.value, "unit": q.unit, "source": q.source}
            for q in profile_quantities(profile)
        },
        "collectives": [
            {
                "collective": c.collective,
                "world_size": c.world_size,
                "alpha_s": c.alpha_s,
                "beta_s_per_byte": c.beta_s_per_byte,
                "backend": c.backend,
                "source": c.source,
            }
            for c in profile.collectives
        ],
    }


def describe_price(price: Price | None) -> dict[str, Any] | None:
    """A price as a JSON-ready dict (USD per GPU-hour), or None."""
    if price is None:
        return None
    return {
        "usd_per_gpu_hour": price.usd_per_gpu_hour,
        "date": price.date,
        "provider": price.provider,
        "pricing": price.pricing,
        "source": price.source,
    }


def describe_link(link: Link) -> dict[str, Any]:
    """A link as a JSON-ready dict: bytes/s per direction, latency in s, efficiency, source."""
    return {
        "bandwidth_bytes_per_s": link.bandwidth_bytes_per_s,
        "latency_s": link.latency_s,
        "efficiency": link.efficiency,
        "source": link.source,
    }
