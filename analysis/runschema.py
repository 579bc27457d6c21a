"""The types of a run description's values (run file and flags), checked before anything runs.

`analysis.runconfig` keeps the defaults and the merge rules; this module says what each key
may hold, so that ``tp = "eight"``, ``global_batch = ""``, ``hardware = 5`` or
``overlap_tp_comm = 1.0`` are one-line `UserError`s instead of tracebacks or silent
acceptance. `[options]` is checked against the `Options` dataclass itself and `[model]` against
`ModelSpec` (`hwprofiles.typed.check_fields`); ranges and the consistency of a layout are
checked where the values are used (`ParallelConfig`, `ModelSpec`, `load_profile`), and sizes
against `simulator.limits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.typed import check, check_fields, field_types
from simulator.model import ModelSpec
from simulator.options import Options

_INT, _FLOAT, _STR, _BOOL = int | None, float | None, str | None, bool | None

RUN_TYPES: dict[str, dict[str, Any]] = {
    "parallelism": {
        "tp": _INT,
        "pp": _INT,
        "vpp": _INT,
        "cp": _INT,
        "dp": _INT,
        "sp": _BOOL,
        "zero": _INT,
        "first_stage_layers": _INT,
        "last_stage_layers": _INT,
        "ep": _INT,
        "etp": _INT,
    },
    "training": {
        "seq_len": _INT,
        "micro_batch": _INT,
        "global_batch": _INT,
        "precision": str,
        "recompute": _STR,
        "tokens": _FLOAT,
    },
    "cluster": {
        "hardware": str,
        "gpus": int,
        "gpus_per_node": _INT,
        "scale_out": _STR,
        "nics_per_node": _INT,
        "oversubscription": _FLOAT,
        "topology": _STR,
        "pue": _FLOAT,
        "pool": tuple[dict, ...] | None,
        "pool_uplink_gb_per_s": _FLOAT,
        "pool_plan": _STR,
    },
}
"""Section -> key -> type annotation (None = not given: a default applies). `[reliability]`
is checked by `ReliabilityOptions` itself (finite, positive, named as its flags)."""


def check_model_table(table: Mapping[str, Any]) -> dict[str, Any]:
    """A `[model]` table: `name`/`config` are strings, every other key a `ModelSpec` field."""
    if not isinstance(table, Mapping):
        raise UserError("model", table, "must be a table")
    out = dict(table)
    for key in ("name", "config"):
        if key in out:
            out[key] = check(out[key], str, f"model.{key}")
    types = field_types(ModelSpec)
    for key, value in out.items():
        if key in types and key not in ("name", "config"):
            out[key] = check(value, types[key], f"model.{key}")
    return out


def check_spec(spec: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The merged run description with every value type-checked (ints as ints, floats finite)."""
    out: dict[str, dict[str, Any]] = {}
    for section, values in spec.items():
        if not isinstance(values, Mapping):
            raise UserError(f"config: [{section}]", values, "must be a table")
        if section == "model":
            out[section] = check_model_table(values)
        elif section == "options":
            # `stack` names a training stack (`simulator.stacks`); the rest are Options fields
            rest = {k: v for k, v in values.items() if k != "stack"}
            out[section] = check_fields(Options, rest, "options")
            if "stack" in values:
                out[section]["stack"] = check(values["stack"], str, "options.stack")
        else:
            types = RUN_TYPES.get(section, {})
            out[section] = {
                k: check(v, types[k], f"{section}.{k}") if k in types else v
                for k, v in values.items()
            }
    return out
