"""Datasheet presets: read `hwprofiles/data/*.toml` once and build frozen, SI-unit dataclasses.

This is the edge where the catalogue's units (TFLOP/s, GiB, GB/s, "900 GB/s" bidirectional, us)
become SI (FLOP/s, bytes, bytes/s per direction, s). The builders take plain dicts, so user files
(`hwprofiles.userfile`) reuse them after merging their overrides onto a preset's dict. Every
builder validates its input and raises ``ValueError("<where>.<field>: <value> <rule>")``.

The TOML schema is documented at the top of each data file and in docs/hardware.md.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from hwprofiles.errors import UserError
from hwprofiles.profile import DTYPES, Accelerator, EfficiencyCurve, Fabric, Link, Node
from hwprofiles.units import parse_bandwidth

TOPOLOGIES = ("fat-tree", "rail-optimized")
RATE_KINDS = ("per-direction", "bidirectional")
REFERENCE_DTYPES = ("bf16", "fp16", "fp32", "tf32", "fp8")
"""The dtype whose peak a half-efficiency size refers to: the first of these the device has."""

ACCELERATOR_KEYS = {
    "": {"model", "name", "base", "peak_tflops", "memory", "power", "efficiency", "source"},
    "memory": {"capacity_gib", "bandwidth_gb_per_s", "efficiency", "source"},
    "power": {"tdp_w", "idle_w", "source"},
    "efficiency": {
        "matmul_max_fraction",
        "attention_max_fraction",
        "kernel_overhead_us",
        "matmul_half_flops",
        "attention_half_flops",
        "matmul_by_dtype",
        "sustained_fraction",
        "source",
    },
}
LINK_KEYS = {"base", "rate", "rate_is", "latency_us", "efficiency", "source"}
NODE_KEYS = {
    "accelerator", "gpus_per_node", "scale_up", "scale_out", "nics_per_node", "fabric",
    "gpus_per_host",
}  # fmt: skip
FABRIC_KEYS = {"topology", "oversubscription", "source"}


@dataclass(frozen=True)
class NodePreset:
    """A catalogue node: which accelerator it holds, the `Node` itself and its usual fabric."""

    name: str
    accelerator: str
    """Key of the accelerator preset (or of the user's accelerator)."""
    node: Node
    fabric: Fabric


# ----------------------------------------------------------------------------- raw data
@functools.cache
def data(name: str) -> Mapping[str, Any]:
    """The parsed TOML of `hwprofiles/data/<name>.toml` (cached; never mutate it)."""
    text = resources.files("hwprofiles").joinpath("data", f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def tables(name: str) -> dict[str, Mapping[str, Any]]:
    """The preset tables of a data file (top-level scalars such as `revised` left out)."""
    return {k: v for k, v in data(name).items() if isinstance(v, Mapping) and k != "default_node"}


def sustained_fraction() -> tuple[float, str]:
    """The catalogue-wide share of an isolated kernel's measured rate that a training step
    sustains (accelerators.toml `sustained_fraction`, with its source)."""
    d = data("accelerators")
    return float(d.get("sustained_fraction", 1.0)), str(d.get("sustained_fraction_source", ""))


def revised() -> str:
    """Revision date of the catalogue (the accelerators file's `revised`)."""
    return str(data("accelerators").get("revised", ""))


# ----------------------------------------------------------------------------- validation
def check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Reject a non-table and unknown keys (typos in user files); `<known>_source` is always
    allowed and, like `source`, must be a string."""
    if not isinstance(table, Mapping):
        raise UserError(where, table, "must be a table")
    for key in table:
        base = key[: -len("_source")] if key.endswith("_source") else key
        if base not in allowed:
            known = ", ".join(sorted(allowed))
            raise UserError(f"{where}.{key}: unknown key (known: {known})")
        if key.endswith("source") and not isinstance(table[key], str):
            raise UserError(f"{where}.{key}", table[key], "must be a string (a citation)")


def number(
    table: Mapping[str, Any],
    key: str,
    where: str,
    *,
    minimum: float = 0.0,
    strict: bool = True,
    maximum: float | None = None,
) -> float:
    """A finite number from `table[key]` with a bound check; the message names field and rule."""
    if key not in table:
        raise UserError(f"{where}.{key}: missing (required)")
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise UserError(f"{where}.{key}: {v!r} must be a finite number")
    if (strict and v <= minimum) or (not strict and v < minimum):
        rule = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise UserError(f"{where}.{key}: {v!r} must be {rule}")
    if maximum is not None and v > maximum:
        raise UserError(f"{where}.{key}: {v!r} must be <= {maximum:g}")
    return float(v)


def integer(table: Mapping[str, Any], key: str, where: str, *, minimum: int = 1) -> int:
    if key not in table:
        raise UserError(f"{where}.{key}: missing (required)")
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise UserError(f"{where}.{key}: {v!r} must be an integer >= {minimum}")
    return v


def source_of(table: Mapping[str, Any], key: str) -> str:
    """`<key>_source` if given, else the table's `source`."""
    return str(table.get(f"{key}_source") or table.get("source") or "")


def combined_source(table: Mapping[str, Any]) -> str:
    """The table's `source`, followed by "key: source" for keys that carry their own."""
    parts = [str(table["source"])] if table.get("source") else []
    for key, value in table.items():
        if key.endswith("_source") and value and value != table.get("source"):
            parts.append(f"{key[: -len('_source')]}: {value}")
    return "; ".join(parts)


def subtable(table: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    v = table.get(key)
    if not isinstance(v, Mapping):
        raise UserError(f"{where}.{key}: missing table (required)")
    return v


# ----------------------------------------------------------------------------- builders
def build_link(name: str, raw: Mapping[str, Any], where: str | None = None) -> Link:
    """A `Link` from a links.toml table; `rate` is converted to bytes/s per direction."""
    where = where or f"link {name!r}"
    check_keys(raw, LINK_KEYS, where)
    kind = raw.get("rate_is", "per-direction")
    if kind not in RATE_KINDS:
        raise UserError(f"{where}.rate_is: {kind!r} must be one of {', '.join(RATE_KINDS)}")
    if "rate" not in raw:
        raise UserError(f"{where}.rate: missing (required, e.g. '400 Gb/s')")
    try:
        bw = parse_bandwidth(raw["rate"], bidirectional=kind == "bidirectional")
    except ValueError as exc:
        raise UserError(f"{where}.rate: {exc}") from None
    if bw <= 0:
        raise UserError(f"{where}.rate: {raw['rate']!r} must be > 0")
    latency = number(raw, "latency_us", where, strict=False) * 1e-6
    eff = number(raw, "efficiency", where, maximum=1.0) if "efficiency" in raw else 1.0
    srcs = {k: source_of(raw, k) for k in ("rate", "latency_us", "efficiency")}
    text = (
        srcs["rate"]
        if len(set(srcs.values())) == 1
        else "; ".join(f"{k}: {v}" for k, v in srcs.items())
    )
    return Link(name, bw, latency, eff, text)


def _reference_dtype(peaks: Mapping[str, float]) -> str:
    return next(d for d in REFERENCE_DTYPES if d in peaks)


def _curve(
    kind: str,
    peak: float,
    dtype: str,
    frac: float,
    frac_src: str,
    half: float | None,
    overhead: float,
    overhead_src: str,
) -> EfficiencyCurve:
    """A saturating curve whose half-efficiency size is derived from the per-kernel overhead."""
    if half is None:
        half = peak * frac * overhead
        how = (
            f"half = peak {peak:.4g} FLOP/s ({dtype}) x {frac:.3g} x overhead {overhead:.3g} s"
            f" = {half:.3g} FLOP, where compute time equals the fixed per-kernel overhead"
            f" (overhead: {overhead_src})"
        )
    else:
        how = f"half = {half:.3g} FLOP given directly"
    text = f"{kind} f(s) = {frac:.3g} * s / (s + {half:.3g}); max: {frac_src}; {how}"
    return EfficiencyCurve.saturating(frac, half, text)


def _peaks(pt: Mapping[str, Any], where: str) -> dict[str, float]:
    """Dense peak FLOP/s per dtype from a `peak_tflops` table."""
    peaks: dict[str, float] = {}
    for key in pt:
        if key == "source" or key.endswith("_source"):
            continue
        if key not in DTYPES:
            known = ", ".join(DTYPES)
            raise UserError(f"{where}.peak_tflops.{key}: unknown dtype (known: {known})")
        peaks[key] = number(pt, key, f"{where}.peak_tflops") * 1e12
    if not peaks:
        raise UserError(f"{where}.peak_tflops: needs at least one of {', '.join(DTYPES)}")
    return peaks


def _curves(
    eff: Mapping[str, Any], peaks: Mapping[str, float], w: str
) -> tuple[dict[str, EfficiencyCurve], EfficiencyCurve]:
    """Matmul curves per dtype and the attention curve from an `efficiency` table.

    One fixed per-kernel overhead t serves all of them: half = peak[dtype] * max_fraction * t. It
    is `kernel_overhead_us`, or implied by a given `matmul_half_flops` (for the reference dtype).
    """
    ref = _reference_dtype(peaks)
    if "sustained_fraction" in eff:
        keep = number(eff, "sustained_fraction", w, maximum=1.0)
        keep_src = source_of(eff, "sustained_fraction")
    else:
        keep, keep_src = sustained_fraction()
    sus = f" x sustained {keep:.3g} ({keep_src})" if keep != 1.0 else ""
    mm = number(eff, "matmul_max_fraction", w, maximum=1.0) * keep
    att = number(eff, "attention_max_fraction", w, maximum=1.0) * keep
    att_half = number(eff, "attention_half_flops", w) if "attention_half_flops" in eff else None
    if "matmul_half_flops" in eff:
        overhead = number(eff, "matmul_half_flops", w) / (peaks[ref] * mm)
        overhead_src = f"implied by matmul_half_flops ({source_of(eff, 'matmul_half_flops')})"
    else:
        overhead = number(eff, "kernel_overhead_us", w) * 1e-6
        overhead_src = source_of(eff, "kernel_overhead_us")
    by = eff.get("matmul_by_dtype", {})
    if not isinstance(by, Mapping):
        raise UserError(f"{w}.matmul_by_dtype: {by!r} must be a table of dtype = fraction")
    for key in by:
        if key != "source" and not key.endswith("_source") and key not in peaks:
            raise UserError(f"{w}.matmul_by_dtype.{key}: the device has no {key} peak")
    curves: dict[str, EfficiencyCurve] = {}
    for dt, peak in peaks.items():
        if dt in by:
            frac = number(by, dt, f"{w}.matmul_by_dtype", maximum=1.0) * keep
            frac_src = source_of(by, dt) + sus
        else:
            frac, frac_src = mm, source_of(eff, "matmul_max_fraction") + sus
        curves[dt] = _curve("matmul", peak, dt, frac, frac_src, None, overhead, overhead_src)
    att_src = source_of(eff, "attention_max_fraction") + sus
    attention = _curve("attention", peaks[ref], ref, att, att_src, att_half, overhead, overhead_src)
    return curves, attention


def build_accelerator(name: str, raw: Mapping[str, Any], where: str | None = None) -> Accelerator:
    """An `Accelerator` from an accelerators.toml table (units in key names -> SI)."""
    where = where or f"accelerator {name!r}"
    check_keys(raw, ACCELERATOR_KEYS[""], where)
    pt = subtable(raw, "peak_tflops", where)
    peaks = _peaks(pt, where)
    mem, pw, eff = (subtable(raw, k, where) for k in ("memory", "power", "efficiency"))
    for key, table in (("memory", mem), ("power", pw), ("efficiency", eff)):
        check_keys(table, ACCELERATOR_KEYS[key], f"{where}.{key}")
    tdp = number(pw, "tdp_w", f"{where}.power")
    idle = number(pw, "idle_w", f"{where}.power", strict=False)
    if idle > tdp:
        raise UserError(f"{where}.power.idle_w: {idle:g} must be <= tdp_w ({tdp:g})")
    curves, attention = _curves(eff, peaks, f"{where}.efficiency")
    ref = _reference_dtype(peaks)
    return Accelerator(
        name=name,
        peak_flops=peaks,
        memory_bytes=number(mem, "capacity_gib", f"{where}.memory") * 2.0**30,
        memory_bandwidth_bytes_per_s=number(mem, "bandwidth_gb_per_s", f"{where}.memory") * 1e9,
        tdp_w=tdp,
        idle_w=idle,
        matmul_efficiency=curves[ref],
        attention_efficiency=attention,
        memory_efficiency=number(mem, "efficiency", f"{where}.memory", maximum=1.0),
        matmul_efficiency_by_dtype=curves,
        sources={
            "peak_flops": combined_source(pt),
            "memory_bytes": source_of(mem, "capacity_gib"),
            "memory_bandwidth_bytes_per_s": source_of(mem, "bandwidth_gb_per_s"),
            "memory_efficiency": source_of(mem, "efficiency"),
            "tdp_w": source_of(pw, "tdp_w"),
            "idle_w": source_of(pw, "idle_w"),
            "matmul_efficiency": curves[ref].source,
            "attention_efficiency": attention.source,
        },
    )


def build_fabric(raw: Mapping[str, Any], where: str) -> Fabric:
    check_keys(raw, FABRIC_KEYS, where)
    topology = raw.get("topology", "fat-tree")
    if topology not in TOPOLOGIES:
        raise UserError(f"{where}.topology: {topology!r} must be one of {', '.join(TOPOLOGIES)}")
    over = (
        number(raw, "oversubscription", where, minimum=1.0, strict=False)
        if "oversubscription" in raw
        else 1.0
    )
    return Fabric(topology, over, combined_source(raw))


def resolve_link(value: Any, links: Mapping[str, Link], where: str) -> Link:
    """A link given by preset name, or by a table in the links.toml schema.

    A table's optional `base` names the preset it was merged from (see `hwprofiles.userfile`) and
    becomes the link's name; a table without one is called "custom".
    """
    if isinstance(value, str):
        if value not in links:
            raise UserError(f"{where}: {value!r} is not a known link (known: {', '.join(links)})")
        return links[value]
    if isinstance(value, Mapping):
        return build_link(str(value.get("base", "custom")), value, where)
    raise UserError(f"{where}: {value!r} must be a link name or a table")


def build_node(
    name: str, raw: Mapping[str, Any], links: Mapping[str, Link], where: str | None = None
) -> NodePreset:
    """A `NodePreset` from a nodes.toml table; link names must exist in `links`."""
    where = where or f"node {name!r}"
    check_keys(raw, NODE_KEYS | {"source"}, where)
    accel = raw.get("accelerator")
    if not isinstance(accel, str):
        raise UserError(f"{where}.accelerator: {accel!r} must be an accelerator name")
    node = Node(
        name=name,
        gpus_per_node=integer(raw, "gpus_per_node", where),
        scale_up=resolve_link(raw.get("scale_up"), links, f"{where}.scale_up"),
        scale_out=resolve_link(raw.get("scale_out"), links, f"{where}.scale_out"),
        nics_per_node=integer(raw, "nics_per_node", where),
        source=combined_source(raw),
        gpus_per_host=integer(raw, "gpus_per_host", where) if "gpus_per_host" in raw else None,
    )
    fabric = build_fabric(raw.get("fabric", {}), f"{where}.fabric")
    return NodePreset(name, accel, node, fabric)


# ----------------------------------------------------------------------------- cached presets
@functools.cache
def links() -> dict[str, Link]:
    return {k: build_link(k, v) for k, v in tables("links").items()}


@functools.cache
def accelerators() -> dict[str, Accelerator]:
    return {k: build_accelerator(k, v) for k, v in tables("accelerators").items()}


@functools.cache
def nodes() -> dict[str, NodePreset]:
    out = {k: build_node(k, v, links()) for k, v in tables("nodes").items()}
    for key, preset in out.items():
        if preset.accelerator not in accelerators():
            raise UserError(
                f"node {key!r}.accelerator: {preset.accelerator!r} is not a known "
                f"accelerator (known: {', '.join(accelerators())})"
            )
    return out


@functools.cache
def default_nodes() -> dict[str, str]:
    """Accelerator key -> the node preset its bare name stands for."""
    table = data("nodes").get("default_node", {})
    out = {k: v for k, v in table.items() if k != "source"}
    for accel in accelerators():
        if accel not in out:
            raise UserError(f"nodes.toml default_node: accelerator {accel!r} has no default node")
        if out[accel] not in nodes():
            raise UserError(f"nodes.toml default_node.{accel}: {out[accel]!r} is not a node")
    return out
