"""`ParallelConfig` and `Workload`: how a model is trained, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from hwprofiles.errors import UserError
from hwprofiles.precision import PRECISIONS as PRECISION_TABLE
from hwprofiles.typed import check, field_types
from simulator.limits import MAX_BATCH, MAX_SEQ_LEN, check_gpus
from simulator.model import ModelSpec
from simulator.pipeline_split import physical_stage_layers, stage_layers

Recompute = Literal["none", "selective", "full"]
Precision = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "mxfp8", "nvfp4"]
RECOMPUTE_MODES = ("none", "selective", "full")
PRECISIONS = tuple(PRECISION_TABLE)

BYTES_PER_PARAM = {k: p.weight_bytes for k, p in PRECISION_TABLE.items()}
"""Bytes of one weight element in the compute dtype, as ZeRO gathers it (the closed form's and
the SimPy engine's `w_bytes`).

Activations and their communication use `costmodel.timing.ACT_BYTES` instead, which counts
fp8 at 2: fp8 training (Transformer Engine) keeps activations between layers in bf16 and casts
GEMM inputs to fp8. Block-scaled formats carry their scales: MXFP8 one 1-byte E8M0 scale per
32 elements (OCP Microscaling Formats (MX) Specification v1.0, 2023, Sec. 5), NVFP4 one
1-byte E4M3 scale per 16 4-bit elements (NVIDIA technical blog 'Introducing NVFP4', 2025)."""


@dataclass(frozen=True)
class ParallelConfig:
    """A Megatron-style parallel layout and batch, with torchtitan-style validation."""

    tp: int = 1
    """Tensor-parallel degree (inside a node)."""
    pp: int = 1
    """Pipeline-parallel stages."""
    vpp: int = 1
    """Virtual stages per pipeline rank (interleaved 1F1B when > 1)."""
    cp: int = 1
    """Context-parallel degree (sequence split across ranks for attention)."""
    dp: int = -1
    """Data-parallel degree; -1 = whatever GPUs remain (gpus / (tp*pp*cp))."""
    sequence_parallel: bool = False
    """Megatron sequence parallelism: norms/dropout split over tp; all-reduce -> RS + AG."""
    zero_stage: int = 0
    """0: plain DP; 1: optimizer states sharded; 2: + gradients; 3: + parameters (FSDP)."""
    micro_batch_size: int = 1
    """Sequences per micro-batch per model replica."""
    global_batch_size: int | None = None
    """Sequences per optimizer step; None = micro_batch_size * dp (one micro-batch)."""
    recompute: Recompute = "none"
    precision: Precision = "bf16"
    ep: int = 1
    """Expert-parallel degree (mixture-of-experts models). The experts' grid etp x ep x edp
    folds onto the same tp x cp x dp ranks as attention (Megatron-Core "MoE parallel
    folding", Liu et al. 2025, arXiv 2504.14960): ep * etp must divide tp * cp * dp."""
    etp: int | None = None
    """Expert tensor-parallel degree: each expert's GEMMs split over `etp` ranks. None = 1,
    what Megatron-Core's MoE recipes (DeepSeek-V3, Mixtral, Qwen3) set with parallel folding
    (its library default is tp)."""
    first_stage_layers: int | None = None
    """Layers pinned on the first pipeline stage (None = the default split,
    `simulator.pipeline_split`)."""
    last_stage_layers: int | None = None
    """Layers pinned on the last pipeline stage (None = the default split)."""

    def __post_init__(self) -> None:
        for f, annotation in field_types(ParallelConfig).items():  # types first: tp = "eight"
            check(getattr(self, f), annotation, f)
        for f in ("micro_batch_size", "global_batch_size"):
            v = getattr(self, f)
            if v is not None and v > MAX_BATCH:
                raise UserError(f, v, f"is above llmcap's limit of {MAX_BATCH:,} sequences")
        for f in ("tp", "pp", "vpp", "cp", "micro_batch_size"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise UserError(f"{f}: {v!r} must be an integer >= 1")
        if not isinstance(self.dp, int) or (self.dp < 1 and self.dp != -1):
            raise UserError(f"dp: {self.dp!r} must be >= 1 or -1 (= the rest)")
        if self.zero_stage not in (0, 1, 2, 3):
            raise UserError(f"zero_stage: {self.zero_stage!r} must be 0, 1, 2 or 3")
        if self.recompute not in RECOMPUTE_MODES:
            raise UserError(f"recompute: {self.recompute!r} must be one of {RECOMPUTE_MODES}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision: {self.precision!r} must be one of {PRECISIONS}")
        if self.vpp > 1 and self.pp == 1:
            raise UserError(f"vpp: {self.vpp} needs pp > 1 (interleaving needs a pipeline)")
        for f in ("first_stage_layers", "last_stage_layers"):
            v = getattr(self, f)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise UserError(f"{f}: {v!r} must be an integer >= 1 (a stage cannot be empty)")
        if self.global_batch_size is not None and self.global_batch_size < 1:
            raise UserError(f"global_batch_size: {self.global_batch_size} must be >= 1")
        if not isinstance(self.ep, int) or isinstance(self.ep, bool) or self.ep < 1:
            raise UserError("ep", self.ep, "must be an integer >= 1")
        if self.etp is not None and (
            not isinstance(self.etp, int) or isinstance(self.etp, bool) or self.etp < 1
        ):
            raise UserError("etp", self.etp, "must be an integer >= 1")

    @property
    def expert_tp(self) -> int:
        """Expert tensor-parallel degree (`etp`, or 1)."""
        return 1 if self.etp is None else self.etp

    @property
    def expert_dp(self) -> int:
        """Ranks holding the same experts (their gradients are reduced among them):
        tp * cp * dp / (ep * etp), Megatron-Core's expert data-parallel size."""
        return self.tp * self.cp * self.dp // (self.ep * self.expert_tp)

    @property
    def model_parallel(self) -> int:
        return self.tp * self.pp * self.cp

    def resolve(self, num_gpus: int) -> ParallelConfig:
        """Fill in dp and the global batch for `num_gpus`; check the product."""
        check(num_gpus, int, "gpus")
        check_gpus(num_gpus)
        if num_gpus < 1:
            raise UserError(f"gpus: {num_gpus} must be >= 1")
        mp = self.model_parallel
        dp = self.dp
        if dp == -1:
            if num_gpus % mp:
                raise UserError(
                    f"gpus: {num_gpus} not divisible by tp*pp*cp = "
                    f"{self.tp}*{self.pp}*{self.cp} = {mp}"
                )
            dp = num_gpus // mp
        if mp * dp != num_gpus:
            raise UserError(
                f"tp*pp*cp*dp = {self.tp}*{self.pp}*{self.cp}*{dp} = {mp * dp} != {num_gpus} GPUs"
            )
        gbs = self.global_batch_size or self.micro_batch_size * dp
        per_step = self.micro_batch_size * dp
        if gbs % per_step:
            raise UserError(
                f"global_batch_size: {gbs} not divisible by micro_batch_size*dp = "
                f"{self.micro_batch_size}*{dp} = {per_step}"
            )
        m = gbs // per_step
        if self.vpp > 1 and m % self.pp:
            raise UserError(
                f"num_microbatches: {m} must be a multiple of pp = {self.pp} for interleaved 1F1B"
            )
        return replace(self, dp=dp, global_batch_size=gbs)

    @property
    def num_microbatches(self) -> int:
        """Micro-batches per step per pipeline, as Megatron derives it (needs `resolve`)."""
        if self.dp < 1 or self.global_batch_size is None:
            raise ValueError("num_microbatches: call resolve(num_gpus) first")
        return self.global_batch_size // (self.micro_batch_size * self.dp)

    @property
    def num_gpus(self) -> int:
        if self.dp < 1:
            raise ValueError("num_gpus: dp unresolved (-1); call resolve(num_gpus) first")
        return self.model_parallel * self.dp


@dataclass(frozen=True)
class Workload:
    """A model, a resolved parallel layout and a sequence length: one training step to cost."""

    model: ModelSpec
    parallel: ParallelConfig
    seq_len: int = 2048

    def __post_init__(self) -> None:
        m, p = self.model, self.parallel
        if p.dp < 1 or p.global_batch_size is None:
            raise ValueError("parallel: dp unresolved; use ParallelConfig.resolve(num_gpus)")
        check(self.seq_len, int, "seq_len")
        if self.seq_len < 1:
            raise UserError(f"seq_len: {self.seq_len} must be >= 1")
        if self.seq_len > MAX_SEQ_LEN:
            raise UserError("seq_len", self.seq_len, f"is above llmcap's limit of {MAX_SEQ_LEN:,}")
        if m.num_attention_heads % p.tp:
            raise UserError(
                f"tp: num_attention_heads = {m.num_attention_heads} not divisible by tp = {p.tp}"
            )
        if m.kv_heads % p.tp and p.tp % m.kv_heads:
            raise UserError(
                f"tp: num_key_value_heads = {m.kv_heads} and tp = {p.tp}: one must divide the other"
            )
        _check_experts(m, p)
        self.split  # noqa: B018 - validates: only an empty stage is an error
        if self.seq_len % p.cp:
            raise UserError(f"cp: seq_len = {self.seq_len} not divisible by cp = {p.cp}")
        if p.sequence_parallel and self.seq_len % (p.tp * p.cp):
            raise UserError(
                f"sequence_parallel: seq_len = {self.seq_len} not divisible by "
                f"tp*cp = {p.tp * p.cp}"
            )

    @property
    def num_gpus(self) -> int:
        return self.parallel.num_gpus

    @property
    def tokens_per_step(self) -> int:
        return self.parallel.global_batch_size * self.seq_len  # type: ignore[operator]

    @property
    def split(self) -> tuple[int, ...]:
        """Layers of each virtual stage in pipeline order (`simulator.pipeline_split`)."""
        p = self.parallel
        return stage_layers(
            self.model.num_hidden_layers, p.pp, p.vpp, p.first_stage_layers, p.last_stage_layers
        )

    @property
    def stage_layer_counts(self) -> tuple[int, ...]:
        """Layers on each pipeline rank (its chunks together)."""
        return physical_stage_layers(self.split, self.parallel.pp)

    @property
    def layers_per_stage(self) -> int:
        """Layers on the busiest pipeline rank."""
        return max(self.stage_layer_counts)


def _check_experts(m: ModelSpec, p: ParallelConfig) -> None:
    """Expert parallelism needs experts to split and data/context ranks to host them."""
    if not m.is_moe:
        if p.ep > 1:
            raise UserError("ep", p.ep, f"needs a mixture-of-experts model ({m.name} is dense)")
        return
    if m.n_routed_experts % p.ep:
        raise UserError(
            "ep", p.ep, f"must divide the routed experts (n_routed_experts = {m.n_routed_experts})"
        )
    grid = p.tp * p.cp * p.dp
    if grid % (p.ep * p.expert_tp):
        raise UserError(
            "ep",
            p.ep,
            f"ep*etp = {p.ep}*{p.expert_tp} must divide tp*cp*dp = {p.tp}*{p.cp}*{p.dp} = {grid} "
            "(the experts' grid folds onto the attention ranks; with etp = tp: ep must divide "
            "dp*cp)",
        )
    if p.zero_stage == 3:
        raise UserError(
            "zero_stage", 3, "with a mixture-of-experts model is not modelled (use ZeRO 0-2)"
        )
