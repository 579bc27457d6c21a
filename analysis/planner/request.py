"""`PlanRequest`: the purchasing question, validated at construction (SI units inside)."""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.closed_form import Options
from analysis.planner.costs import DEFAULT_GRID_G_PER_KWH
from analysis.planner.search import USABLE_MEMORY_FRACTION
from analysis.planner.space import BatchPolicy, SearchSpace
from analysis.planner.tco import OwnershipParams
from hwprofiles.errors import UserError
from hwprofiles.ownership import OwnershipData
from hwprofiles.profile import HardwareProfile
from simulator.model import ModelSpec
from simulator.models_catalogue import pretraining_seq_len
from simulator.parallel import PRECISIONS

DEFAULT_MAX_GPUS = 1024
"""Largest cluster tried when neither --gpus nor --max-gpus is given (a policy default)."""


def gpu_counts_up_to(max_gpus: int) -> tuple[int, ...]:
    """Powers of two from 1 to `max_gpus`, plus `max_gpus` itself."""
    if max_gpus < 1:
        raise UserError(f"max_gpus: {max_gpus} must be >= 1")
    out, g = [], 1
    while g <= max_gpus:
        out.append(g)
        g *= 2
    if out[-1] != max_gpus:
        out.append(max_gpus)
    return tuple(out)


@dataclass(frozen=True)
class PlanRequest:
    """Which hardware, how many GPUs, which layout: the inputs of one planner run."""

    model: ModelSpec
    tokens: float
    """Training budget in tokens."""
    hardware: tuple[HardwareProfile, ...]
    gpus: tuple[int, ...] = gpu_counts_up_to(DEFAULT_MAX_GPUS)
    precisions: tuple[str, ...] = ("bf16",)
    seq_len: int | None = None
    """Tokens per sequence; None = the model's pre-training length
    (`simulator.models_catalogue.pretraining_seq_len`), not its maximum context."""
    global_batch: int | None = None
    """Sequences per optimizer step; None = ~4M tokens (see `BatchPolicy.default`)."""
    deadline_s: float | None = None
    budget_usd: float | None = None
    grid_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH
    pue: float = 1.0
    """Facility power usage effectiveness applied to the GPU energy (1.0 = GPUs only)."""
    recheck: int = 3
    """How many of the best candidates to re-check with the SimPy engine (0: none)."""
    top_n: int = 5
    """Layouts kept per candidate (the best first)."""
    usable_memory_fraction: float = USABLE_MEMORY_FRACTION
    options: Options = field(default_factory=Options)
    space: SearchSpace = field(default_factory=SearchSpace)
    ownership: OwnershipParams | None = None
    """With it, candidates are costed as owned (`analysis.planner.tco`), rent beside."""
    ownership_data: OwnershipData | None = None
    """Server and fabric prices for owning (None: the catalogue's)."""
    price_class: str = ""
    """The rental provider class the prices were taken from (for the report)."""

    def __post_init__(self) -> None:
        if not self.tokens > 0:
            raise UserError(f"tokens: {self.tokens} must be > 0")
        if not self.hardware:
            raise UserError("hardware: at least one hardware profile is needed")
        names = [h.name for h in self.hardware]
        if len(set(names)) != len(names):
            raise UserError(f"hardware: {names} names a profile twice")
        if not self.gpus or min(self.gpus) < 1:
            raise UserError(f"gpus: {list(self.gpus)} must be a non-empty list of counts >= 1")
        if len(set(self.gpus)) != len(self.gpus):
            raise UserError(f"gpus: {list(self.gpus)} lists a count twice")
        if not self.precisions:
            raise UserError("precision: at least one is needed")
        for p in self.precisions:
            if p not in PRECISIONS:
                raise UserError(f"precision: {p!r} must be one of {PRECISIONS}")
        if self.seq_len is not None and self.seq_len < 1:
            raise UserError(f"seq_len: {self.seq_len} must be >= 1")
        if self.global_batch is not None and self.global_batch < 1:
            raise UserError(f"global_batch: {self.global_batch} must be >= 1 sequence")
        if self.deadline_s is not None and not self.deadline_s > 0:
            raise UserError(f"deadline: {self.deadline_s} s must be > 0")
        if self.budget_usd is not None and not self.budget_usd > 0:
            raise UserError(f"budget: {self.budget_usd} USD must be > 0")
        if self.grid_g_per_kwh < 0:
            raise UserError(f"grid_intensity: {self.grid_g_per_kwh} gCO2/kWh must be >= 0")
        if self.pue < 1.0:
            raise UserError(f"pue: {self.pue} must be >= 1")
        if self.recheck < 0 or self.top_n < 1:
            raise UserError(f"recheck, top_n: ({self.recheck}, {self.top_n}) must be >= 0, >= 1")
        if not 0.0 < self.usable_memory_fraction <= 1.0:
            raise UserError(
                f"usable_memory_fraction: {self.usable_memory_fraction} must be in (0, 1]"
            )

    @property
    def sequence_length(self) -> int:
        return self.seq_len or pretraining_seq_len(self.model)[0]

    @property
    def sequence_length_source(self) -> str:
        return "given" if self.seq_len else pretraining_seq_len(self.model)[1]

    @property
    def batch(self) -> BatchPolicy:
        if self.global_batch is not None:
            return BatchPolicy(self.global_batch, 0.0, "given (--global-batch), exact")
        return BatchPolicy.default(self.sequence_length)
