"""What the cluster scheduler is given: pools of GPUs and jobs, as frozen, validated dataclasses.

A job's physics comes from outside (the step model in `analysis.cluster.steps`): for every pool
it can run on, its step time and its power per GPU. The scheduler knows nothing about models or
layouts, only how long a job's steps take where, how many GPUs it holds, and how it restarts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from hwprofiles.errors import UserError


def _positive(where: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UserError(f"{where}: {value!r} must be a finite number > 0")


def _non_negative(where: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise UserError(f"{where}: {value!r} must be a finite number >= 0")


@dataclass(frozen=True)
class Pool:
    """A homogeneous group of nodes on one fabric (one hardware profile)."""

    name: str
    gpus: int
    gpus_per_node: int
    nodes_per_leaf: int = 32
    """Nodes under one leaf switch. 32 is the scalable unit of NVIDIA's DGX SuperPOD reference
    architecture (DGX H100 SuperPOD RA, 2023: 32 DGX nodes per SU and per leaf group)."""
    usd_per_gpu_hour: float = 0.0
    idle_w: float = 0.0
    """Power of one idle GPU (W), from the hardware profile's power model."""

    def __post_init__(self) -> None:
        where = f"pool {self.name}"
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 1:
            raise UserError(f"{where}.gpus: {self.gpus!r} must be an integer >= 1")
        if self.gpus_per_node < 1 or self.nodes_per_leaf < 1:
            raise UserError(
                f"{where}: gpus_per_node {self.gpus_per_node}, nodes_per_leaf "
                f"{self.nodes_per_leaf} must be >= 1"
            )
        if self.gpus % self.gpus_per_node:
            raise UserError(
                f"{where}.gpus: {self.gpus} is not a whole number of {self.gpus_per_node}-GPU nodes"
            )
        _non_negative(f"{where}.usd_per_gpu_hour", self.usd_per_gpu_hour)
        _non_negative(f"{where}.idle_w", self.idle_w)

    @property
    def nodes(self) -> int:
        return self.gpus // self.gpus_per_node


@dataclass(frozen=True)
class PoolRun:
    """How one job runs on one pool: seconds per step and watts per GPU while it runs."""

    step_time_s: float
    power_w: float
    layout: str = ""
    """The layout the step model chose (for reports), e.g. "tp2 pp4 dp32"."""
    failure_rate_s: float = 0.0
    """Interruptions per second of the job while it runs there (0: none simulated)."""

    def __post_init__(self) -> None:
        _positive("step_time_s", self.step_time_s)
        _non_negative("power_w", self.power_w)
        _non_negative("failure_rate_s", self.failure_rate_s)


@dataclass(frozen=True)
class Job:
    """One submitted job: a gang of `gpus` GPUs for `steps` steps on one pool."""

    id: int
    job_class: str
    submit_s: float
    gpus: int
    steps: float
    runs: Mapping[str, PoolRun]
    """Pool name -> how the job runs there; pools not listed cannot run it."""
    priority: int = 0
    """Higher runs first under the priority policy."""
    preemptible: bool = False
    checkpoint_interval_s: float = 3600.0
    """Run time between checkpoints; a preempted job loses the work since its last one."""
    restart_s: float = 0.0
    """Time to (re)start on its GPUs before the first step: load the checkpoint, warm up."""
    extra: dict[str, str] = field(default_factory=dict)
    """Free-form labels carried to the records (model name, ...)."""

    def __post_init__(self) -> None:
        where = f"job {self.id} ({self.job_class})"
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 1:
            raise UserError(f"{where}.gpus: {self.gpus!r} must be an integer >= 1")
        _non_negative(f"{where}.submit_s", self.submit_s)
        _positive(f"{where}.steps", self.steps)
        _positive(f"{where}.checkpoint_interval_s", self.checkpoint_interval_s)
        _non_negative(f"{where}.restart_s", self.restart_s)
        if not self.runs:
            raise UserError(f"{where}.runs: no pool can run it")

    def run_s(self, pool: str) -> float:
        """Uninterrupted run time on `pool` (s), restart excluded."""
        return self.steps * self.runs[pool].step_time_s
