"""`StepResult`: the one result type of a predicted training step, whichever engine made it.

Its `to_dict()` is the JSON contract of `llmcap simulate --json`. Floats are rounded to
significant digits so that the same inputs give byte-identical JSON on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SIG_DIGITS = 6


def round_sig(x: Any, digits: int = SIG_DIGITS) -> Any:
    """Round floats (recursively inside dicts/lists) to `digits` significant digits."""
    if isinstance(x, bool) or x is None or isinstance(x, int | str):
        return x
    if isinstance(x, float):
        if not math.isfinite(x) or x == 0.0:
            return x
        return float(f"{x:.{digits}g}")
    if isinstance(x, Mapping):
        return {str(k): round_sig(v, digits) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [round_sig(v, digits) for v in x]
    if hasattr(x, "item"):  # numpy scalar
        return round_sig(x.item(), digits)
    return x


@dataclass
class StepResult:
    """A predicted training step (times in s, energy in J, power in W, memory in bytes)."""

    engine: str
    step_time_s: float
    tokens_per_step: int
    num_gpus: int
    model_flops_per_step: float
    """Model FLOPs (no recompute) per step, all GPUs: the MFU numerator."""
    hardware_flops_per_step: float
    """FLOPs the hardware executes per step (recompute counted): the HFU numerator."""
    peak_flops_per_gpu: float
    comm_exposed_s: float
    memory_per_gpu_bytes: float
    memory_capacity_bytes: float
    energy_per_step_j: float
    breakdown: dict[str, float] = field(default_factory=dict)
    """Named parts of the critical path; they sum to `step_time_s`."""
    memory_breakdown: dict[str, float] = field(default_factory=dict)
    comm_breakdown: dict[str, float] = field(default_factory=dict)
    """Total (exposed + hidden) communication time per kind, per GPU."""
    single_gpu_step_time_s: float | None = None
    """Ideal 1-GPU time for the same global batch (compute only), for scaling efficiency."""
    tokens_to_train: float | None = None
    document: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    power: dict[str, Any] = field(default_factory=dict)
    """Node and facility energy per step and GPU energy by phase (`analysis.energy_levels`)."""
    whole_run: dict[str, Any] = field(default_factory=dict)
    """With a token budget: wall clock with failures, checkpoints and restarts
    (`simulator.reliability.run.whole_run`), energy to train at each level."""

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_per_step / self.step_time_s

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.tokens_per_s / self.num_gpus

    @property
    def model_tflops_per_gpu(self) -> float:
        return self.model_flops_per_step / self.step_time_s / self.num_gpus / 1e12

    @property
    def mfu(self) -> float:
        return self.model_flops_per_step / (
            self.step_time_s * self.num_gpus * self.peak_flops_per_gpu
        )

    @property
    def hfu(self) -> float:
        return self.hardware_flops_per_step / (
            self.step_time_s * self.num_gpus * self.peak_flops_per_gpu
        )

    @property
    def comm_fraction(self) -> float:
        return self.comm_exposed_s / self.step_time_s

    @property
    def fits_in_memory(self) -> bool:
        return self.memory_per_gpu_bytes <= self.memory_capacity_bytes

    @property
    def avg_power_w(self) -> float:
        """Average power per GPU over the step."""
        return self.energy_per_step_j / self.step_time_s / self.num_gpus

    @property
    def scaling_efficiency(self) -> float | None:
        """Achieved speed-up over one ideal GPU, divided by the GPU count."""
        if self.single_gpu_step_time_s is None:
            return None
        return self.single_gpu_step_time_s / (self.step_time_s * self.num_gpus)

    @property
    def time_to_train_ideal_s(self) -> float | None:
        """Steps x step time: no failures, checkpoints or restarts."""
        if self.tokens_to_train is None:
            return None
        return self.tokens_to_train / self.tokens_per_s

    @property
    def time_to_train_s(self) -> float | None:
        """Expected wall clock to train the token budget, goodput included when modelled."""
        if "time_to_train_s" in self.whole_run:
            return float(self.whole_run["time_to_train_s"])
        return self.time_to_train_ideal_s

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract (rounded, key order fixed)."""
        d: dict[str, Any] = {
            "engine": self.engine,
            "step_time_s": self.step_time_s,
            "tokens_per_step": self.tokens_per_step,
            "tokens_per_s": self.tokens_per_s,
            "tokens_per_s_per_gpu": self.tokens_per_s_per_gpu,
            "model_tflops_per_gpu": self.model_tflops_per_gpu,
            "mfu": self.mfu,
            "hfu": self.hfu,
            "mfu_convention": "model FLOPs without recompute (6N-style per token incl. attention)"
            " / (step time * GPUs * dense peak of the compute dtype); hfu counts recompute"
            + (
                "; mixture-of-experts: active parameters only (top-k routed and shared experts,"
                " no capacity padding or load imbalance)"
                if "active_params" in self.inputs.get("model", {})
                else ""
            ),
            "comm_exposed_s": self.comm_exposed_s,
            "comm_fraction": self.comm_fraction,
            "memory_per_gpu_bytes": self.memory_per_gpu_bytes,
            "memory_capacity_bytes": self.memory_capacity_bytes,
            "fits_in_memory": self.fits_in_memory,
            "energy_per_step_j": self.energy_per_step_j,
            "avg_power_w": self.avg_power_w,
            "scaling_efficiency": self.scaling_efficiency,
            "time_to_train_s": self.time_to_train_s,
            "breakdown": dict(self.breakdown),
            "comm_breakdown": dict(self.comm_breakdown),
            "memory_breakdown": dict(self.memory_breakdown),
            "document": self.document,
            "inputs": self.inputs,
            "provenance": self.provenance,
            "notes": list(self.notes),
        }
        d.update(self.power)
        d.update(self.whole_run)
        if self.extra:
            d["extra"] = self.extra
        return round_sig(d)
