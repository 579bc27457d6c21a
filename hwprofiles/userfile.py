"""User hardware files: a catalogue preset plus overrides, or a fully custom machine, in TOML.

Schema (see docs/hardware.md for a worked example)::

    name = "my-cluster"        # optional; default: the file name without .toml
    base = "dgx-h100"          # optional: a node preset, or an accelerator (= its default node)
    source = "..."             # optional: where the file's numbers come from

    # node-level keys (required when there is no `base`):
    accelerator = "h100-sxm"   # an accelerator preset name, or the [accelerator] table below
    gpus_per_node = 8
    scale_up = "nvlink4"       # a link preset name, or a table like [scale_out] below
    scale_out = "ndr"
    nics_per_node = 8

    [accelerator]              # overrides of the base's accelerator, in accelerators.toml schema;
    base = "h100-sxm"          # optional own base; without any base all fields are required
    memory.capacity_gib = 94

    [scale_out]                # a link in links.toml schema, optionally from a preset
    base = "ndr"
    rate = "200 Gb/s"          # per direction unless rate_is = "bidirectional"

    [fabric]
    topology = "fat-tree"      # or "rail-optimized"
    oversubscription = 2.0

    [price]                    # optional: replaces the catalogue price of the accelerator
    usd_per_gpu_hour = 2.5
    date = "2026-10"

Overrides merge into the preset key by key (nested tables too). A number you override without
giving its own ``<key>_source`` (or a ``source`` in its table) is cited as "user file <name>", so
the resolved profile never passes a user's number off as the datasheet's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwprofiles import presets
from hwprofiles.errors import UserError
from hwprofiles.inputs import read_toml
from hwprofiles.prices import Price, parse_price
from hwprofiles.profile import Accelerator, Fabric, Node

TOP_KEYS = {"name", "base", "source", "price"} | presets.NODE_KEYS


@dataclass(frozen=True)
class UserHardware:
    """What a user file resolves to, before it becomes a `HardwareProfile`."""

    name: str
    accelerator_key: str | None
    """The accelerator preset the accelerator derives from (prices are looked up by it)."""
    accelerator: Accelerator
    node: Node
    fabric: Fabric
    price: Price | None
    source: str


def _is_value(v: Any) -> bool:
    return not isinstance(v, (Mapping, list))


def merge(base: Mapping[str, Any], over: Mapping[str, Any], label: str) -> dict[str, Any]:
    """`over` merged into `base` (recursively); overridden values get `<key>_source = label`.

    When `over` brings its own table `source`, the base's values it does not override keep the
    base's source as their own `<key>_source`.
    """
    out = dict(base)
    if "source" in over and "source" in base:
        for k, v in base.items():
            if _is_value(v) and not k.endswith("source") and k not in over:
                out.setdefault(f"{k}_source", base["source"])
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v, label)
            continue
        out[k] = v
        cited = f"{k}_source" in over or "source" in over
        if _is_value(v) and not k.endswith("source") and k != "base" and not cited:
            out[f"{k}_source"] = label
    return out


def _link(value: Any, label: str, where: str) -> Any:
    """A link preset name as is; a table merged onto its `base` preset, if it names one."""
    if not isinstance(value, Mapping) or "base" not in value:
        return value
    raw = presets.tables("links")
    if value["base"] not in raw:
        known = ", ".join(raw)
        raise UserError(f"{where}.base: {value['base']!r} is not a known link (known: {known})")
    return merge(raw[value["base"]], value, label)


def _base(raw: Mapping[str, Any], where: str) -> tuple[dict[str, Any], str | None]:
    """The node table the file starts from, and its accelerator key."""
    base = raw.get("base")
    if base is None:
        return {}, None
    accels, nodes = presets.tables("accelerators"), presets.tables("nodes")
    if base in accels:
        return dict(nodes[presets.default_nodes()[base]]), str(base)
    if base in nodes:
        return dict(nodes[base]), str(nodes[base]["accelerator"])
    known = ", ".join([*accels, *nodes])
    raise UserError(f"{where}.base: {base!r} is not a preset (known: {known})")


def _accelerator(
    value: Any, base_key: str | None, label: str, where: str
) -> tuple[Accelerator, str | None]:
    tables = presets.tables("accelerators")
    known = ", ".join(tables)
    if value is None:
        if base_key is None:
            raise UserError(f"{where}.accelerator: missing (give `base` or `accelerator`)")
        return presets.accelerators()[base_key], base_key
    if isinstance(value, str):
        if value not in tables:
            raise UserError(f"{where}.accelerator: {value!r} is not a preset (known: {known})")
        return presets.accelerators()[value], value
    if not isinstance(value, Mapping):
        raise UserError(f"{where}.accelerator: {value!r} must be a preset name or a table")
    key = value.get("base", base_key)
    if key is not None and key not in tables:
        raise UserError(f"{where}.accelerator.base: {key!r} is not a preset (known: {known})")
    table = merge(tables[key], value, label) if key is not None else dict(value)
    name = str(value.get("name") or key or "custom")
    return presets.build_accelerator(name, table, f"{where}.accelerator"), key


def read_user_file(path: str | os.PathLike[str]) -> UserHardware:
    """Resolve a user hardware file (schema in the module docstring) against the catalogue."""
    path = Path(path)
    where, label = path.name, f"user file {path.name}"
    raw = read_toml(path, "hardware")
    presets.check_keys(raw, TOP_KEYS, where)
    for key in ("name", "base"):
        if key in raw and not isinstance(raw[key], str):
            raise UserError(f"{where}.{key}", raw[key], "must be a string")

    node_raw, base_key = _base(raw, where)
    accelerator, accel_key = _accelerator(raw.get("accelerator"), base_key, label, where)
    overrides = {k: raw[k] for k in presets.NODE_KEYS - {"accelerator"} if k in raw}
    for k in ("scale_up", "scale_out"):
        if k in overrides:
            node_raw.pop(k, None)  # a new link replaces the base's, it does not merge into a name
            node_raw.pop(f"{k}_source", None)
            overrides[k] = _link(overrides[k], label, f"{where}.{k}")
    if "source" in raw:
        overrides["source"] = raw["source"]
    merged = merge(node_raw, overrides, label)
    merged["accelerator"] = accelerator.name
    merged.pop("accelerator_source", None)
    name = str(raw.get("name") or path.stem)
    preset = presets.build_node(name, merged, presets.links(), where)
    price = parse_price(raw["price"], f"{where}.price", label) if "price" in raw else None
    return UserHardware(
        name=name,
        accelerator_key=accel_key,
        accelerator=accelerator,
        node=preset.node,
        fabric=preset.fabric,
        price=price,
        source=str(raw.get("source", label)),
    )
