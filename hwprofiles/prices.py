"""Rental prices in US dollars per GPU-hour, from `data/prices.toml` plus an optional user file.

A user file has the same shape as `data/prices.toml`: one table per accelerator key with at least
``usd_per_gpu_hour``; ``date``, ``source``, ``provider``, ``pricing`` and ``class`` are optional.
Its rows replace the catalogue's rows of the same key (and class); the others stay::

    [h100-sxm]
    usd_per_gpu_hour = 2.10
    date = "2026-10"
    source = "our 1-year reserved contract"

Every row belongs to one provider class (`PRICE_CLASSES`): hyperscaler on-demand, hyperscaler
reserved (capacity blocks, 1-3 year commitments) or GPU cloud; a user row without ``class`` is
a ``quote``. An accelerator's top-level table is its default row; rows of other classes sit in
sub-tables named by class (``[h100-sxm.gpu-cloud]``). Prices differ several-fold between
classes, so a fair comparison takes every accelerator's price from one class
(`select_prices`).
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
    "class",
}

PRICE_CLASSES = ("quote", "gpu-cloud", "hyperscaler-reserved", "hyperscaler-on-demand")
"""Provider classes, in the order a default is picked: your own quotes first, then the
cheapest public class that usually prices every accelerator."""


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
    price_class: str = ""
    """One of `PRICE_CLASSES`."""

    @property
    def label(self) -> str:
        """Short provenance, e.g. "$2.99/GPU-h, gpu-cloud: Lambda on-demand, 2026-05"."""
        who = " ".join(x for x in (self.provider, self.pricing) if x)
        return (
            f"${self.usd_per_gpu_hour:,.2f}/GPU-h, {self.price_class or 'unclassed'}"
            + (f": {who}" if who else "")
            + (f", {self.date}" if self.date else "")
        )


def _row(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The table without its class sub-tables."""
    return {k: v for k, v in raw.items() if not (k in PRICE_CLASSES and isinstance(v, Mapping))}


def parse_price(raw: Any, where: str, default_source: str, default_class: str = "quote") -> Price:
    """A `Price` from one TOML table (class sub-tables ignored); `where` prefixes errors."""
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: {raw!r} must be a table with usd_per_gpu_hour")
    row = _row(raw)
    check_keys(row, PRICE_KEYS, where)
    cls = str(row.get("class", default_class))
    if cls not in PRICE_CLASSES:
        raise UserError(f"{where}.class", cls, f"must be one of {', '.join(PRICE_CLASSES)}")
    return Price(
        usd_per_gpu_hour=number(row, "usd_per_gpu_hour", where),
        date=str(row.get("date", "")),
        source=str(row.get("source", default_source)),
        provider=str(row.get("provider", "")),
        pricing=str(row.get("pricing", "")),
        price_class=cls,
    )


def _rows(raw: Mapping[str, Any], where: str, source: str, cls: str) -> dict[str, Price]:
    """Every row of one accelerator's table, by class (default row and class sub-tables)."""
    out: dict[str, Price] = {}
    if "usd_per_gpu_hour" in raw or not any(k in PRICE_CLASSES for k in raw):
        p = parse_price(raw, where, source, cls)
        out[p.price_class] = p
    for k, v in raw.items():
        if k in PRICE_CLASSES and isinstance(v, Mapping):
            p = parse_price(v, f"{where}.{k}", source, k)
            if p.price_class != k:
                raise UserError(f"{where}.{k}.class", p.price_class, f"must be {k!r} here")
            out[k] = p
    return out


def load_price_rows(
    path: str | os.PathLike[str] | None = None,
) -> dict[str, dict[str, Price]]:
    """Accelerator key -> provider class -> price: the catalogue's rows, then `path`'s."""
    out = {k: _rows(v, f"prices.toml: {k}", "", "quote") for k, v in tables("prices").items()}
    if path is not None:
        p = Path(path)
        raw = read_toml(p, "prices")
        for k, v in raw.items():
            if k == "revised":
                continue
            if not isinstance(v, Mapping):
                raise UserError(f"{p.name}: {k}: {v!r} must be a table with usd_per_gpu_hour")
            out.setdefault(k, {}).update(_rows(v, f"{p.name}: {k}", f"user file {p.name}", "quote"))
    return out


def select_prices(
    rows: Mapping[str, Mapping[str, Price]],
    accelerators: list[str],
    price_class: str | None = None,
) -> tuple[dict[str, Price], str, list[str]]:
    """One class of prices for `accelerators`: (key -> price, class, the keys it cannot price).

    With `price_class` None, the first of `PRICE_CLASSES` that prices every accelerator (else
    the one that prices most of them): like is compared with like.
    """
    if price_class is not None and price_class not in PRICE_CLASSES:
        raise UserError("price-class", price_class, f"must be one of {', '.join(PRICE_CLASSES)}")

    def covered(cls: str) -> list[str]:
        return [a for a in accelerators if cls in rows.get(a, {})]

    if price_class is None:
        price_class = max(PRICE_CLASSES, key=lambda c: (len(covered(c)), -PRICE_CLASSES.index(c)))
    chosen = {a: rows[a][price_class] for a in covered(price_class)}
    missing = [a for a in accelerators if a not in chosen]
    return chosen, price_class, missing


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
    """Catalogue prices by accelerator key (each one's default row, whatever its class), with
    the rows of `path` (if given) replacing them."""
    out = {k: parse_price(v, f"prices.toml: {k}", "") for k, v in tables("prices").items()}
    if path is not None:
        out.update(read_price_file(path))
    return out
