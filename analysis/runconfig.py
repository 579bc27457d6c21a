"""A run description from a TOML file and/or CLI flags -> (Workload, HardwareProfile, Options).

Run file sections (Calculon-style separation of model, execution and system)::

    [model]        name = "llama3-70b"   # or config = "path/config.json", or inline HF fields
                   hidden_size = 4096    # beside name/config: overrides that field of it
    [parallelism]  tp = 8  pp = 4  vpp = 1  cp = 1  dp = -1  sp = true  zero = 1
                   first_stage_layers = 7  last_stage_layers = 7   # pin an uneven split
    [training]     seq_len = 4096  micro_batch = 1  global_batch = 1024
                   precision = "bf16"  recompute = "selective"  tokens = 15e12
    [cluster]      hardware = "h100-sxm"  gpus = 1024  gpus_per_node = 8
                   scale_out = "infiniband-ndr"  nics_per_node = 8  oversubscription = 1.0
    [options]      stack = "nemo-2025"   # a training stack (`llmcap stacks`), then any field:
                   attention = "flash"  dropout = false  overlap_tp_comm = false ...

Command-line flags override the file. Unknown keys are errors (a typo must not be ignored).

Adaptive defaults: without `seq_len` the model's pre-training length is used
(`simulator.models_catalogue.pretraining_seq_len`); without both `tp` and `pp` the layout is
the fastest valid one for the model and GPU count (`analysis.autolayout.fastest_layout`,
restricted to the layout values that are given); without `global_batch`, ~4M tokens per step.

`[model]`: `config` (a file) or `name` (a preset, or a file path as `--model` takes) selects the
base model and every other key overrides that `ModelSpec` field, whatever the order of the keys;
without either (or with a `name` that resolves to neither, beside other keys) the table is the
whole model, inline. A `[model]` table is taken whole from the highest layer that gives one
(defaults < run file < flags): `--model` replaces the file's model and its overrides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from analysis.closed_form import Options
from analysis.runschema import check_spec
from hwprofiles.errors import UserError
from hwprofiles.inputs import path_kind, read_toml
from hwprofiles.profile import HardwareProfile
from simulator.limits import MAX_TOKENS
from simulator.model import ModelSpec
from simulator.parallel import ParallelConfig, Workload
from simulator.reliability.options import ReliabilityOptions
from simulator.stacks import DEFAULT_STACK, load_stack

DEFAULTS: dict[str, dict[str, Any]] = {
    # The quickstart what-if: Llama-3-70B on 1,024 H100 SXM (128 DGX H100 nodes). The layout,
    # the sequence length and the global batch adapt to the model and GPU count when not given
    # (None here): see `FIXED_LAYOUT` and `build_run`.
    "model": {"name": "llama3-70b"},
    "parallelism": {
        "tp": None,
        "pp": None,
        "vpp": None,
        "cp": None,
        "dp": None,
        "sp": None,
        "zero": None,
        "first_stage_layers": None,
        "last_stage_layers": None,
        "ep": None,
        "etp": None,
    },
    "training": {
        "seq_len": None,
        "micro_batch": None,
        "global_batch": None,
        "precision": "bf16",
        "recompute": None,
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
        "pue": None,
        "pool": None,
        "pool_uplink_gb_per_s": None,
        "pool_plan": None,
    },
    "options": {},
    # failures, checkpoints and restarts of the whole run (None = simulator.reliability default)
    "reliability": {
        "checkpoint_interval_s": None,
        "mtbf_scale": None,
        "failure_rates": None,
        "storage_bandwidth_gb_per_s": None,
        "filesystem_bandwidth_gb_per_s": None,
        "async_checkpoint": None,
        "restart_s": None,
        "warmup_steps": None,
        "weibull_shape": None,
        "seeds": None,
    },
}
"""None = not given: chosen per model and GPU count by `build_run`."""

FIXED_LAYOUT: dict[str, Any] = {
    "vpp": 1,
    "cp": 1,
    "dp": -1,
    "sp": True,
    "zero": 1,
    "micro_batch": 1,
    "recompute": "selective",
    "ep": 1,
    "etp": None,
}
"""What the other layout values are when tp and pp are both given: Megatron-LM's usual
recipe (sequence parallelism with TP, ZeRO-1 distributed optimizer, selective recompute;
Korthikanti et al. 2022), no interleaving, no context parallelism, micro-batch 1."""

LAYOUT_FLAGS = (
    "tp", "pp", "vpp", "cp", "dp", "sp", "zero", "micro_batch", "recompute", "ep", "etp"
)  # fmt: skip


def default_global_batch(seq_len: int) -> int:
    """Sequences per step when not given: ~4M tokens (`analysis.planner.space`)."""
    from analysis.planner.space import DEFAULT_BATCH_TOKENS

    return max(1, round(DEFAULT_BATCH_TOKENS / seq_len))


@dataclass(frozen=True)
class Run:
    workload: Workload
    hardware: HardwareProfile
    options: Options
    tokens: float | None
    spec: dict[str, dict[str, Any]]
    reliability: ReliabilityOptions = field(default_factory=ReliabilityOptions)
    seq_len_note: str = "given"
    """Where the sequence length comes from ("given" or the model's pre-training length)."""
    layout_note: str = "given"
    """How the layout was chosen ("given", or searched: the fastest that fits)."""
    stack: str = DEFAULT_STACK
    """The training stack whose mechanisms `options` starts from (`simulator.stacks`)."""


def read_run_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Parse a run TOML file; errors name the file and the problem in one line."""
    p = Path(path)
    if path_kind(p) != "file":
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
            allowed = {f.name for f in fields(Options)} | {"stack"}
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


def resolve_hardware(c: Mapping[str, Any]) -> HardwareProfile:
    """The hardware profile of a merged `[cluster]` table."""
    from hwprofiles.catalogue import load_profile

    return load_profile(
        c["hardware"],
        gpus_per_node=c.get("gpus_per_node"),
        scale_out=c.get("scale_out"),
        nics_per_node=c.get("nics_per_node"),
        oversubscription=c.get("oversubscription"),
        topology=c.get("topology"),
    )


def build_run(spec: dict[str, dict[str, Any]]) -> Run:
    """Resolve model and hardware presets, validate the layout, return a ready `Run`."""
    spec = check_spec(spec)  # types and finiteness of every value (analysis.runschema)
    model = resolve_model(spec["model"])
    c = spec["cluster"]
    for key in ("pool", "pool_uplink_gb_per_s", "pool_plan"):
        if c.get(key) is None:
            continue
        raise UserError(
            f"cluster.{key}",
            rule="pools are read by `llmcap simulate` (one job over several pools); "
            "this command takes [cluster] hardware and gpus",
        )
    hw = resolve_hardware(c)
    gpus = c["gpus"]
    if not isinstance(gpus, int) or gpus < 1:
        raise UserError(f"gpus: {gpus!r} must be a positive integer")
    p, t = spec["parallelism"], spec["training"]
    seq_len, seq_note = t["seq_len"], "given"
    if seq_len is None:
        from simulator.models_catalogue import pretraining_seq_len

        seq_len, seq_note = pretraining_seq_len(model)
    given = {k: (p[k] if k in p else t[k]) for k in LAYOUT_FLAGS}
    opts_table = dict(spec.get("options", {}))
    stack = opts_table.pop("stack", DEFAULT_STACK)
    # the training stack's mechanisms, then any [options] key the run gives explicitly
    options = replace(load_stack(stack).options(), **opts_table)
    if given["tp"] is None or given["pp"] is None:
        from analysis.autolayout import fastest_layout
        from analysis.planner.search import layout_config

        chosen = fastest_layout(
            model, hw, gpus, t["precision"], seq_len, t["global_batch"], given, options
        )
        parallel = layout_config(chosen.row, t["precision"], gpus)
        layout_note = chosen.note
    else:
        v = {k: (FIXED_LAYOUT[k] if given[k] is None else given[k]) for k in LAYOUT_FLAGS}
        parallel = ParallelConfig(
            tp=v["tp"],
            pp=v["pp"],
            vpp=v["vpp"],
            cp=v["cp"],
            dp=v["dp"],
            sequence_parallel=bool(v["sp"]) and v["tp"] > 1,
            zero_stage=v["zero"],
            micro_batch_size=v["micro_batch"],
            global_batch_size=t["global_batch"] or default_global_batch(seq_len),
            recompute=v["recompute"],
            precision=t["precision"],
            ep=v["ep"],
            etp=v["etp"],
        ).resolve(gpus)
        layout_note = "given"
    pins = {k: p.get(k) for k in ("first_stage_layers", "last_stage_layers")}
    if any(v is not None for v in pins.values()):
        parallel = replace(parallel, **pins)
    workload = Workload(model, parallel, seq_len)
    tokens = t.get("tokens")
    if tokens is not None:
        tokens = float(tokens)
        if not (math.isfinite(tokens) and 1 <= tokens <= MAX_TOKENS):
            raise UserError(
                "tokens", t["tokens"], f"must be a finite number in [1, {MAX_TOKENS:.0e}]"
            )
    rel = reliability_options({**spec.get("reliability", {}), "pue": c.get("pue")})
    return Run(workload, hw, options, tokens, spec, rel, seq_note, layout_note, stack)


_GB = 1e9  # run files and flags give bandwidths in decimal GB/s
_INF = float("inf")


def reliability_options(table: Mapping[str, Any]) -> ReliabilityOptions:
    """`ReliabilityOptions` from a merged `[reliability]` table (None = default)."""
    given = {k: v for k, v in table.items() if v is not None}
    for key in ("storage_bandwidth_gb_per_s", "filesystem_bandwidth_gb_per_s"):
        if key in given:
            v = given.pop(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0 or v == _INF:
                raise UserError(
                    key.removesuffix("_gb_per_s"), v, "must be a finite number > 0 (GB/s)"
                )
            given[key.replace("_gb_per_s", "_bps")] = v * _GB
    if "async_checkpoint" in given and not isinstance(given["async_checkpoint"], bool):
        raise UserError("async_checkpoint", given["async_checkpoint"], "must be true or false")
    if "failure_rates" in given:
        given["failure_rates"] = str(given["failure_rates"])
    return ReliabilityOptions(**given)
