"""A run description from a TOML file and/or CLI flags -> (Workload, HardwareProfile, Options).

Run file sections (Calculon-style separation of model, execution and system)::

    [model]        name = "llama3-70b"   # or config = "path/config.json", or inline HF fields
                   hidden_size = 4096    # beside name/config: overrides that field of it
    [parallelism]  tp = 8  pp = 4  vpp = 1  cp = 1  dp = -1  sp = true  zero = 1
    [training]     seq_len = 4096  micro_batch = 1  global_batch = 1024
                   precision = "bf16"  recompute = "selective"  tokens = 15e12
    [cluster]      hardware = "h100-sxm"  gpus = 1024  gpus_per_node = 8
                   scale_out = "infiniband-ndr"  nics_per_node = 8  oversubscription = 1.0
    [options]      attention = "flash"  dropout = false  overlap_tp_comm = false ...

Command-line flags override the file. Unknown keys are errors (a typo must not be ignored).

`[model]`: `config` (a file) or `name` (a preset, or a file path as `--model` takes) selects the
base model and every other key overrides that `ModelSpec` field, whatever the order of the keys;
without either (or with a `name` that resolves to neither, beside other keys) the table is the
whole model, inline. A `[model]` table is taken whole from the highest layer that gives one
(defaults < run file < flags): `--model` replaces the file's model and its overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from analysis.closed_form import Options
from hwprofiles.errors import UserError
from hwprofiles.inputs import read_toml
from hwprofiles.profile import HardwareProfile
from simulator.model import ModelSpec
from simulator.parallel import ParallelConfig, Workload

DEFAULTS: dict[str, dict[str, Any]] = {
    # The quickstart what-if: Llama-3-70B on 1,024 H100 SXM (128 DGX H100 nodes), a layout of
    # the kind Meta reports for Llama 3 pre-training (TP 8 inside a node, PP across nodes,
    # Dubey et al. 2024, "The Llama 3 Herd of Models", Table 4) at 4 M tokens per step.
    "model": {"name": "llama3-70b"},
    "parallelism": {
        "tp": 8,
        "pp": 4,
        "vpp": 1,
        "cp": 1,
        "dp": -1,
        "sp": True,
        "zero": 1,
        "ep": 1,
        "etp": None,
    },
    "training": {
        "seq_len": 4096,
        "micro_batch": 1,
        "global_batch": 1024,
        "precision": "bf16",
        "recompute": "selective",
        "tokens": None,
    },
    "cluster": {
        "hardware": "h100-sxm",
        "gpus": 1024,
        "gpus_per_node": None,
        "scale_out": None,
        "nics_per_node": None,
        "oversubscription": None,
        "topology": None,
    },
    "options": {},
}


@dataclass(frozen=True)
class Run:
    workload: Workload
    hardware: HardwareProfile
    options: Options
    tokens: float | None
    spec: dict[str, dict[str, Any]]


def read_run_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Parse a run TOML file; errors name the file and the problem in one line."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config: {str(p)!r} is not a file")
    data = read_toml(p, "config")
    for section, values in data.items():
        if section not in DEFAULTS:
            raise UserError(f"config: unknown section [{section}] (known: {', '.join(DEFAULTS)})")
        if not isinstance(values, dict):
            raise UserError(f"config: [{section}] must be a table")
        known = DEFAULTS[section]
        allowed = set(known) if section not in ("model", "options") else None
        if section == "options":
            allowed = {f.name for f in fields(Options)}
        for key in values:
            if allowed is not None and key not in allowed:
                raise UserError(
                    f"config: unknown key {section}.{key} (known: {', '.join(sorted(allowed))})"
                )
    return data


def merge(file_spec: dict | None, overrides: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """Defaults < run file < command-line flags (None in overrides = not given)."""
    spec = {k: dict(v) for k, v in DEFAULTS.items()}
    for source in (file_spec or {}, overrides):
        for section, values in source.items():
            given = {key: value for key, value in values.items() if value is not None}
            if section == "model":
                # the model is one choice: a base plus its overrides, or an inline model;
                # the layer above replaces it whole (see the module docstring)
                if given:
                    spec["model"] = given
            else:
                spec[section].update(given)
    return spec


MODEL_SPEC_FIELDS = frozenset(f.name for f in fields(ModelSpec))


def resolve_model(table: Mapping[str, Any]) -> ModelSpec:
    """The `ModelSpec` of a merged `[model]` table (rules in the module docstring)."""
    from simulator.models_catalogue import load_model

    m = dict(table)
    if "config" in m:
        base = load_model(m.pop("config"))
    elif "name" in m:
        try:
            base = load_model(m["name"])
        except ValueError as exc:
            if len(m) == 1:
                raise
            try:  # not a preset nor a file: the table is the whole model, named `name`
                return load_model(m)
            except (TypeError, ValueError) as inline:
                raise UserError(f"{exc}; nor is [model] a whole inline model ({inline})") from None
        del m["name"]
    else:
        return load_model(m)
    unknown = sorted(set(m) - MODEL_SPEC_FIELDS)
    if unknown:
        raise UserError(
            f"model.{unknown[0]}: not a model field that can override {base.name!r} "
            f"(fields: {', '.join(sorted(MODEL_SPEC_FIELDS))})"
        )
    if not m:
        return base
    try:
        spec = replace(base, **m)
    except ValueError as exc:
        raise UserError(f"model: {base.name!r} with overrides: {exc}") from None
    changed = ", ".join(f"{k} = {v!r}" for k, v in sorted(m.items()))
    return replace(spec, source=f"{base.source}; overridden by the run: {changed}")


def build_run(spec: dict[str, dict[str, Any]]) -> Run:
    """Resolve model and hardware presets, validate the layout, return a ready `Run`."""
    from hwprofiles.catalogue import load_profile

    model = resolve_model(spec["model"])
    c = spec["cluster"]
    hw = load_profile(
        c["hardware"],
        gpus_per_node=c.get("gpus_per_node"),
        scale_out=c.get("scale_out"),
        nics_per_node=c.get("nics_per_node"),
        oversubscription=c.get("oversubscription"),
        topology=c.get("topology"),
    )
    gpus = c["gpus"]
    if not isinstance(gpus, int) or gpus < 1:
        raise UserError(f"gpus: {gpus!r} must be a positive integer")
    p, t = spec["parallelism"], spec["training"]
    parallel = ParallelConfig(
        tp=p["tp"],
        pp=p["pp"],
        vpp=p["vpp"],
        cp=p["cp"],
        dp=p["dp"],
        sequence_parallel=bool(p["sp"]) and p["tp"] > 1,
        zero_stage=p["zero"],
        micro_batch_size=t["micro_batch"],
        global_batch_size=t["global_batch"],
        recompute=t["recompute"],
        precision=t["precision"],
        ep=p["ep"],
        etp=p["etp"],
    ).resolve(gpus)
    workload = Workload(model, parallel, t["seq_len"])
    options = Options(**spec.get("options", {}))
    tokens = t.get("tokens")
    if tokens is not None and float(tokens) <= 0:
        raise UserError(f"tokens: {tokens} must be > 0")
    return Run(workload, hw, options, float(tokens) if tokens else None, spec)
