"""The axes a sweep grid may name: where each goes in a run, and which values it accepts.

A run axis sets one key of a run file (`analysis.runconfig`); `options.<field>` sets a closed-form
option; the rest are sweep-level inputs: `engine`, the SimPy engine's `seed` (a replicate index:
the seed the engine gets is derived from all of a point's inputs), `jitter`, `speed_sigma`,
`contention`, and `scale_out_gbps` (each NIC's line rate in Gb/s per direction, as
`llmcap scale --scale-out` sets it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from analysis.closed_form import Options
from analysis.predict import ENGINES as STEP_ENGINES
from hwprofiles.errors import UserError
from simulator.limits import MAX_SIGMA
from simulator.parallel import PRECISIONS, RECOMPUTE_MODES

RUN_AXES: dict[str, tuple[str, str]] = {
    "model": ("model", "name"),
    "hardware": ("cluster", "hardware"),
    "gpus": ("cluster", "gpus"),
    "gpus_per_node": ("cluster", "gpus_per_node"),
    "scale_out": ("cluster", "scale_out"),
    "nics_per_node": ("cluster", "nics_per_node"),
    "oversubscription": ("cluster", "oversubscription"),
    "topology": ("cluster", "topology"),
    "tp": ("parallelism", "tp"),
    "pp": ("parallelism", "pp"),
    "vpp": ("parallelism", "vpp"),
    "cp": ("parallelism", "cp"),
    "dp": ("parallelism", "dp"),
    "sp": ("parallelism", "sp"),
    "zero": ("parallelism", "zero"),
    "seq_len": ("training", "seq_len"),
    "micro_batch": ("training", "micro_batch"),
    "global_batch": ("training", "global_batch"),
    "precision": ("training", "precision"),
    "recompute": ("training", "recompute"),
}
"""Axis name -> (run-file section, key)."""

SWEEP_AXES = ("engine", "seed", "jitter", "speed_sigma", "contention", "scale_out_gbps")
CLUSTER_AXES = ("jobs", "pools", "policy", "days")
"""The `cluster` engine's inputs (`llmcap cluster --jobs --hardware --policy --days`); with
`engine` and `seed` they are the only axes a cluster grid takes."""
ENGINES = (*STEP_ENGINES, "cluster")
OPTION_FIELDS = {f.name: f for f in fields(Options)}


def known_axes() -> list[str]:
    return [*RUN_AXES, *SWEEP_AXES, "options.<field>", *CLUSTER_AXES]


def _int(lo: int, hi: int | None = None, also: tuple[int, ...] = ()) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, int):
            return "must be an integer"
        if v in also or (v >= lo and (hi is None or v <= hi)):
            return ""
        top = f" and <= {hi}" if hi is not None else ""
        extra = f" (or {', '.join(map(str, also))})" if also else ""
        return f"must be >= {lo}{top}{extra}"

    return check


def _float(lo: float, strict: bool, hi: float | None = None) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return "must be a finite number"
        if hi is not None and v > hi:
            return f"must be <= {hi:g}"
        ok = v > lo if strict else v >= lo
        return "" if ok else f"must be {'>' if strict else '>='} {lo:g}"

    return check


def _choice(options: tuple[str, ...] | list[str]) -> Callable[[Any], str]:
    return lambda v: "" if v in options else f"must be one of {', '.join(options)}"


def _bool(v: Any) -> str:
    return "" if isinstance(v, bool) else "must be true or false"


def _model(v: Any) -> str:
    from simulator.models_catalogue import list_models, load_model

    if not isinstance(v, str):
        return "must be a model preset name or an HF config.json path"
    try:
        load_model(v)
    except (ValueError, FileNotFoundError):
        return f"is not a model preset or file (presets: {', '.join(list_models())})"
    return ""


def _hardware(v: Any) -> str:
    from hwprofiles.catalogue import known_hardware, load_profile

    if not isinstance(v, str):
        return "must be a hardware preset, TOML file or profile dir"
    try:
        load_profile(v)
    except (ValueError, FileNotFoundError):
        return f"is not a hardware preset or file (presets: {', '.join(known_hardware())})"
    return ""


def _link(v: Any) -> str:
    from hwprofiles.catalogue import list_links

    return _choice(sorted(list_links()))(v)


def _pools(v: Any) -> str:
    from analysis.cluster import parse_pools

    if not isinstance(v, str):
        return "must be pools as NAME:GPUS[,NAME:GPUS...] (e.g. h100-sxm:512)"
    try:
        for spec in parse_pools(v):
            rule = _hardware(spec.hardware)
            if rule:
                return f"names pool {spec.hardware!r}, which {rule}"
    except ValueError as exc:
        return f"must be pools as NAME:GPUS[,NAME:GPUS...] ({exc})"
    return ""


def _policy(v: Any) -> str:
    from simulator.cluster.policy import POLICIES

    return _choice(tuple(POLICIES))(v)


def _path(v: Any) -> str:
    return "" if isinstance(v, str) and v else "must be a job-mix TOML path"


def _topology(v: Any) -> str:
    from hwprofiles.presets import TOPOLOGIES

    return _choice(tuple(TOPOLOGIES))(v)


CHECKS: dict[str, Callable[[Any], str]] = {
    "model": _model,
    "hardware": _hardware,
    "gpus": _int(1),
    "gpus_per_node": _int(1),
    "scale_out": _link,
    "nics_per_node": _int(1),
    "oversubscription": _float(0.0, strict=True),
    "topology": _topology,
    "tp": _int(1),
    "pp": _int(1),
    "vpp": _int(1),
    "cp": _int(1),
    "dp": _int(1, also=(-1,)),
    "sp": _bool,
    "zero": _int(0, 3),
    "seq_len": _int(1),
    "micro_batch": _int(1),
    "global_batch": _int(1),
    "precision": _choice(PRECISIONS),
    "recompute": _choice(RECOMPUTE_MODES),
    "engine": _choice(ENGINES),
    "jobs": _path,
    "pools": _pools,
    "policy": _policy,
    "days": _float(0.0, strict=True),
    "seed": _int(0),
    "jitter": _float(0.0, strict=False, hi=MAX_SIGMA),
    "speed_sigma": _float(0.0, strict=False, hi=MAX_SIGMA),
    "contention": _bool,
    "scale_out_gbps": _float(0.0, strict=True),
}


def _option_check(name: str) -> Callable[[Any], str]:
    default = OPTION_FIELDS[name].default
    if isinstance(default, bool):
        return _bool
    if default is None or isinstance(default, (int, float)):
        return _float(0.0, strict=False)
    return lambda v: "" if isinstance(v, type(default)) else f"must be a {type(default).__name__}"


def check_axis(name: str, values: list[Any]) -> None:
    """Raise `UserError` naming the axis, the value and the rule for an unknown axis or value."""
    if name.startswith("options."):
        opt = name.split(".", 1)[1]
        if opt not in OPTION_FIELDS:
            raise UserError(
                f"axes.{name}: unknown option (rule: one of {', '.join(sorted(OPTION_FIELDS))})"
            )
        check = _option_check(opt)
    elif name in CHECKS:
        check = CHECKS[name]
    else:
        raise UserError(f"axes.{name}: unknown axis (rule: one of {', '.join(known_axes())})")
    for v in values:
        rule = check(v)
        if rule:
            raise UserError(f"axes.{name}: {v!r} {rule}")
