"""The search space: every parallel layout of one model on one cluster size, as `Layouts` arrays.

The rules are those `ParallelConfig.resolve` and `Workload` enforce, written over numpy arrays
(tests/test_planner_space.py checks, layout by layout, that the two agree):

- tp divides the GPUs of a node (tensor parallelism stays inside a node), tp divides
  `num_attention_heads`, and tp and `num_key_value_heads` divide one another;
- pp * vpp is at most `num_hidden_layers` (no stage empty; uneven splits as
  `simulator.pipeline_split` makes them); vpp > 1 needs pp > 1;
- cp divides `seq_len`; with sequence parallelism, tp * cp divides `seq_len`;
- tp * pp * cp divides the GPU count; dp is the rest;
- the global batch is a multiple of micro_batch * dp (and, for interleaved 1F1B, the number of
  micro-batches a multiple of pp);
- mixture-of-experts models: ep divides the routed experts (powers of two are tried) and
  ep * etp divides tp * cp * dp (etp = 1, Megatron-Core's parallel folding); ZeRO-3 is not
  modelled with experts. An NVL72 rack is one node of 72 GPUs, so an EP group of up to 72
  ranks stays on NVLink (`costmodel.network.alltoall_time`).

Two planner policies are added: layouts that are the same step under another name are emitted
once (sequence parallelism only with tp > 1, ZeRO stages only with dp > 1), and the global batch
of each layout is the multiple of its unit (micro_batch * dp, times pp when interleaved) nearest
the target, kept only within `BatchPolicy.tolerance` of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.layouts import Layouts
from hwprofiles.errors import UserError
from simulator.model import ModelSpec

DEFAULT_BATCH_TOKENS = 4 * 2**20
"""Tokens per optimizer step when the user gives none: "4M tokens", the global batch of
Llama 2 (Touvron et al. 2023, Table 1) and of Llama 3's first training stage (Llama Team 2024,
arXiv:2407.21783, Sec. 3.4.1)."""

DEFAULT_BATCH_TOLERANCE = 0.25
"""How far (relative) a layout's rounded global batch may stray from the default target.
A planner policy (an assumption, not a measurement): well below the critical batch size
(McCandlish et al. 2018; Kaplan et al. 2020, Sec. 5.1) the tokens needed to reach a loss barely
depend on the batch, so a batch within ±25% of the target counts as the same recipe."""

# Rejection reasons, in the order they are tested; counts feed the "no feasible layout" message.
REASONS = (
    "tp: num_attention_heads not divisible by tp",
    "tp: num_key_value_heads and tp do not divide one another",
    "pp: pp*vpp exceeds num_hidden_layers (a stage would be empty)",
    "cp: seq_len not divisible by cp",
    "sequence_parallel: seq_len not divisible by tp*cp",
    "gpus: not divisible by tp*pp*cp",
    "global_batch: not a multiple of micro_batch*dp (x pp when interleaved) within tolerance",
    "ep: ep*etp does not divide tp*cp*dp",
    "zero_stage: 3 with a mixture-of-experts model is not modelled",
)


@dataclass(frozen=True)
class SearchSpace:
    """Which values of each parallel degree the planner tries (the upper bounds are policy)."""

    max_cp: int = 8
    """Context parallelism up to this degree (powers of two)."""
    max_vpp: int = 8
    """Virtual pipeline stages per rank up to this (any count with no empty chunk)."""
    micro_batches: tuple[int, ...] = (1, 2, 4, 8)
    """Micro-batch sizes (sequences) tried."""
    zero_stages: tuple[int, ...] = (0, 1, 2, 3)
    recompute: tuple[int, ...] = (0, 1, 2)
    """Recompute codes as in `Layouts`: 0 none, 1 selective, 2 full."""
    sequence_parallel: tuple[int, ...] = (0, 1)
    max_ep: int = 256
    """Expert parallelism up to this degree (powers of two dividing the routed experts; MoE
    models only)."""

    def __post_init__(self) -> None:
        if self.max_cp < 1 or self.max_vpp < 1:
            raise UserError(f"max_cp, max_vpp: ({self.max_cp}, {self.max_vpp}) must be >= 1")
        if not self.micro_batches or min(self.micro_batches) < 1:
            raise UserError(f"micro_batches: {self.micro_batches} must be integers >= 1")


@dataclass(frozen=True)
class BatchPolicy:
    """The global batch in sequences: a target, and how far a layout may round away from it."""

    target_sequences: int
    tolerance: float = 0.0
    """0: the batch must be exactly `target_sequences` (the user gave it)."""
    source: str = "given"

    def __post_init__(self) -> None:
        if self.target_sequences < 1:
            raise UserError(f"global_batch: {self.target_sequences} must be >= 1 sequence")
        if not 0.0 <= self.tolerance < 1.0:
            raise UserError(f"batch tolerance: {self.tolerance} must be in [0, 1)")

    @classmethod
    def default(cls, seq_len: int) -> BatchPolicy:
        """~4M tokens per step (`DEFAULT_BATCH_TOKENS`), rounded per layout within ±25%."""
        seqs = max(1, round(DEFAULT_BATCH_TOKENS / seq_len))
        return cls(
            seqs,
            DEFAULT_BATCH_TOLERANCE,
            f"default: ~4M tokens per step (Llama 2/3) = {seqs} sequences of {seq_len} tokens, "
            f"rounded per layout to a multiple of micro_batch*dp within "
            f"±{DEFAULT_BATCH_TOLERANCE:.0%}",
        )


def _divisors(n: int, limit: int | None = None) -> list[int]:
    top = n if limit is None else min(n, limit)
    return [d for d in range(1, top + 1) if n % d == 0]


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def candidate_product(
    model: ModelSpec, gpus: int, gpus_per_node: int, space: SearchSpace
) -> dict[str, np.ndarray]:
    """The Cartesian product of the degrees tried, before any rule (columns of equal length)."""
    axes = {
        "tp": _divisors(gpus_per_node),
        "cp": _powers_of_two(space.max_cp),
        # any stage count that divides the GPUs and leaves no stage empty (uneven splits)
        "pp": _divisors(gpus, model.num_hidden_layers),
        "vpp": list(range(1, min(space.max_vpp, model.num_hidden_layers) + 1)),
        "mb": list(space.micro_batches),
        "zero": list(space.zero_stages),
        "sp": list(space.sequence_parallel),
        "recompute": list(space.recompute),
        "ep": _expert_degrees(model, gpus, space.max_ep),
    }
    axes["pp"] = [p for p in axes["pp"] if p <= gpus]
    grids = np.meshgrid(*[np.asarray(v, dtype=np.int64) for v in axes.values()], indexing="ij")
    return {k: g.ravel() for k, g in zip(axes, grids, strict=True)}


def _expert_degrees(model: ModelSpec, gpus: int, limit: int) -> list[int]:
    """Expert-parallel degrees tried: powers of two dividing the routed experts (1 if dense)."""
    if not model.is_moe:
        return [1]
    return [e for e in _powers_of_two(min(limit, gpus)) if model.n_routed_experts % e == 0]


def global_batch(
    mb: np.ndarray, dp: np.ndarray, pp: np.ndarray, vpp: np.ndarray, batch: BatchPolicy
) -> np.ndarray:
    """Each layout's global batch: the multiple of its unit nearest the target (>= one unit)."""
    unit = mb * dp * np.where(vpp > 1, pp, 1)
    unit = np.maximum(unit, 1)
    k = np.maximum(1, np.floor(batch.target_sequences / unit + 0.5)).astype(np.int64)
    return k * unit


def classify(
    model: ModelSpec, gpus: int, seq_len: int, cols: dict[str, np.ndarray], batch: BatchPolicy
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reason code per row: -1 valid else the first failing rule's index into `REASONS`;
    count of failing rules per row; dp; global batch)."""
    tp, cp, pp, vpp = cols["tp"], cols["cp"], cols["pp"], cols["vpp"]
    kv = model.kv_heads
    mp = tp * pp * cp
    dp = np.where(gpus % mp == 0, gpus // np.maximum(mp, 1), 0)
    gbs = global_batch(cols["mb"], np.maximum(dp, 1), pp, vpp, batch)
    allowed = batch.target_sequences * batch.tolerance
    failing = (
        model.num_attention_heads % tp != 0,
        (kv % tp != 0) & (tp % kv != 0),
        (pp * vpp > model.num_hidden_layers) | ((vpp > 1) & (pp == 1)),
        seq_len % cp != 0,
        (cols["sp"] == 1) & (seq_len % (tp * cp) != 0),
        dp == 0,
        (dp == 0) | (np.abs(gbs - batch.target_sequences) > allowed),  # no dp: no split
        (tp * cp * np.maximum(dp, 1)) % cols["ep"] != 0,  # etp = 1
        (cols["zero"] == 3) & model.is_moe,
    )
    reason = np.full(tp.shape, -1, dtype=np.int64)
    for code in range(len(failing) - 1, -1, -1):  # the first failing rule wins
        reason = np.where(failing[code], code, reason)
    n_failing = np.sum(np.stack([np.broadcast_to(f, tp.shape) for f in failing]), axis=0)
    return reason, n_failing, dp, gbs


@dataclass(frozen=True)
class Enumeration:
    """The valid layouts of one cluster size and how many candidates each rule rejected."""

    layouts: Layouts
    tried: int
    rejected: dict[str, int]
    """Rule -> candidates it rejected (each counted under the first rule it fails)."""
    blocking: dict[str, int]
    """Rule -> candidates that fail this rule alone: relaxing it would admit them."""


def enumerate_layouts(
    model: ModelSpec,
    gpus: int,
    gpus_per_node: int,
    seq_len: int,
    batch: BatchPolicy,
    space: SearchSpace | None = None,
) -> Enumeration:
    """Every valid, non-redundant layout of `model` on `gpus` GPUs, in a fixed order."""
    if gpus < 1:
        raise UserError(f"gpus: {gpus} must be >= 1")
    space = space or SearchSpace()
    cols = candidate_product(model, gpus, gpus_per_node, space)
    reason, n_failing, dp, gbs = classify(model, gpus, seq_len, cols, batch)
    redundant = ((cols["sp"] == 1) & (cols["tp"] == 1)) | ((cols["zero"] > 0) & (dp == 1))
    keep = (reason == -1) & ~redundant
    counts = np.bincount(reason[reason >= 0], minlength=len(REASONS))
    rejected = {REASONS[i]: int(c) for i, c in enumerate(counts) if c}
    alone = np.bincount(reason[n_failing == 1], minlength=len(REASONS))
    blocking = {REASONS[i]: int(c) for i, c in enumerate(alone) if c}
    layouts = Layouts.from_arrays(
        **{k: v[keep] for k, v in cols.items()}, dp=dp[keep], gbs=gbs[keep]
    )
    return Enumeration(layouts, int(reason.size), rejected, blocking)
