"""Search every layout of every candidate (hardware, GPU count, precision) with the closed form.

Layouts are evaluated in chunks by `analysis.closed_form.evaluate` (vectorised: one numpy pass
per chunk, not one Python call per layout). A layout is feasible when its memory per GPU fits in
`usable_memory_fraction` of the device memory; the best is the feasible layout with the highest
training throughput (tokens/s; layouts may differ slightly in global batch, so throughput, not
step time, is compared). Ties go to the first in enumeration order, so results are
deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.closed_form import Options, evaluate, per_layer_times
from analysis.layouts import Layouts, chunk_bounds
from analysis.planner.bounds import best_layouts
from analysis.planner.heap import heap_kept
from analysis.planner.space import BatchPolicy, Enumeration, SearchSpace, enumerate_layouts
from hwprofiles.profile import HardwareProfile
from simulator.model import ModelSpec
from simulator.parallel import RECOMPUTE_MODES, ParallelConfig, Workload

USABLE_MEMORY_FRACTION = 0.9
"""Share of device memory the planner lets a layout use. A planning margin, not a measurement:
the CUDA/ROCm context, NCCL/RCCL buffers and allocator fragmentation take memory the cost model
does not count (a few GiB on an 80 GB device)."""

CHUNK = 16384
"""Layouts per `evaluate` call: large enough to amortise numpy's per-call overhead (a few ms),
small enough to bound the temporaries (~0.3 KB a layout in a few hundred arrays), under glibc's
default malloc (each chunk's temporaries faulted in afresh: smaller chunks measured faster)."""

CHUNK_HEAP_KEPT = 32768
"""`CHUNK` where the process keeps freed heap pages (`planner.heap.heap_kept`, as the `llmcap`
command does): the pages are reused, and one call over more layouts measured faster (see
`planner.heap` for the figures)."""

Progress = Callable[[int], None]
"""Called with the number of layouts just evaluated (for a progress bar)."""


@dataclass
class CandidateSearch:
    """What the search found for one (hardware, GPU count, precision)."""

    hardware: str
    gpus: int
    precision: str
    tried: int = 0
    """Layouts in the Cartesian product of the degrees tried."""
    valid: int = 0
    """Layouts that pass the divisibility rules (these were evaluated)."""
    fit: int = 0
    """Valid layouts that fit in memory."""
    priced: int = 0
    """Fitting layouts whose step was priced; the others' floor could not beat the best
    (`planner.bounds`)."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Rule -> layouts it rejected (divisibility rules, then memory)."""
    min_memory_bytes: float | None = None
    """Smallest memory need among the valid layouts (to say by how much nothing fits)."""
    usable_memory_bytes: float = 0.0
    best: dict[str, Any] | None = None
    """The best layout (`Layouts.row` keys) and its tokens/s, step time and memory."""
    top: list[dict[str, Any]] = field(default_factory=list)
    """The best few layouts in order, same keys as `best`."""
    reason: str | None = None
    """Why there is no feasible layout (one line), when `best` is None."""

    @property
    def feasible(self) -> bool:
        return self.best is not None


def layout_config(row: dict[str, int], precision: str, gpus: int) -> ParallelConfig:
    """The resolved `ParallelConfig` of one `Layouts.row`."""
    return ParallelConfig(
        tp=row["tp"],
        pp=row["pp"],
        vpp=row["vpp"],
        cp=row["cp"],
        micro_batch_size=row["mb"],
        global_batch_size=row["gbs"],
        zero_stage=row["zero"],
        sequence_parallel=bool(row["sp"]),
        recompute=RECOMPUTE_MODES[row["recompute"]],
        precision=precision,  # type: ignore[arg-type]
        ep=row.get("ep", 1),
        etp=row.get("etp"),
    ).resolve(gpus)


def layout_workload(
    model: ModelSpec, row: dict[str, int], precision: str, seq_len: int
) -> Workload:
    gpus = row["tp"] * row["pp"] * row["cp"] * row["dp"]
    return Workload(model, layout_config(row, precision, gpus), seq_len)


def _slice(layouts: Layouts, lo: int, hi: int) -> Layouts:
    return Layouts(**{k: getattr(layouts, k)[lo:hi] for k in Layouts.__dataclass_fields__})


def evaluate_chunked(
    model: ModelSpec,
    hw: HardwareProfile,
    seq_len: int,
    layouts: Layouts,
    precision: str,
    options: Options,
    keys: Sequence[str] = ("step_time_s", "memory_per_gpu_bytes"),
    chunk: int | None = None,
    progress: Progress | None = None,
    recursion: bool = True,
    layers: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """`evaluate` over `layouts` in chunks of `chunk` layouts (default `CHUNK`, or
    `CHUNK_HEAP_KEPT` where the heap is kept), keeping only `keys` (bounded memory);
    `recursion` as in `evaluate`; `layers`: `per_layer_times` of `layouts`, where already
    computed."""
    if chunk is None:
        chunk = CHUNK_HEAP_KEPT if heap_kept() else CHUNK
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    # the layers' times depend on a few columns: priced once over all chunks
    if layers is None:
        layers = per_layer_times(model, hw, seq_len, layouts, precision, options)
    for lo, hi in chunk_bounds(len(layouts), chunk):
        part = {k: v[lo:hi] if np.ndim(v) else v for k, v in layers.items()}
        r = evaluate(
            model, hw, seq_len, _slice(layouts, lo, hi), precision, options, part, keys,
            recursion=recursion,
        )  # fmt: skip
        for k in keys:
            parts[k].append(np.array(r[k], dtype=float))
        if progress is not None:
            progress(hi - lo)
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def unsupported(hw: HardwareProfile, gpus: int, precision: str) -> str | None:
    """Why this hardware cannot run this candidate at all, or None."""
    gpn, unit = hw.node.gpus_per_node, hw.node.allocation_unit
    if gpus > unit and gpus % unit:
        if unit == gpn:
            return f"gpus: {gpus} is not a whole number of {hw.name} nodes ({gpn} GPUs per node)"
        return f"gpus: {gpus} is not a whole number of {hw.name} hosts ({unit} GPUs per host)"
    try:
        hw.accelerator.peak(precision)
    except ValueError as exc:
        return str(exc)
    return None


def search_candidate(
    model: ModelSpec,
    hw: HardwareProfile,
    gpus: int,
    precision: str,
    seq_len: int,
    batch: BatchPolicy,
    enumeration: Enumeration | None = None,
    options: Options | None = None,
    space: SearchSpace | None = None,
    usable_memory_fraction: float = USABLE_MEMORY_FRACTION,
    top_n: int = 5,
    progress: Progress | None = None,
) -> CandidateSearch:
    """Evaluate every valid layout of one candidate; keep the best `top_n` that fit."""
    out = CandidateSearch(hw.name, gpus, precision)
    out.usable_memory_bytes = usable_memory_fraction * hw.accelerator.memory_bytes
    why = unsupported(hw, gpus, precision)
    if why is not None:
        out.reason = why
        return out
    e = enumeration or enumerate_layouts(model, gpus, hw.node.gpus_per_node, seq_len, batch, space)
    out.tried, out.valid, out.rejected = e.tried, len(e.layouts), dict(e.rejected)
    if out.valid == 0:
        out.reason = "no layout passes the divisibility rules; " + _top_reasons(e)
        return out
    opts = options or Options()
    layers = per_layer_times(model, hw, seq_len, e.layouts, precision, opts)
    mem, step = best_layouts(
        model, hw, seq_len, e.layouts, precision, opts, layers, out.usable_memory_bytes, top_n,
        CHUNK_HEAP_KEPT if heap_kept() else CHUNK,
    )  # fmt: skip
    if progress is not None:
        progress(len(e.layouts))
    fits = mem <= out.usable_memory_bytes
    out.fit = int(fits.sum())
    out.priced = int(np.isfinite(step).sum())
    out.min_memory_bytes = float(mem.min())
    if out.valid - out.fit:
        out.rejected["memory: needs more than the usable device memory"] = out.valid - out.fit
    if out.fit == 0:
        out.reason = (
            f"memory: no valid layout fits; the smallest needs {out.min_memory_bytes / 2**30:.1f} "
            f"GiB per GPU, {usable_memory_fraction:.0%} of {hw.name}'s "
            f"{hw.accelerator.memory_bytes / 2**30:.1f} GiB is "
            f"{out.usable_memory_bytes / 2**30:.1f} GiB"
        )
        return out
    tps = np.where(fits & ~np.isnan(step), e.layouts.gbs * seq_len / step, -np.inf)
    order = np.argsort(-tps, kind="stable")[: min(top_n, out.fit)]
    out.top = [
        e.layouts.row(int(i))
        | {
            "tokens_per_s": float(tps[i]),
            "step_time_s": float(step[i]),
            "memory_per_gpu_bytes": float(mem[i]),
        }
        for i in order
    ]
    out.best = out.top[0]
    return out


def _top_reasons(e: Enumeration, n: int = 2) -> str:
    """The rules to relax: those that alone reject some layouts, else the most frequent."""
    counts, how = (e.blocking, "fails alone") if e.blocking else (e.rejected, "rejects")
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return "; ".join(f"{k} ({how} for {v} layouts)" for k, v in items)
