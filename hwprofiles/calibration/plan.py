"""What a calibration measures: sizes per benchmark for each level (tiny, quick, full).

The sizes are chosen for time, not taste: `quick` finishes in 1.5-3 minutes (fp32 only,
measured) on a 2-core CPU (one thread per rank), `full` in about ten minutes, `tiny` in
seconds (tests). GPU plans are larger because a GPU finishes a 1024^3 GEMM in microseconds;
the GPU `full` plan is sized to take a few minutes on one H200.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hwprofiles.calibration.timing import Repeats
from hwprofiles.errors import UserError

LEVELS = ("tiny", "quick", "full")
MiB = 2**20


@dataclass(frozen=True)
class AttentionShape:
    """One scaled-dot-product-attention call: (batch, heads, seq, head_dim)."""

    batch: int
    heads: int
    seq: int
    head_dim: int

    def __post_init__(self) -> None:
        dims = (self.batch, self.heads, self.seq, self.head_dim)
        if any(not isinstance(v, int) or v < 1 for v in dims):
            raise UserError(
                f"attention shape: {'x'.join(map(str, dims))} must be four integers >= 1 "
                "(batch x heads x seq x head_dim)"
            )

    @classmethod
    def parse(cls, text: str) -> AttentionShape:
        """ "BATCHxHEADSxSEQxHEAD_DIM", e.g. "4x4x128x64"."""
        parts = text.strip().lower().split("x")
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            raise UserError(
                f"attention shape: {text!r} must be BATCHxHEADSxSEQxHEAD_DIM, e.g. 4x4x128x64"
            )
        b, h, s, d = (int(p) for p in parts)
        return cls(b, h, s, d)

    def label(self) -> str:
        return f"{self.batch}x{self.heads}x{self.seq}x{self.head_dim}"


@dataclass(frozen=True)
class Plan:
    """Sizes for one calibration run."""

    level: str
    square_sizes: tuple[int, ...]
    """m = n = k of the square GEMM sweep."""
    hidden_sizes: tuple[int, ...]
    """Hidden sizes whose transformer-layer GEMMs (QKV, proj, MLP, logits) are measured."""
    tokens: int
    """Tokens per micro-batch (micro_batch * seq) in the transformer GEMMs."""
    vocab: int
    attention: tuple[AttentionShape, ...]
    memory_bytes: tuple[int, ...]
    """Bytes per array for the copy and triad bandwidth tests."""
    elementwise: tuple[tuple[int, int], ...]
    """(tokens, hidden) shapes for layernorm / gelu / add / softmax."""
    message_bytes: tuple[int, ...]
    """Collective sizes in the nccl-tests sense (total bytes, see collectives.py)."""
    repeats: Repeats
    comm_repeats: Repeats
    idle_s: float
    """Length of the idle-power window (s)."""
    workloads: tuple[str, ...] = ()
    """Workloads (`workload.WORKLOADS` names) whose own GEMMs are timed interleaved."""
    workload_budget_s: float = 0.0
    """Time budget of those interleaved rounds, all dtypes together (s)."""
    workload_attention: tuple[AttentionShape, ...] = ()
    """SDPA shapes timed per pass when the user names none (the workloads' own)."""


_VALIDATION = ("tiny", "small")
"""The validation GPT presets (validation/gptconfig.py), whose GEMMs and SDPA calls CPU
calibrations time at their own shapes (`workload.py`)."""
_VALIDATION_SDPA = (AttentionShape(2, 4, 64, 16), AttentionShape(4, 4, 128, 64))

_CPU = {
    "tiny": Plan(
        level="tiny",
        square_sizes=(32, 64, 128),
        hidden_sizes=(64,),
        tokens=128,
        vocab=512,
        attention=(AttentionShape(1, 2, 64, 32), AttentionShape(1, 2, 128, 32)),
        memory_bytes=(64 * 1024, 1 * MiB),
        elementwise=((128, 64),),
        message_bytes=(1024, 64 * 1024),
        repeats=Repeats(warmup=1, samples=3, min_samples=3, budget_s=0.05, sample_s=0.002),
        comm_repeats=Repeats(warmup=1, samples=3, min_samples=3, budget_s=0.1, sample_s=0.002),
        idle_s=0.05,
        workloads=("tiny",),
        workload_budget_s=0.5,
    ),
    "quick": Plan(
        level="quick",
        square_sizes=(64, 128, 256, 512, 1024, 2048),
        hidden_sizes=(256, 512, 1024),
        tokens=1024,
        vocab=8192,
        # no seq-1024 shape: its bf16 backward took 4.8 s a call on an AMD EPYC (Zen 3) VM
        # without a 16-bit matrix unit (2026-12-02, 1 thread); the validation models run
        # seq 64 and 128, timed per pass at their own shapes (`workload_attention`)
        attention=(AttentionShape(1, 4, 256, 64), AttentionShape(1, 8, 512, 64)),
        memory_bytes=(1 * MiB, 16 * MiB, 256 * MiB),
        elementwise=((1024, 512), (2048, 1024)),
        # 256 KiB: the validation models' gradient buckets and FSDP units lie between 64 KiB
        # and 1 MiB, where a 2-rank gloo call costs 0.3-0.9 ms plus the host's hiccups
        message_bytes=(1024, 64 * 1024, 256 * 1024, 1 * MiB, 16 * MiB),
        repeats=Repeats(warmup=1, samples=5, min_samples=3, budget_s=0.25, sample_s=0.005),
        # 25 samples: a 2-rank gloo call on the 2-vCPU VM takes 0.3-0.9 ms, or 3-4 ms when a
        # rank's wake-up misses (25-40 % of calls, at random: 40 calls of 64 KiB - 1 MiB,
        # 2026-12-03 06:50 UTC, quiet: median 0.34-0.91 ms, mean 1.2-2.2 ms). A sample averages
        # the calls of `sample_s`, so its median over 25 samples is the expected cost per call
        # a step pays; over 5 samples it moved 2-3x between calibrations (all_gather 64 KiB:
        # 0.66 ms in one, 1.40 ms in the next), and FSDP's 8 gathers and reductions per step
        # with it (the 2-rank FSDP runs predicted 14-18 % too fast)
        comm_repeats=Repeats(warmup=2, samples=25, min_samples=5, budget_s=1.0, sample_s=0.005),
        idle_s=0.5,
        workloads=_VALIDATION,
        workload_budget_s=20.0,
        workload_attention=_VALIDATION_SDPA,
    ),
    "full": Plan(
        level="full",
        square_sizes=(64, 128, 256, 512, 1024, 2048, 4096),
        hidden_sizes=(256, 512, 1024, 2048),
        tokens=2048,
        vocab=32768,
        attention=(
            AttentionShape(1, 4, 256, 64),
            AttentionShape(1, 8, 512, 64),
            AttentionShape(1, 8, 1024, 64),
            AttentionShape(1, 16, 2048, 64),
        ),
        memory_bytes=(1 * MiB, 16 * MiB, 128 * MiB, 512 * MiB),
        elementwise=((1024, 512), (2048, 1024), (2048, 4096)),
        message_bytes=(256, 4096, 64 * 1024, 1 * MiB, 8 * MiB, 32 * MiB),
        repeats=Repeats(warmup=2, samples=7, min_samples=3, budget_s=1.5, sample_s=0.02),
        comm_repeats=Repeats(warmup=3, samples=9, min_samples=5, budget_s=2.0, sample_s=0.02),
        idle_s=2.0,
        workloads=_VALIDATION,
        workload_budget_s=60.0,
        workload_attention=_VALIDATION_SDPA,
    ),
}

_GPU = {
    "tiny": _CPU["tiny"],
    "quick": Plan(
        level="quick",
        square_sizes=(256, 512, 1024, 2048, 4096, 8192),
        hidden_sizes=(1024, 4096),
        tokens=8192,
        vocab=32768,
        attention=(AttentionShape(4, 16, 1024, 128), AttentionShape(2, 32, 4096, 128)),
        memory_bytes=(16 * MiB, 256 * MiB, 2048 * MiB),
        elementwise=((8192, 1024), (8192, 8192)),
        message_bytes=(1024, 1 * MiB, 64 * MiB),
        repeats=Repeats(warmup=3, samples=10, min_samples=5, budget_s=0.5, sample_s=0.01),
        comm_repeats=Repeats(warmup=3, samples=10, min_samples=5, budget_s=0.5, sample_s=0.01),
        idle_s=2.0,
    ),
    "full": Plan(
        level="full",
        square_sizes=(256, 512, 1024, 2048, 4096, 6144, 8192, 12288, 16384),
        hidden_sizes=(1024, 2048, 4096, 8192),
        tokens=8192,
        vocab=131072,
        attention=(
            AttentionShape(8, 16, 512, 128),
            AttentionShape(4, 16, 1024, 128),
            AttentionShape(2, 32, 4096, 128),
            AttentionShape(1, 64, 8192, 128),
        ),
        memory_bytes=(16 * MiB, 256 * MiB, 2048 * MiB, 8192 * MiB),
        elementwise=((8192, 1024), (8192, 8192), (16384, 16384)),
        message_bytes=(1024, 64 * 1024, 1 * MiB, 16 * MiB, 256 * MiB),
        repeats=Repeats(warmup=5, samples=20, min_samples=5, budget_s=1.0, sample_s=0.02),
        comm_repeats=Repeats(warmup=5, samples=20, min_samples=5, budget_s=1.0, sample_s=0.02),
        idle_s=5.0,
    ),
}


def for_dtype(plan: Plan, dtype: str, device: str, matrix_flag: str | None) -> Plan:
    """`plan` as one dtype measures it. On a CPU without a 16-bit matrix unit (`matrix_flag`
    "": `machine.cpu_16bit_matrix_flag`) bf16 times the transformer GEMMs of the smallest
    hidden size only: there each bf16 GEMM runs 10-80x slower than fp32, and in the quick
    calibration of the AMD EPYC (Zen 3) VM (2026-12-03, load 0.6-2.6) the bf16 transformer
    GEMMs of hidden 256-1024 took about 31 s of its 158 s, those of 512 and 1024 about 28 s.
    The validation models' own GEMMs are timed regardless (`workload.py`)."""
    if device != "cpu" or dtype != "bf16" or matrix_flag != "" or plan.level == "tiny":
        return plan
    return replace(plan, hidden_sizes=plan.hidden_sizes[:1])


def make_plan(level: str, device: str = "cpu") -> Plan:
    """The plan for `level` in `LEVELS` on `device` ("cpu" or "cuda")."""
    if level not in LEVELS:
        raise UserError(f"level: {level!r} is not one of {', '.join(LEVELS)}")
    if device not in ("cpu", "cuda"):
        raise UserError(f"device: {device!r} is not one of cpu, cuda")
    return (_GPU if device == "cuda" else _CPU)[level]
