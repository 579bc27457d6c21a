"""The hardware catalogue: turn a name, a file or a directory into a `HardwareProfile`.

``load_profile(spec)`` accepts, in this order:

1. an accelerator preset (``"a100-80gb"``): that accelerator in its default node
   (``data/nodes.toml [default_node]``: ``a100-80gb`` -> DGX A100 nodes on an HDR fat-tree);
2. a node preset (``"dgx-h100"``);
3. a path to a user TOML file: a preset plus overrides, or a fully custom machine
   (schema in `hwprofiles.userfile` and docs/hardware.md);
4. a directory holding a calibrated profile (`hwprofiles.calibration.loader`);
5. the name of a saved calibrated profile (`hwprofiles.calibration.store.find_saved`).

Presets win over files of the same name; pass a `pathlib.Path` to force the file. The keyword
overrides (``gpus_per_node``, ``scale_out``, ...) apply last, whatever the spec was.

Datasheet profiles carry ``Provenance(kind="datasheet")``; which of their numbers are vendor
figures, public measurements or llmcap's modelled estimates is written in each number's source.
Everything returned is SI: FLOP/s, bytes, bytes/s per direction, seconds, watts.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

from hwprofiles import presets
from hwprofiles.errors import UserError
from hwprofiles.inputs import path_kind
from hwprofiles.presets import TOPOLOGIES, NodePreset
from hwprofiles.prices import Price, load_prices
from hwprofiles.profile import (
    Accelerator,
    Fabric,
    HardwareProfile,
    Link,
    Node,
    PowerModel,
    Provenance,
)
from hwprofiles.userfile import read_user_file

__all__ = [
    "NodePreset",
    "Price",
    "default_node",
    "known_hardware",
    "list_accelerators",
    "list_links",
    "list_nodes",
    "load_prices",
    "load_profile",
]

NOTES = (
    "peaks, memory and TDP from datasheets; efficiencies from public measurements or analogy "
    "and idle power modelled (see each source); replace with `llmcap calibrate`"
)


def list_accelerators() -> dict[str, Accelerator]:
    """Accelerator presets by name (a new dict of the cached, frozen objects)."""
    return dict(presets.accelerators())


def list_nodes() -> dict[str, NodePreset]:
    """Node presets by name, each with its accelerator name, `Node` and usual `Fabric`."""
    return dict(presets.nodes())


def list_links() -> dict[str, Link]:
    """Link presets by name; bandwidths are bytes/s per direction."""
    return dict(presets.links())


def default_node(accelerator: str) -> str:
    """The node preset a bare accelerator name stands for (``"a100-80gb"`` -> ``"dgx-a100"``)."""
    nodes = presets.default_nodes()
    if accelerator not in nodes:
        raise UserError(
            f"accelerator: {accelerator!r} is not a preset (known: {', '.join(sorted(nodes))})"
        )
    return nodes[accelerator]


def known_hardware() -> list[str]:
    """Every preset name `load_profile` accepts: accelerators, then nodes, each sorted."""
    return sorted(presets.accelerators()) + sorted(presets.nodes())


def _power(acc: Accelerator) -> PowerModel:
    src = f"idle: {acc.sources.get('idle_w', '')}; tdp: {acc.sources.get('tdp_w', '')}"
    return PowerModel(idle_w=acc.idle_w, tdp_w=acc.tdp_w, source=src)


def _profile(
    name: str,
    acc: Accelerator,
    node: Node,
    fabric: Fabric,
    price: Price | None,
    notes: str = NOTES,
) -> HardwareProfile:
    cost = f"{price.source} ({price.provider}, {price.pricing}, {price.date})" if price else ""
    return HardwareProfile(
        name=name,
        accelerator=acc,
        node=node,
        fabric=fabric,
        power=_power(acc),
        provenance=Provenance(kind="datasheet", date=presets.revised(), notes=notes),
        price_per_gpu_hour_usd=price.usd_per_gpu_hour if price else None,
        price_source=cost,
    )


def _from_preset(name: str, node_key: str, prices: dict[str, Price]) -> HardwareProfile:
    preset = presets.nodes()[node_key]
    acc = presets.accelerators()[preset.accelerator]
    return _profile(name, acc, preset.node, preset.fabric, prices.get(preset.accelerator))


def _from_file(path: Path, prices: dict[str, Price]) -> HardwareProfile:
    user = read_user_file(path)
    price = user.price or (prices.get(user.accelerator_key) if user.accelerator_key else None)
    notes = f"{NOTES}; overrides from {path.name}: {user.source}"
    return _profile(user.name, user.accelerator, user.node, user.fabric, price, notes)


def _calibrated(path: Path) -> HardwareProfile:
    try:
        from hwprofiles.calibration.loader import load_calibrated_profile
    except ImportError as exc:
        raise UserError(
            f"hardware: {str(path)!r} is a directory, but calibrated profiles cannot be "
            f"loaded in this installation ({exc})"
        ) from None
    try:
        return load_calibrated_profile(path)
    except UserError:
        raise
    except (KeyError, TypeError, ValueError) as exc:  # a field of the wrong type or shape
        raise UserError(
            "hardware",
            str(path),
            f"is not a valid calibration profile ({type(exc).__name__}: {exc})",
        ) from None


def _saved(name: str) -> Path | None:
    try:
        from hwprofiles.calibration.store import find_saved
    except ImportError:
        return None
    return find_saved(name)


def _saved_names() -> list[str]:
    try:
        from hwprofiles.calibration.store import list_saved
    except ImportError:
        return []
    return [f"{name} (calibrated)" for name in list_saved()]


def _resolve(spec: str | os.PathLike[str], prices: dict[str, Price]) -> HardwareProfile:
    text = os.fspath(spec)
    if not text.strip():
        raise UserError(f"hardware: {text!r} is empty (known: {', '.join(known_hardware())})")
    if isinstance(spec, str):
        if text in presets.accelerators():
            return _from_preset(text, presets.default_nodes()[text], prices)
        if text in presets.nodes():
            return _from_preset(text, text, prices)
    path = Path(text)
    kind = path_kind(path)
    if kind == "dir":
        return _calibrated(path)
    if kind == "file":
        return _from_file(path, prices)
    if isinstance(spec, str) and (saved := _saved(text)) is not None:
        return _calibrated(saved)
    known = ", ".join(known_hardware() + _saved_names())
    raise UserError(f"hardware: {text!r} is not a preset or a file (known: {known})")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name}: {value!r} must be an integer >= 1")
    return value


def _override(
    p: HardwareProfile,
    gpus_per_node: int | None,
    scale_out: str | None,
    nics_per_node: int | None,
    oversubscription: float | None,
    topology: str | None,
) -> HardwareProfile:
    node, fabric = p.node, p.fabric
    if gpus_per_node is not None:
        node = replace(node, gpus_per_node=_positive_int("gpus_per_node", gpus_per_node))
    if scale_out is not None:
        links = presets.links()
        if scale_out not in links:
            known = ", ".join(links)
            raise UserError(f"scale_out: {scale_out!r} is not a known link (known: {known})")
        node = replace(node, scale_out=links[scale_out])
    if nics_per_node is not None:
        node = replace(node, nics_per_node=_positive_int("nics_per_node", nics_per_node))
    if oversubscription is not None:
        bad = isinstance(oversubscription, bool) or not isinstance(oversubscription, (int, float))
        if bad or not math.isfinite(oversubscription) or oversubscription < 1.0:
            raise UserError(f"oversubscription: {oversubscription!r} must be a number >= 1")
        note = f"{fabric.source}; oversubscription {oversubscription:g} set by the caller"
        fabric = replace(fabric, oversubscription=float(oversubscription), source=note)
    if topology is not None:
        if topology not in TOPOLOGIES:
            raise UserError(f"topology: {topology!r} must be one of {', '.join(TOPOLOGIES)}")
        note = f"{fabric.source}; topology {topology} set by the caller"
        fabric = replace(fabric, topology=topology, source=note)
    return replace(p, node=node, fabric=fabric)


def load_profile(
    spec: str | os.PathLike[str],
    *,
    gpus_per_node: int | None = None,
    scale_out: str | None = None,
    nics_per_node: int | None = None,
    oversubscription: float | None = None,
    topology: str | None = None,
    prices: str | os.PathLike[str] | None = None,
) -> HardwareProfile:
    """Resolve `spec` (preset, user file, calibrated directory or saved name) to a profile.

    Keyword overrides replace the node's GPU count, its NIC link (a links.toml name) and count,
    and the fabric's oversubscription (>= 1) or topology. `prices` is an optional price file whose
    rows replace the catalogue's (`hwprofiles.prices`). Unknown names raise ``ValueError`` listing
    the known presets.
    """
    profile = _resolve(spec, load_prices(prices))
    return _override(profile, gpus_per_node, scale_out, nics_per_node, oversubscription, topology)
