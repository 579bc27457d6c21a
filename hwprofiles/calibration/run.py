"""Calibrate this machine: run every benchmark, fit, and write one profile directory.

`calibrate(config, out)` is the library entry point behind ``llmcap calibrate``. Compute is
measured in this process with ``threads_per_rank`` torch threads (one CPU "device" is one rank
of that many threads); collectives run as real process groups, one per world size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from hwprofiles.calibration import attention, elementwise, gemm, memory
from hwprofiles.calibration.collectives import (
    COLLECTIVES,
    MET_COLLECTIVES,
    MET_GAP_S,
    MET_SAMPLES,
    MET_SIZES,
    GroupConfig,
    run_collective_group,
)
from hwprofiles.calibration.contention import measure_contention
from hwprofiles.calibration.device import check_device, torch_threads
from hwprofiles.calibration.framework import run_framework
from hwprofiles.calibration.gemm import gemm_shapes
from hwprofiles.calibration.machine import (
    cpu_16bit_matrix_flag,
    device_memory_bytes,
    gpu_power_limit_w,
    load_average,
    machine_info,
    ranks_per_node,
)
from hwprofiles.calibration.plan import LEVELS, AttentionShape, Plan, for_dtype, make_plan
from hwprofiles.calibration.power import (
    idle_window,
    measured_power,
    modelled_power,
    window_row,
)
from hwprofiles.calibration.summary import Measurements, summarise
from hwprofiles.calibration.timing import Repeats
from hwprofiles.calibration.workload import WORKLOADS, measure_workloads
from hwprofiles.calibration.writer import as_stored, check_target, write_profile
from hwprofiles.energy import EnergyMeter, measure, probe_energy_meter
from hwprofiles.errors import UserError

DEFAULT_DTYPES = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "tf32", "bf16", "fp16")}


class ProgressHook(Protocol):
    """Told the number of steps once, then each finished step's label."""

    def start(self, total: int) -> None: ...

    def advance(self, label: str) -> None: ...


class _Silent:
    def start(self, total: int) -> None:
        pass

    def advance(self, label: str) -> None:
        pass


@dataclass(frozen=True)
class CalibrationConfig:
    """What to calibrate and how hard (see `plan.make_plan` for the levels' sizes)."""

    device: str = "cpu"
    dtypes: tuple[str, ...] = ()
    """Empty: the device's defaults (`DEFAULT_DTYPES`)."""
    world_sizes: tuple[int, ...] = (1, 2)
    """Collective world sizes; each runs as that many processes."""
    level: str = "full"
    threads_per_rank: int = 1
    """Torch threads per rank (CPU); compute is measured with this many."""
    timeout_s: float = 120.0
    """Per world size: a collective group still running after this is stopped (s)."""
    name: str = ""
    collectives: tuple[str, ...] = COLLECTIVES
    meter: EnergyMeter | str | None = "auto"
    """"auto" probes RAPL/NVML; tests pass a fake meter or None."""
    plan: Plan | None = field(default=None, compare=False)
    """Override the level's plan (tests)."""
    attention_shapes: tuple[AttentionShape, ...] = ()
    """A workload's own SDPA shapes, timed per pass (`attention.bench_attention_passes`)."""

    def resolved_dtypes(self) -> tuple[str, ...]:
        return self.dtypes or DEFAULT_DTYPES.get(self.device, ("fp32",))

    def validate(self) -> None:
        """Raise ValueError naming the field, value and rule for bad settings."""
        if self.level not in LEVELS:
            raise UserError(f"level: {self.level!r} is not one of {', '.join(LEVELS)}")
        check_device(self.device, self.resolved_dtypes())
        if self.threads_per_rank < 1:
            raise UserError(f"threads_per_rank: {self.threads_per_rank} must be >= 1")
        if any(w < 1 for w in self.world_sizes):
            raise UserError(f"world_sizes: {list(self.world_sizes)} must all be >= 1")
        if self.device == "cuda":
            import torch

            n = torch.cuda.device_count()
            if max(self.world_sizes, default=1) > n:
                raise UserError(f"world_sizes: {max(self.world_sizes)} > {n} visible GPUs")
        if self.timeout_s <= 0:
            raise UserError(f"timeout: {self.timeout_s} s must be > 0")
        bad = [c for c in self.collectives if c not in COLLECTIVES]
        if bad:
            raise UserError(f"collectives: {bad} not in {', '.join(COLLECTIVES)}")


def _attention_shapes(plan: Plan, cfg: CalibrationConfig) -> tuple[AttentionShape, ...]:
    """The SDPA shapes timed per pass: the user's, else (CPU) the plan's workloads'."""
    if cfg.attention_shapes or cfg.device != "cpu":
        return cfg.attention_shapes
    return plan.workload_attention


def _steps(
    plan: Plan, dtypes: tuple[str, ...], cfg: CalibrationConfig, flag: str | None = None
) -> int:
    per_dtype = 2 * len(plan.attention) + len(_attention_shapes(plan, cfg))
    gemms = sum(len(gemm_shapes(for_dtype(plan, d, cfg.device, flag))) for d in dtypes)
    ew = len(plan.elementwise) * len(elementwise.OPS)
    ew_dtypes = len([d for d in dtypes if d != "tf32"])
    return (
        len(dtypes) * per_dtype
        + gemms
        + ew_dtypes * ew
        + len(memory.MEMORY_OPS) * len(plan.memory_bytes)
        + len(cfg.world_sizes)
        + (1 if cfg.device == "cpu" else 0)
        + (2 if cfg.device == "cpu" else 0)  # framework: optimizer, fsdp_unit
        + (1 if cfg.device == "cpu" and plan.workloads else 0)
    )


def measure_all(cfg: CalibrationConfig, progress: ProgressHook | None = None) -> Measurements:
    """Run every benchmark of `cfg` on this machine; nothing is written."""
    cfg.validate()
    plan = cfg.plan or make_plan(cfg.level, cfg.device)
    dtypes = cfg.resolved_dtypes()
    machine = machine_info(cfg.device, cfg.threads_per_rank)  # before we add any load
    hook = progress or _Silent()
    flag = cpu_16bit_matrix_flag() if cfg.device == "cpu" else None
    hook.start(_steps(plan, dtypes, cfg, flag))
    shapes = _attention_shapes(plan, cfg)
    load_start = load_average()
    tick: Callable[[str], None] = hook.advance
    if cfg.meter == "auto":
        meter, why = probe_energy_meter(cfg.device)
    else:
        meter, why = cfg.meter, "" if cfg.meter is not None else "no energy meter given"  # type: ignore[assignment]
    tables: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("gemm", "attention", "attention_passes", "elementwise")
    }
    power_rows: list[dict[str, object]] = []
    with torch_threads(cfg.threads_per_rank):
        if meter is not None:
            power_rows.append(window_row("idle", idle_window(meter, plan.idle_s)))
        for dtype in dtypes:
            with measure(meter) as w:
                gemm_plan = for_dtype(plan, dtype, cfg.device, flag)
                tables["gemm"] += gemm.run_gemms(gemm_plan, dtype, cfg.device, tick)
            if meter is not None:
                power_rows.append(window_row(f"gemm-{dtype}", w))
            tables["attention"] += attention.run_attention(plan, dtype, cfg.device, tick)
            tables["attention_passes"] += attention.run_attention_passes(
                shapes, dtype, cfg.device, plan.repeats, tick
            )
            if dtype != "tf32":  # tf32 only changes matmuls; elementwise is fp32
                tables["elementwise"] += elementwise.run_elementwise(plan, dtype, cfg.device, tick)
        tables["memory"] = memory.run_memory(plan, cfg.device, tick)
        stability: dict[str, Any] = {}
        if cfg.device == "cpu" and plan.workloads:
            rows, stability = measure_workloads(
                tuple(WORKLOADS[w] for w in plan.workloads),
                tuple(d for d in dtypes if d != "tf32"),
                plan.workload_budget_s,
                tick,
            )
            tables["gemm"] += rows
    tables["collectives"] = []
    for ws in cfg.world_sizes:
        group = GroupConfig(
            world_size=ws,
            backend="nccl" if cfg.device == "cuda" else "gloo",
            device=cfg.device,
            collectives=cfg.collectives,
            sizes=plan.message_bytes,
            repeats=plan.comm_repeats,
            threads_per_rank=cfg.threads_per_rank,
            timeout_s=cfg.timeout_s,
        )
        tables["collectives"] += run_collective_group(group)
        tick(f"collectives world_size={ws}")
        met = tuple(c for c in MET_COLLECTIVES if c in cfg.collectives)
        if cfg.device == "cpu" and ws >= 2 and met and plan.level != "tiny":
            as_met = replace(
                group,
                collectives=met,
                sizes=MET_SIZES,
                gap_s=MET_GAP_S,
                repeats=Repeats(warmup=2, samples=MET_SAMPLES, min_samples=MET_SAMPLES),
            )
            tables.setdefault("collectives_met", []).extend(run_collective_group(as_met))
            tick(f"collectives as met world_size={ws}")
    rpn = ranks_per_node(cfg.device, cfg.threads_per_rank)
    busy = min(rpn, max(cfg.world_sizes))
    if cfg.device == "cpu" and busy > 1:
        # alternating alone/busy pairs (`contention.py`): more of them, each shorter, since
        # 2026-12-03 (the ranks are started once, not per window)
        reps, rounds = (10, 3) if plan.level == "tiny" else (40, 9)
        tables["contention"] = measure_contention(
            dtypes, cfg.threads_per_rank, busy, reps, rounds=rounds
        )
        tick(f"host contention ranks={busy}")
    if cfg.device == "cpu":
        with torch_threads(cfg.threads_per_rank):
            tables["framework"] = run_framework(plan.repeats, tick)
    if meter is not None:
        tables["power"] = power_rows
        power = measured_power(power_rows, cfg.device, rpn, meter.name)
        note = f"measured with {meter.name}"
    else:
        power = modelled_power(cfg.device, cfg.threads_per_rank, _power_limit(cfg.device))
        note = f"not measured ({why}); datasheet-derived power model, labelled modelled"
    stability |= {"load_average_1m_start": load_start, "load_average_1m_end": load_average()}
    return Measurements(
        name=cfg.name,
        level=plan.level,
        device=cfg.device,
        dtypes=dtypes,
        world_sizes=cfg.world_sizes,
        threads_per_rank=cfg.threads_per_rank,
        ranks_per_node=rpn,
        memory_bytes=device_memory_bytes(cfg.device, cfg.threads_per_rank),
        machine=machine,
        power=power,
        power_note=note,
        tables=tables,
        stability=stability,
    )


def _power_limit(device: str) -> float | None:
    return gpu_power_limit_w() if device == "cuda" else None


def calibrate(
    cfg: CalibrationConfig,
    out: Path,
    force: bool = False,
    progress: ProgressHook | None = None,
) -> dict[str, Any]:
    """Measure this machine and write the profile directory `out`; returns its summary.

    Refuses (ValueError) before measuring if `out` holds a profile and `force` is false.
    """
    out = Path(out)
    check_target(out, force)
    m = measure_all(cfg, progress)
    m.name = m.name or out.name
    m.tables = as_stored(m.tables)  # fitted from what the CSVs keep
    summary = summarise(m)
    write_profile(out, summary, m.tables, force)
    return summary
