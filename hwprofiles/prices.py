"""Rental prices in US dollars per GPU-hour, from `data/prices.toml` plus an optional user file.

A user file has the same shape as `data/prices.toml`: one table per accelerator key with at least
``usd_per_gpu_hour``; ``date``, ``source``, ``provider`` and ``pricing`` are optional. Its rows
replace the catalogue's rows of the same key; the others stay::

    [h100-sxm]
    usd_per_gpu_hour = 2.10
    date = "2026-10"
    source = "our 1-year reserved contract"
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.inputs import read_toml
from hwprofiles.presets import check_keys, number, tables

PRICE_KEYS = {
    "usd_per_gpu_hour",
    "instance_usd_per_hour",
    "gpus_per_instance",
    "provider",
    "pricing",
    "date",
    "source",
}


@dataclass(frozen=True)
class Price:
    """What one GPU-hour of an accelerator costs, and where that figure comes from."""

    usd_per_gpu_hour: float
    """US dollars per GPU per hour."""
    date: str
    """When the price was listed or read (free text, e.g. "2024-08")."""
    source: str
    provider: str = ""
    pricing: str = ""
    """Pricing model: "on-demand", "capacity-block", "reserved", ..."""


def parse_price(raw: Any, where: str, default_source: str) -> Price:
    """A `Price` from one TOML table; `where` prefixes error messages."""
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: {raw!r} must be a table with usd_per_gpu_hour")
    check_keys(raw, PRICE_KEYS, where)
    return Price(
        usd_per_gpu_hour=number(raw, "usd_per_gpu_hour", where),
        date=str(raw.get("date", "")),
        source=str(raw.get("source", default_source)),
        provider=str(raw.get("provider", "")),
        pricing=str(raw.get("pricing", "")),
    )


def read_price_file(path: str | os.PathLike[str]) -> dict[str, Price]:
    """The prices of one user file (no catalogue defaults)."""
    path = Path(path)
    raw = read_toml(path, "prices")
    return {
        k: parse_price(v, f"{path.name}: {k}", f"user file {path.name}")
        for k, v in raw.items()
        if k != "revised"
    }


def load_prices(path: str | os.PathLike[str] | None = None) -> dict[str, Price]:
    """Catalogue prices by accelerator key, with the rows of `path` (if given) replacing them."""
    out = {k: parse_price(v, f"prices.toml: {k}", "") for k, v in tables("prices").items()}
    if path is not None:
        out.update(read_price_file(path))
    return out
