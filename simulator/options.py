"""`Options`: implementation choices of a training stack that change a step's cost.

Shared by both engines (closed form in `analysis`, SimPy in `simulator.des`), so it lives here,
below both in the import order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwprofiles.errors import UserError
from hwprofiles.typed import check, field_types
from simulator.costmodel.moe import DEFAULT_IMBALANCE


@dataclass(frozen=True)
class Options:
    """Implementation choices that change a step's cost; defaults follow Megatron-LM 2024."""

    attention: str = "flash"
    """"flash": fused attention (no s^2 tensors); "naive": unfused softmax (pre-2022 stacks)."""
    attention_kernel: str = "fa2"
    """Fused-attention generation with attention = "flash": "fa1", "fa2", "fa3" or "cudnn"
    (`hwprofiles.attention_kernels`); the catalogue's figures are FlashAttention-2's."""
    dropout: bool = False
    """Dropout masks stored (GPT-2/3-era recipes); modern LLM recipes train without dropout."""
    overlap_grad_reduce: bool = True
    """DP gradient reduction in buckets, overlapped with the last micro-batch's backward."""
    overlap_param_gather: bool = True
    """ZeRO parameter all-gathers prefetched behind compute."""
    zero3_prefetch_params: float | None = None
    """ZeRO-3 prefetch limit in parameters gathered ahead of the module computing. None: one
    whole unit ahead (torch FSDP's backward/forward prefetch with limit_all_gathers, Megatron's
    overlapped parameter gather). A number: DeepSpeed's `stage3_prefetch_bucket_size`, which
    fetches each submodule's parameters as the module before it computes, at most this many
    ahead; a submodule larger than the limit is prefetched only up to it and the rest is
    gathered when it is needed, with the compute waiting (`plan.step.prefetch_share`)."""
    overlap_tp_comm: bool = False
    """TP collectives overlapped with GEMMs (Megatron --tp-comm-overlap, Transformer Engine)."""
    overlap_tp_comm_backward: bool = True
    """The backward's TP collectives overlapped with the weight-gradient GEMM beside them, also
    without `overlap_tp_comm`: Megatron-LM's asynchronous tensor-parallel all-reduce (and, with
    sequence parallelism, the all-gather / reduce-scatter) of the input gradient launched before
    the dW GEMM (`LinearWithGradAccumulationAndAsyncCommunication`, default since Megatron-LM
    late 2021; Korthikanti et al. 2022, Sec. 6.2: 'we overlap all-reduce communication with the
    linear weight's gradient computation'). Stacks without it (torch TP, DeepSpeed, Megatron
    before it) set it false."""
    overlap_p2p: bool = True
    """Pipeline send/recv overlapped with compute in steady state (Megatron default)."""
    grad_reduce_bytes: float = 4.0
    """Bytes per gradient element in the DP reduction (fp32: Megatron and torch AMP default)."""
    bucket_bytes: float | None = None
    """Gradient bucket size in bytes; None = Megatron-Core's rule (see `bucket_size`). torch
    DDP's default is 25 MiB (bucket_cap_mb = 25)."""
    amp_casts: bool = False
    """torch.autocast mixed precision: fp32 weights cast to 16-bit per GEMM, fp32 norms
    (torch AMP); Megatron/Transformer Engine keep 16-bit weights and do not pay this."""
    grad_bucket_copies: bool = False
    """torch DDP (`gradient_as_bucket_view=False`, its default) copies every gradient into its
    bucket before the all-reduce and back afterwards (torch/csrc/distributed/c10d/reducer.cpp,
    `mark_variable_ready_dense` and `finalize_bucket_dense`); Megatron's contiguous gradient
    buffer reduces in place and pays nothing. Priced as memory traffic (`costmodel.framework`)."""
    optimizer_fp32_grads: bool = False
    """With 16-bit gradients (`grad_reduce_bytes` 2), the optimizer keeps an fp32 copy of them
    beside the fp32 master weights, 4 bytes per parameter sharded with the optimizer states:
    Megatron-LM's fp16 optimizer (Megatron Core docs, "Distributed Optimizer": fp16 params and
    grads 20 bytes per parameter, 4 + 16/d with the distributed optimizer). DeepSpeed ZeRO
    counts none (ZeRO paper, Sec. 3.1: 2 + 2 + 12 bytes)."""
    fp8_weight_cache: bool = True
    """Quantised training (fp8, mxfp8, nvfp4) keeps each weight's quantised copies from the
    first micro-batch of a step to the last instead of casting it again: Transformer Engine's
    `is_first_microbatch` ("during FP8 training, it allows caching of the FP8 versions of the
    weights"; TE PyTorch API, `Linear.forward`), which Megatron-Core sets per step. Two copies
    per weight (the value and its transpose for Hopper's per-tensor fp8, the row- and
    column-wise blocks for MXFP8/NVFP4; `Precision.quant_bytes` each), ZeRO-0..2 only
    (`costmodel.memory.stack_extra_bytes`). torchao's Float8Linear (torchtitan) casts the
    weight in every forward and keeps none."""
    fused_cross_entropy: bool = True
    """The loss computed in place in the fp32 logits buffer: Megatron-Core's vocab-parallel
    cross-entropy overwrites the logits with their softmax and that with its gradient
    (megatron/core/tensor_parallel/cross_entropy.py), one logits-sized tensor. False: torch's
    `F.cross_entropy` (log_softmax + nll_loss) saves the fp32 log-softmax and its backward
    holds that, its gradient and the logits' gradient at once, three (measured on the
    validation GPT: its step peaks in `aten::_log_softmax_backward_data`; docs/accuracy.md,
    "Memory")."""
    persistent_grads: bool = True
    """Gradients live in a buffer allocated once for the run (Megatron-Core's contiguous
    gradient buffer, DeepSpeed's flat gradient partitions). False: torch's
    `optimizer.zero_grad(set_to_none=True)` (its default since torch 2.0, torch.optim docs)
    frees them after every step and the backward allocates them again, so with one
    micro-batch and no pipeline the step's peak holds the larger of the activations and the
    gradients, not both (`costmodel.memory.gradients_at_peak`)."""
    zero3_copies: bool = False
    """torch FSDP2 (`fully_shard`) copies each unit's local shard into the all-gather buffer and
    the gathered buffer out into the parameters, and the gradients into the reduce-scatter
    buffer (torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py: `all_gather_copy_in`,
    `foreach_all_gather_copy_out`, `foreach_reduce_scatter_copy_in`); flat-parameter FSDP1
    (MosaicML's stack) gathers into views and pays none of these."""
    zero3_root_kept: bool = False
    """ZeRO-3's root unit (the embedding and the output head, outside the wrapped layers) stays
    gathered from its forward to its backward, so each micro-batch gathers it once, not
    twice: torch FSDP2's `fully_shard(model)` default `reshard_after_forward=None` is False
    for the root module ("the root module is typically required immediately when the backward
    pass begins", torch.distributed.fsdp.fully_shard docs; `FSDPState._lazy_init` sets it).
    Off: every unit is re-gathered for its backward (DeepSpeed ZeRO-3, FSDP1 FULL_SHARD)."""
    host_overheads: bool = False
    """Price the framework's fixed host time from the profile's measured figures
    (`hwprofiles.host.HostProfile`: `optimizer_tensor_s`, `dtensor_optimizer_tensor_s`,
    `fsdp_unit_s`, `fsdp_tensor_s`): torch's AdamW per parameter tensor (as DTensors under
    ZeRO-3, torch FSDP2) and FSDP2's hooks per unit and per tensor of a unit, every micro-batch
    (`costmodel.framework.host_times`). Off by default: on an accelerator the host dispatches
    ahead of the kernels it launches, and this time hides behind them; on a CPU every call
    runs on the thread that makes it."""
    comm_interference: float = 0.18
    """Fraction of compute throughput lost while an overlapped collective runs (a modelled
    estimate): NCCL kernels hold SMs and share HBM bandwidth. The measured figure behind it is
    an SM count, not a slowdown: an all-gather launched 24 thread blocks on a 132-SM H100
    (NVIDIA developer forum thread 337991, "Compute-communication overlap causes severe GEMM
    performance degradation", 2025), 24/132 = 0.18, taken as the share of compute lost and
    applied to every profile. Hidden communication of duration T costs the compute stream
    `comm_interference * T`."""
    optimizer_bytes_per_param: float = 34.0
    """AdamW step memory traffic per local parameter (bytes), for a fused kernel (Megatron's
    Apex/Transformer Engine Adam): read fp32 master, grad, m, v (16), write master, m, v (12),
    write the 16-bit copy (2), gradient-norm read (4). It streams in place over buffers that
    live for the whole run, priced at the profile's copy rate (`timing.copy_time`)."""

    moe_capacity_factor: float | None = None
    """Mixture-of-experts routing with fixed capacity buffers of `capacity_factor` x the
    average tokens per expert (GShard, Lepikhin et al. 2020; Megatron-Core
    `--moe-expert-capacity-factor` with `--moe-pad-expert-input-to-capacity`): every expert
    computes and sends that many rows. None = dropless routing (Megatron-Core's default,
    MegaBlocks), where the busiest rank carries `moe_imbalance` x the average."""
    moe_imbalance: float = DEFAULT_IMBALANCE
    """Dropless routing: the hottest expert-parallel rank's tokens over the mean (>= 1); its
    default and source are `costmodel.moe.DEFAULT_IMBALANCE`."""
    moe_a2a_overlap: bool = False
    """Overlap the dispatch all-to-all with the shared experts' forward, and the dispatch's
    gradient all-to-all with their backward (Megatron-Core `--moe-shared-expert-overlap`).
    DeepSeek-V3's DualPipe hides more (the all-to-all of one micro-batch behind the compute of
    another: DeepSeek-AI 2024, arXiv 2412.19437, Sec. 3.2.1); llmcap models the shared-expert
    overlap only, a lower bound on what DualPipe hides."""
    moe_a2a_overlap_1f1b: bool = False
    """Overlap every all-to-all with another micro-batch's compute (Megatron-Core
    `--overlap-moe-expert-parallel-comm`, 1F1B all-to-all overlap; DeepSeek-V3's DualPipe):
    priced beside the same layer's expert GEMM of the same pass
    (`simulator.plan.layer.a2a_window`)."""
    moe_ep_on_scale_up: bool = False
    """Require each expert-parallel group (ep x etp consecutive ranks) inside one scale-up
    (NVLink) domain: 8 GPUs in an HGX/DGX node, 72 in an NVL72 rack. Off: an EP group may
    span domains, its all-to-all crossing the NICs."""

    def __post_init__(self) -> None:
        from hwprofiles.attention_kernels import KERNELS

        for f, annotation in field_types(Options).items():  # dropout = 2 is not a switch
            check(getattr(self, f), annotation, f"options.{f}")
        if self.attention not in ("flash", "naive"):
            raise UserError("attention", self.attention, "must be 'flash' or 'naive'")
        if self.attention_kernel not in KERNELS:
            raise UserError(
                "attention_kernel", self.attention_kernel, f"must be one of {', '.join(KERNELS)}"
            )
        cf = self.moe_capacity_factor
        if cf is not None and not (np.isfinite(cf) and cf > 0):
            raise UserError("moe_capacity_factor", cf, "must be > 0 (or absent: dropless)")
        if not (np.isfinite(self.moe_imbalance) and self.moe_imbalance >= 1):
            raise UserError("moe_imbalance", self.moe_imbalance, "must be >= 1 (max / mean load)")
        pf = self.zero3_prefetch_params
        if pf is not None and not (np.isfinite(pf) and pf >= 1):
            raise UserError("zero3_prefetch_params", pf, "must be >= 1 parameter (or absent)")

    def bucket_size(self, dp: Any, grad_bytes: float | None = None) -> Any:
        """Bytes per gradient bucket for a data-parallel group of `dp` ranks.

        Megatron-Core's default: max(40 M, 1 M x dp) parameters per bucket, "larger DP sizes
        need larger buckets to ensure collectives do not become latency-bound"
        (megatron/core/distributed/distributed_data_parallel_config.py, `bucket_size`).
        """
        g = self.grad_reduce_bytes if grad_bytes is None else grad_bytes
        if self.bucket_bytes is not None:
            return (
                np.full(np.shape(dp), float(self.bucket_bytes))
                if np.ndim(dp)
                else float(self.bucket_bytes)
            )
        out = np.maximum(40e6, 1e6 * np.asarray(dp, dtype=float)) * g
        return float(out) if np.ndim(out) == 0 else out
