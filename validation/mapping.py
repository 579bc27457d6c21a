"""How a validation run is described to llmcap's models: GPT sizes -> `Workload`, and the
machine's profile -> the profile of the run (ranks per node, a rate-limited link).

One place for the mapping, so that the prediction is for exactly the setup that ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hwprofiles.errors import UserError
from hwprofiles.profile import CollectiveFit, HardwareProfile, Link
from simulator.model import ModelSpec
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload
from validation.gptconfig import GPTConfig

STRATEGY_ZERO_STAGE = {"ddp": 0, "fsdp": 3}
"""DDP replicates everything (ZeRO-0); FSDP full-shard shards weights, gradients and optimizer
states (the ZeRO-3 analogue, Zhao et al. 2023, "PyTorch FSDP", Sec. 3)."""

TCP_PAYLOAD_PER_FRAME = 1448 / 1514
"""Share of a rate-limited veth's bytes that are payload for bulk TCP with MTU 1500: 1500 -
20 (IPv4) - 20 (TCP) - 12 (timestamp option) = 1448 payload bytes per 1514-byte frame (with
the 14-byte Ethernet header, which `tc tbf` on a veth counts; RFC 791, RFC 793, RFC 7323)."""


TORCH_ADAMW_BYTES_PER_PARAM = 80.0
"""Memory traffic per fp32 parameter of `torch.optim.AdamW`, read + written, on a CPU's
per-tensor path (`_single_tensor_adam` in torch/optim/adam.py; on accelerators the default
foreach path runs the same element-wise operations in grouped kernels): param.mul_ (8),
exp_avg.lerp_ (12), exp_avg_sq.mul_ (8) and addcmul_ (12), sqrt (8) and the division (8)
into new tensors, add_ (8), param.addcdiv_ (16). Measured on this VM, 2026-11-29 (torch.profiler,
1-rank DDP): 22 ms per step for the 5.3 M parameters of the `small` model; modelled, 80 B x 5.3 M
at the copy rate calibrated 20 minutes earlier (19.6 GB/s) is 22 ms, at the rate of the
calibration in docs/validation/cpu (16.8 GB/s) 25 ms."""

TORCH_DDP_BUCKET_BYTES = 25 * 2**20
"""torch DDP's gradient bucket (`DistributedDataParallel(bucket_cap_mb=25)`, the default)."""


def stack_options(device: str = "cpu", comm_interference: float | None = None) -> Options:
    """How the validation runs train, in the engines' terms: torch DDP's 25 MiB gradient
    buckets (not Megatron-Core's bucket rule) with their gradient copies, FSDP2's copy-in and
    copy-out buffers, torch.autocast's casts (fp32 weights cast per GEMM), torch's AdamW,
    `F.cross_entropy` (unfused) and `zero_grad(set_to_none=True)` (gradients freed per step);
    everything else at the engines' defaults.

    On a CPU device the framework's host time shows in the step (every call runs on the
    thread that makes it): torch's AdamW per parameter tensor, DTensor's dispatch under FSDP2,
    FSDP2's hooks per unit, at the calibrated profile's measured figures. And FSDP2 overlaps
    nothing there: its streams are no-ops there, each unit's
    all-gather is issued when the unit runs and waited for, and the reduce-scatter is a
    blocking call (torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py,
    `foreach_reduce`: `reduce_scatter_comm(...)` without `async_op`). The root module
    (`fully_shard(model)`: embedding, final norm, tied head) keeps its parameters gathered
    from its forward to its backward (`Options.zero3_root_kept`), so per micro-batch FSDP2
    issues 1 + 2 x layers all-gathers and 1 + layers reduce-scatters.
    """
    extra = {} if comm_interference is None else {"comm_interference": comm_interference}
    return Options(
        **extra,
        bucket_bytes=TORCH_DDP_BUCKET_BYTES,
        amp_casts=True,
        grad_bucket_copies=True,
        zero3_copies=True,
        zero3_root_kept=True,  # fully_shard(model): the root is not resharded after forward
        fused_cross_entropy=False,
        persistent_grads=False,
        overlap_tp_comm_backward=False,  # torch TP collectives are synchronous
        overlap_param_gather=device != "cpu",
        optimizer_bytes_per_param=TORCH_ADAMW_BYTES_PER_PARAM,
        host_overheads=device == "cpu",
    )


def cpu_comm_interference(
    profile: HardwareProfile, nproc: int, link_bytes_per_s: float | None
) -> float:
    """Share of a CPU rank's compute lost while one of its collectives runs beside it.

    gloo moves a collective's bytes with the host's own cores (TCP copies through the kernel,
    the reduction in a gloo thread). When the ranks occupy every core
    (`nproc * threads >= cores`, the profile's ranks per node), those cycles come out of the
    ranks' compute: a collective moving bytes at rate r takes r / r_cpu of a core, r_cpu being
    the rate at which the host moves them when nothing else limits it, i.e. the calibrated
    loopback all-reduce (the profile's scale-up bandwidth). Over loopback that is 1 (no
    overlap gains anything); behind a `tc tbf` link of rate r_link, r_link / r_cpu. With a
    spare core, 0. The cores are counted as the profile's ranks per node, i.e. at the
    calibration's threads per rank (`llmcap validate` runs at the same, 1 by default).
    Replaces the SM-share estimate `Options.comm_interference` holds for GPUs.
    """
    if nproc < 2 or nproc < profile.node.gpus_per_node:
        return 0.0
    cpu_rate = profile.node.scale_up.bandwidth_bytes_per_s
    if link_bytes_per_s is None or cpu_rate <= 0:
        return 1.0
    return min(1.0, link_bytes_per_s * TCP_PAYLOAD_PER_FRAME / cpu_rate)


def model_spec(cfg: GPTConfig) -> ModelSpec:
    """The `ModelSpec` of the validation GPT (see `validation.gpt` for the architecture)."""
    return ModelSpec(
        name=cfg.name,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        vocab_size=cfg.vocab_size,
        intermediate_size=cfg.ffn_size,
        gated_mlp=False,
        hidden_act="gelu",
        max_position_embeddings=cfg.seq_len,
        position_embedding="learned",
        tie_word_embeddings=True,
        norm="layernorm",
        bias=True,
        fused_qkv=True,
        source="validation.gpt (llmcap's own validation model)",
    )


def workload(cfg: GPTConfig, nproc: int, strategy: str, precision: str) -> Workload:
    """One training step of the run: data parallel over `nproc` ranks, one micro-batch each.

    Weak scaling: every rank trains `cfg.micro_batch_size` sequences per step, so the global
    batch grows with `nproc`.
    """
    if strategy not in STRATEGY_ZERO_STAGE:
        raise UserError(f"strategy: {strategy!r} must be one of {sorted(STRATEGY_ZERO_STAGE)}")
    par = ParallelConfig(
        dp=nproc,
        zero_stage=STRATEGY_ZERO_STAGE[strategy],
        micro_batch_size=cfg.micro_batch_size,
        global_batch_size=cfg.micro_batch_size * nproc,
        precision=precision,  # type: ignore[arg-type]
        recompute="none",
    ).resolve(nproc)
    return Workload(model_spec(cfg), par, seq_len=cfg.seq_len)


def hardware_for_run(
    profile: HardwareProfile,
    nproc: int,
    link_bytes_per_s: float | None,
    link_fits: Sequence[CollectiveFit] = (),
) -> HardwareProfile:
    """The profile of the run's machine as the models should see it.

    Without a link all ranks share one node (its calibrated scale-up path and collective
    fits). With a rate-limited link every rank is a node of one rank whose only path to the
    others is a `tc tbf` port of `link_bytes_per_s` per direction; the calibrated per-message
    latency is kept, and collective fits measured without the limit are dropped. With
    `link_fits` (collectives measured through that link, `linkcal`) the ranks share one
    "node" whose scale-up path is the link, so that the engines price those collectives by
    the fits (measured fits apply inside a node) and the rest by the link.
    """
    if link_bytes_per_s is None:
        if profile.node.gpus_per_node < nproc:
            return profile.with_gpus_per_node(nproc)
        return profile
    if link_bytes_per_s <= 0:
        raise UserError(f"link-bandwidth: {link_bytes_per_s} B/s must be > 0")
    link = Link(
        name=f"veth+tbf {link_bytes_per_s * 8 / 1e6:g} Mbit/s",
        bandwidth_bytes_per_s=link_bytes_per_s,
        latency_s=profile.node.scale_up.latency_s,
        efficiency=TCP_PAYLOAD_PER_FRAME,
        source="llmcap validate --link-bandwidth (tc tbf rate, per direction per port)",
    )
    fits = tuple(f for f in link_fits if f.world_size == nproc)
    per_node = nproc if fits else 1
    node = replace(
        profile.node, gpus_per_node=per_node, scale_up=link, scale_out=link, nics_per_node=1
    )
    return replace(profile, node=node, collectives=fits)
