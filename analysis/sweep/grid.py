"""A sweep grid from a TOML file: a base run, axes (lists or ranges), their cross product.

    [sweep]
    engine = "des"                 # analytic | des | cluster (or an `engine` axis)
    config = "run.toml"            # optional base run file, relative to the grid file
    shared_seeds = false           # true: one engine seed per `seed` replicate (see below)

    [base.model]                   # optional run-file sections over `config`
    name = "llama-3-8b"

    [axes]                         # analysis.sweep.axes lists the names
    gpus = [64, 128, 256]
    scale_out_gbps = {from = 100, to = 400, times = 2}    # 100, 200, 400
    speed_sigma = {from = 0.0, to = 0.1, step = 0.05}      # 0, 0.05, 0.1 (ends included)
    jitter = 0.02                  # a single value: fixed for every point

Points are the cross product in axis order (the last axis varies fastest). Each point's key is
a hash of its canonical inputs (base run, engine and axis values), so a re-run finds the points
it already has, whichever order or machine computed them. The engine's seed is derived from the
key (all the point's inputs); with `shared_seeds = true` it is derived from the base run and the
`seed` replicate only, so the points of one replicate share their random draws (common random
numbers: a comparison across, say, NIC rates is not blurred by different straggler draws).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.runconfig import DEFAULTS, merge, read_run_file
from analysis.sweep.axes import CLUSTER_AXES, OPTION_FIELDS, RUN_AXES, check_axis
from hwprofiles.errors import UserError
from hwprofiles.inputs import read_toml
from simulator.limits import MAX_SWEEP_POINTS

SECTIONS = ("sweep", "base", "axes")
SWEEP_KEYS = ("engine", "config", "shared_seeds")
RANGE_DIGITS = 12
"""Range values are rounded to this many decimals (0.1 + 0.2 reads as 0.3)."""
LIMIT_RULE = f"at most {MAX_SWEEP_POINTS:,} points per sweep, simulator.limits; split the grid"


def canonical(obj: Any) -> str:
    """Compact JSON with sorted keys: the text the hashes are taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def digest(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Point:
    key: str
    values: dict[str, Any]
    """Axis name -> value."""
    seed_key: str = ""
    """What the engine seed is derived from: the key, or the replicate with shared seeds."""


@dataclass(frozen=True)
class Grid:
    base: dict[str, dict[str, Any]]
    """The merged base run (defaults < `config` < `[base]`)."""
    axes: dict[str, list[Any]]
    shared_seeds: bool = False
    """Common random numbers: every point of one `seed` replicate gets the same engine seed."""

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.axes.values())

    def to_dict(self) -> dict[str, Any]:
        shared = {"shared_seeds": True} if self.shared_seeds else {}
        return {"base": self.base, "axes": self.axes} | shared

    @property
    def fingerprint(self) -> str:
        return digest(self.to_dict())

    def points(self) -> list[Point]:
        names = list(self.axes)
        out = []
        for combo in itertools.product(*(self.axes[n] for n in names)):
            values = dict(zip(names, combo, strict=True))
            inputs = {"base": self.base, "point": values}
            key = digest(inputs | ({"shared_seeds": True} if self.shared_seeds else {}))
            seed_key = key
            if self.shared_seeds:
                seed_key = digest({"base": self.base, "replicate": values.get("seed", 0)})
            out.append(Point(key, values, seed_key))
        return out


def _range(name: str, spec: dict[str, Any]) -> list[Any]:
    field = f"axes.{name}"
    allowed = {"from", "to", "step", "times"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise UserError(f"{field}: unknown range key {unknown[0]!r} (rule: from, to, step|times)")
    if "from" not in spec or "to" not in spec or ("step" in spec) == ("times" in spec):
        raise UserError(f"{field}: {spec!r} must give from, to and one of step or times")
    lo, hi = spec["from"], spec["to"]
    for k in spec:
        if isinstance(spec[k], bool) or not isinstance(spec[k], (int, float)):
            raise UserError(f"{field}.{k}: {spec[k]!r} must be a number")
        x = spec[k]
        if not (-(2**63) <= x < 2**63 if isinstance(x, int) else math.isfinite(x)):
            raise UserError(f"{field}.{k}: {x!r} must be a finite number (integers within 2^63)")
    ints = all(isinstance(spec[k], int) for k in spec)
    too_many = f"{field}: {spec!r} gives more than {MAX_SWEEP_POINTS:,} values (rule: {LIMIT_RULE})"
    out: list[Any] = []
    if "step" in spec:
        step = spec["step"]
        if step <= 0:
            raise UserError(f"{field}.step: {step!r} must be > 0")
        count = (hi - lo) / step + 1e-9  # counted before any value is built
        if not math.isfinite(count) or count >= MAX_SWEEP_POINTS:
            raise UserError(too_many)
        out = [lo + i * step for i in range(math.floor(count) + 1)]
    else:
        times = spec["times"]
        if times <= 1 or lo <= 0:
            raise UserError(f"{field}: {spec!r} needs times > 1 and from > 0")
        v = lo
        while v <= hi * (1 + 1e-12) and math.isfinite(v):
            if len(out) == MAX_SWEEP_POINTS:
                raise UserError(too_many)
            out.append(v)
            v *= times
    out = [int(v) if ints else round(float(v), RANGE_DIGITS) for v in out]
    if not out:
        raise UserError(f"{field}: {spec!r} is an empty range (rule: from <= to)")
    return out


def _axis_values(name: str, raw: Any) -> list[Any]:
    if isinstance(raw, dict):
        values = _range(name, raw)
    elif isinstance(raw, list):
        values = list(raw)
    else:
        values = [raw]
    if not values:
        raise UserError(f"axes.{name}: [] is empty (rule: at least one value)")
    if len(values) > MAX_SWEEP_POINTS:
        raise UserError(f"axes.{name}: {len(values):,} values (rule: {LIMIT_RULE})")
    if len({canonical(v) for v in values}) != len(values):
        raise UserError(f"axes.{name}: {values!r} repeats a value (rule: distinct values)")
    check_axis(name, values)
    return values


AXIS_OF = {place: name for name, place in RUN_AXES.items()}
"""(run-file section, key) -> the axis that sets it (its rule checks the base value too)."""


def _check_base(base: dict[str, Any]) -> None:
    for section, values in base.items():
        if section not in DEFAULTS or not isinstance(values, dict):
            raise UserError(f"base.{section}: unknown section (rule: one of {', '.join(DEFAULTS)})")
        if section == "model":
            continue
        allowed = set(OPTION_FIELDS) if section == "options" else set(DEFAULTS[section])
        for key, value in values.items():
            if key not in allowed:
                raise UserError(
                    f"base.{section}.{key}: unknown key (rule: one of {', '.join(sorted(allowed))})"
                )
            axis = AXIS_OF.get((section, key))
            if axis is None and section == "options":
                axis = f"options.{key}"
            if axis is not None and value is not None:
                try:
                    check_axis(axis, [value])
                except UserError as exc:  # the same rule, named by its place in [base]
                    rest = str(exc)[len(f"axes.{axis}") :]
                    raise UserError(f"base.{section}.{key}{rest}") from None


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise UserError(f"{name}: {value!r} must be a table (rule: [{name}])")
    return value


def parse_grid(data: dict[str, Any], root: Path = Path(".")) -> Grid:
    """A `Grid` from parsed TOML; `root` resolves `[sweep] config`."""
    for section in data:
        if section not in SECTIONS:
            raise UserError(f"{section}: unknown section (rule: one of {', '.join(SECTIONS)})")
    sw, base_in, axes_in = (_table(data, n) for n in SECTIONS)
    for key in sw:
        if key not in SWEEP_KEYS:
            raise UserError(f"sweep.{key}: unknown key (rule: one of {', '.join(SWEEP_KEYS)})")
    config = sw.get("config")
    if config is not None and not (isinstance(config, str) and config.strip()):
        raise UserError(f"sweep.config: {config!r} must be a run-file path")
    file_spec = read_run_file(root / config) if config is not None else None
    _check_base(base_in)
    base = merge(file_spec, base_in)
    if isinstance(axes_in.get("options"), dict):  # TOML reads `options.x = [...]` as a table
        axes_in = dict(axes_in)
        nested = axes_in.pop("options")
        axes_in |= {f"options.{k}": v for k, v in nested.items()}
    if not axes_in:
        raise UserError("axes: {} is an empty grid (rule: name at least one axis)")
    if "engine" in sw and "engine" in axes_in:
        raise UserError("sweep.engine: given twice (rule: [sweep] engine or an engine axis)")
    axes = {"engine": [sw.get("engine", "des")]} if "engine" not in axes_in else {}
    for name, raw in axes_in.items():
        axes[name] = _axis_values(name, raw)
    if "engine" in sw:
        check_axis("engine", axes["engine"])
    if "cluster" in axes["engine"]:
        base = _cluster_base(axes, root, base_in)
    else:
        for name in CLUSTER_AXES:
            if name in axes:
                raise UserError(f"axes.{name}: a cluster input (rule: needs engine = 'cluster')")
    shared = sw.get("shared_seeds", False)
    if not isinstance(shared, bool):
        raise UserError(f"sweep.shared_seeds: {shared!r} must be true or false")
    grid = Grid(base=base, axes=axes, shared_seeds=shared)
    if grid.size > MAX_SWEEP_POINTS:
        shape = " x ".join(str(len(v)) for v in axes.values())
        raise UserError(f"axes: {shape} = {grid.size:,} points (rule: {LIMIT_RULE})")
    return grid


def _cluster_base(axes: dict[str, list[Any]], root: Path, base_in: Any) -> dict[str, Any]:
    """A cluster grid's base: each job-mix file's parsed TOML, by the path the grid gives."""
    from analysis.cluster import parse_mix

    if axes["engine"] != ["cluster"]:
        raise UserError(
            f"axes.engine: {axes['engine']!r} mixes 'cluster' with step engines "
            "(rule: one grid per kind of question)"
        )
    if base_in:
        raise UserError(
            "base: a cluster grid takes no [base] (rule: jobs, pools, policy, days "
            "and seed are axes)"
        )
    allowed = {*CLUSTER_AXES, "engine", "seed"}
    for name in axes:
        if name not in allowed:
            raise UserError(
                f"axes.{name}: not a cluster input (rule: one of {', '.join(sorted(allowed))})"
            )
    for name in ("jobs", "pools"):
        if name not in axes:
            raise UserError(f"axes.{name}: missing (rule: a cluster grid names jobs and pools)")
    mixes = {}
    for path in axes["jobs"]:
        raw = read_toml(root / path, "axes.jobs")
        parse_mix(raw, f"axes.jobs {path}")
        mixes[path] = raw
    return {"cluster_jobs": mixes}


def load_grid(path: str | Path) -> Grid:
    p = Path(path)
    return parse_grid(read_toml(p, "grid"), p.parent)


def run_spec(base: dict[str, dict[str, Any]], values: dict[str, Any]) -> dict[str, dict]:
    """The run-file spec of one point: the base with the point's run and option axes set."""
    spec = {k: dict(v) for k, v in base.items()}
    for name, v in values.items():
        if name in RUN_AXES:
            section, key = RUN_AXES[name]
            if section == "model":
                spec["model"] = {"name": v}
            else:
                spec[section][key] = v
        elif name.startswith("options."):
            spec["options"][name.split(".", 1)[1]] = v
    return spec
