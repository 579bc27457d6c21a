"""The fastest valid layout of a model on a GPU count: what `simulate` and `scale` use when the
user does not give the parallel degrees.

It is the planner's search (`analysis.planner.search.search_candidate`: every layout that
passes the divisibility rules, evaluated with the closed form, the fastest that fits in 90% of
device memory), restricted to the layout values the user did give (`fixed`). The global batch
is exact when given, else ~4M tokens per step rounded per layout (`BatchPolicy.default`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from analysis.closed_form import Options
from analysis.layouts import Layouts
from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from simulator.model import ModelSpec
from simulator.parallel import RECOMPUTE_MODES

FLAG_TO_FIELD = {
    "tp": "tp",
    "pp": "pp",
    "vpp": "vpp",
    "cp": "cp",
    "dp": "dp",
    "sp": "sp",
    "zero": "zero",
    "micro_batch": "mb",
    "recompute": "recompute",
    "ep": "ep",
    "etp": "etp",
}
"""Run-file / flag names -> `Layouts` columns."""


@dataclass(frozen=True)
class ChosenLayout:
    """The layout picked, and how (for the line the commands print)."""

    row: dict[str, int]
    """`Layouts.row` keys: tp, pp, vpp, cp, dp, mb, gbs, zero, sp, recompute."""
    valid: int
    fit: int

    @property
    def note(self) -> str:
        return f"searched: the fastest of {self.fit:,} that fit, of {self.valid:,} valid"


def _code(flag: str, value: Any) -> int:
    if flag == "sp":
        return int(bool(value))
    if flag == "recompute":
        if value not in RECOMPUTE_MODES:
            raise UserError(f"recompute: {value!r} must be one of {', '.join(RECOMPUTE_MODES)}")
        return RECOMPUTE_MODES.index(value)
    return int(value)


def _space(fixed: Mapping[str, Any]):
    """The planner's search space, widened so that any value the user fixed is tried."""
    from analysis.planner.space import SearchSpace

    space = SearchSpace()
    if fixed.get("micro_batch") is not None and fixed["micro_batch"] not in space.micro_batches:
        space = replace(space, micro_batches=(int(fixed["micro_batch"]),))
    if fixed.get("cp") is not None and fixed["cp"] > space.max_cp:
        space = replace(space, max_cp=int(fixed["cp"]))
    if fixed.get("vpp") is not None and fixed["vpp"] > space.max_vpp:
        space = replace(space, max_vpp=int(fixed["vpp"]))
    return space


def fastest_layout(
    model: ModelSpec,
    hw: HardwareProfile,
    gpus: int,
    precision: str,
    seq_len: int,
    global_batch: int | None = None,
    fixed: Mapping[str, Any] | None = None,
    options: Options | None = None,
    gpu_counts: tuple[int, ...] = (),
) -> ChosenLayout:
    """The fastest layout on `gpus` GPUs with the `fixed` values (flag names; None = free).

    With `gpu_counts`, only layouts whose model-parallel part (everything but dp) is also
    valid at each of those counts are kept: one layout for a whole strong-scaling sweep.
    Raises ValueError naming why no layout qualifies.
    """
    from analysis.planner.search import search_candidate
    from analysis.planner.space import BatchPolicy, enumerate_layouts

    fixed = {k: v for k, v in (fixed or {}).items() if v is not None}
    if fixed.get("dp") == -1:
        del fixed["dp"]
    space = _space(fixed)
    batch = (
        BatchPolicy(global_batch, 0.0, "given")
        if global_batch is not None
        else BatchPolicy.default(seq_len)
    )
    gpn = hw.node.gpus_per_node
    e = enumerate_layouts(model, gpus, gpn, seq_len, batch, space)
    keep = np.ones(len(e.layouts), dtype=bool)
    for flag, value in fixed.items():
        keep &= getattr(e.layouts, FLAG_TO_FIELD[flag]) == _code(flag, value)
    for other in gpu_counts:
        if other == gpus:
            continue
        o = enumerate_layouts(model, other, gpn, seq_len, batch, space)
        shapes = set(zip(*(_shape_cols(o.layouts)), strict=True))
        here = zip(*(_shape_cols(e.layouts)), strict=True)
        keep &= np.fromiter((s in shapes for s in here), dtype=bool, count=len(e.layouts))
    filtered = replace(e, layouts=_take(e.layouts, keep))
    found = search_candidate(
        model, hw, gpus, precision, seq_len, batch, enumeration=filtered, options=options
    )
    if not found.feasible:
        given = ", ".join(f"{k}={v}" for k, v in fixed.items())
        where = f"{model.name} on {gpus} x {hw.name} ({precision}, seq {seq_len})"
        why = found.reason or "no layout qualifies"
        if not len(filtered.layouts):
            why = _why_not(model, gpus, precision, seq_len, batch, fixed) or (
                f"no valid layout has {given}" if given else why
            )
            if gpu_counts and len(e.layouts):
                why += " (and valid at every GPU count of the sweep)"
        raise UserError(f"layout: no layout of {where} can run: {why}")
    row = {k: int(v) for k, v in found.best.items() if k in _ROW_KEYS}  # type: ignore[union-attr]
    return ChosenLayout(row, found.valid, found.fit)


def _why_not(
    model: ModelSpec, gpus: int, precision: str, seq_len: int, batch: Any, fixed: Mapping
) -> str | None:
    """The rule a layout with the fixed values (1 / the usual recipe elsewhere) breaks."""
    from simulator.parallel import ParallelConfig, Workload

    v = {"tp": 1, "pp": 1, "vpp": 1, "cp": 1, "dp": -1, "sp": False, "zero": 0}
    v |= {"micro_batch": 1, "recompute": "none"} | dict(fixed)
    try:
        cfg = ParallelConfig(
            tp=v["tp"],
            pp=v["pp"],
            vpp=v["vpp"],
            cp=v["cp"],
            dp=v["dp"],
            sequence_parallel=bool(v["sp"]),
            zero_stage=v["zero"],
            micro_batch_size=v["micro_batch"],
            global_batch_size=batch.target_sequences,
            recompute=v["recompute"],
            precision=precision,
            ep=v.get("ep", 1),
            etp=v.get("etp"),
        ).resolve(gpus)
        Workload(model, cfg, seq_len)
    except ValueError as exc:
        return str(exc)
    return None


_ROW_KEYS = ("tp", "pp", "vpp", "cp", "dp", "mb", "gbs", "zero", "sp", "recompute", "ep", "etp")


def _shape_cols(layouts: Layouts) -> list[np.ndarray]:
    """The columns that stay fixed over a strong-scaling sweep (dp and the batch may not)."""
    keys = ("tp", "pp", "vpp", "cp", "mb", "zero", "sp", "ep", "etp")
    return [getattr(layouts, k) for k in keys] + [layouts.recompute]


def _take(layouts: Layouts, mask: np.ndarray) -> Layouts:
    return Layouts(**{k: getattr(layouts, k)[mask] for k in Layouts.__dataclass_fields__})
