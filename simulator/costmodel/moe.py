"""Mixture-of-experts layer: router, token permutation, grouped expert GEMMs, shared experts,
and the all-to-all that carries routed tokens between expert-parallel ranks.

Scenario (Megatron-Core's all-to-all token dispatcher; Gale et al. 2023, "MegaBlocks", for
dropless grouped GEMMs): each device routes its tokens to the top-k of `n_routed_experts`
experts, permutes them into expert order, sends each copy to the expert-parallel (EP) rank
that holds its expert (dispatch all-to-all), runs its `E / ep` local experts as one grouped
GEMM, sends the outputs back (combine all-to-all) and un-permutes them with the router
weights. Shared experts see every token (a dense MLP split over tp). The backward pass mirrors
it: two more all-to-alls per MoE layer, and two more again when full recompute re-runs the
forward.

Per device, with ``t`` tokens (micro-batch x sequence / cp) and expert tensor parallelism
``etp`` (default 1, Megatron-Core's parallel folding): each device dispatches ``t etp / tp``
tokens (with etp = tp every TP rank sends its own copy of the tokens; with etp = 1 the TP
ranks split them), and its expert
FLOPs are ``t * k * 6 h f_e / tp`` forward, whatever ep and etp: expert parallelism moves the
tokens to the weights, it does not change the work.

Routing: `routed` is the executed routed tokens over the top-k average on the busiest rank:
the capacity factor with fixed-size capacity buffers (GShard, Lepikhin et al. 2020, Sec. 2.2:
tokens beyond capacity are dropped, buffers are padded to it), or with dropless routing the
load-imbalance factor (the hottest EP rank's load over the mean) when ep > 1. Model FLOPs count
the top-k average only (active parameters, the MFU convention of `costmodel.flops`).
"""

from __future__ import annotations

import numpy as np

from simulator.costmodel.ops import Num, Op
from simulator.model import ModelSpec

DEFAULT_IMBALANCE = 1.2
"""Dropless routing: tokens on the hottest expert-parallel rank over the mean (dimensionless).
A modelled estimate, not a measurement: Wang et al. 2024 ("Auxiliary-Loss-Free Load Balancing
Strategy for Mixture-of-Experts", arXiv 2408.15664, Sec. 4) measure balance as MaxVio = max
load / mean load - 1 and show that balanced routers keep it well below 1 but not at 0; llmcap
assumes the hottest rank carries 20% more than the mean in a step. Set
`Options.moe_imbalance` to the max/mean of your own run's router statistics."""


def routed_factor(ep: Num, capacity_factor: float | None, imbalance: float) -> Num:
    """Executed over average routed tokens on the busiest rank: the capacity factor (fixed
    capacity buffers), else the imbalance where ep > 1 (one rank holding every expert sees the
    average: its grouped GEMM runs all of them)."""
    if capacity_factor is not None:
        return np.full(np.shape(ep), float(capacity_factor)) if np.ndim(ep) else capacity_factor
    out = np.where(np.asarray(ep) > 1, imbalance, 1.0)
    return float(out) if np.ndim(out) == 0 else out


def dispatch_tokens(t: Num, tp: Num, etp: Num) -> Num:
    """Tokens one device sends into the dispatch all-to-all: t * etp / tp."""
    return t * etp / tp


def moe_ops(model: ModelSpec, t: Num, tp: Num, ep: Num, etp: Num, routed: Num, e: Num) -> list[Op]:
    """The MoE block's kernels for `t` tokens on one device, each with `count` = the share of
    the model's layers that are MoE layers (`ModelSpec.moe_fraction`).

    Names: "moe/router" (Linear(h, E) on the dispatched tokens), "moe/permute" (gather into
    expert order and back, with the weighted sum of the k outputs), "moe/shared" (shared
    experts, one kernel: up, activation and down), "moe/experts_up", "moe/act",
    "moe/experts_down" (the grouped GEMMs of the local experts, each expert's GEMM at its own
    size on the efficiency curve).
    """
    h, k, n_exp = model.hidden_size, model.num_experts_per_tok, model.n_routed_experts
    f = model.expert_size
    count = model.moe_fraction
    td = dispatch_tokens(t, tp, etp)
    rows = td * k * routed  # token copies this device's experts process (executed)
    rows_model = td * k  # the top-k average (model FLOPs)
    local = n_exp / ep
    per_expert = ep * td * k / n_exp  # tokens one expert sees (balanced)
    n_up = 2 * f / etp  # gate and up projections (SwiGLU), split over etp

    def grouped(name: str, k_: Num, n_: Num) -> Op:
        """Grouped GEMM over the local experts: (rows x k) @ (k x n) per expert."""
        model_flops = 2 * rows_model * k_ * n_
        exec_flops = 2 * rows * k_ * n_
        nbytes = (rows * k_ + local * k_ * n_ + rows * n_) * e
        return Op(name, "matmul", model_flops, exec_flops, 2 * exec_flops, nbytes, 2 * nbytes,
                  count=count, eff_flops=2 * per_expert * k_ * n_)  # fmt: skip

    router = 2 * td * h * n_exp
    router_bytes = (td * h + h * n_exp + td * n_exp) * e
    perm = 4 * rows * h * e  # permute and un-permute, each reads and writes the copies
    ops = [
        Op("moe/router", "matmul", router, router, 2 * router, router_bytes, 2 * router_bytes,
           count=count),
        Op("moe/permute", "memory", 0.0, 0.0, 0.0, perm, perm, count=count),
    ]  # fmt: skip
    if model.shared_size:
        fs = model.shared_size
        sh = 2 * t * h * 3 * fs / tp
        sh_bytes = (2 * t * h + 3 * h * fs / tp + 6 * t * fs / tp) * e
        ops.append(Op("moe/shared", "matmul", sh, sh, 2 * sh, sh_bytes, 2 * sh_bytes,
                      count=count))  # fmt: skip
    act = 3 * rows * f / etp * e  # SwiGLU reads gate and up, writes f
    ops += [
        grouped("moe/experts_up", h, n_up),
        Op("moe/act", "memory", 0.0, 0.0, 0.0, act, 5 / 3 * act, count=count),
        grouped("moe/experts_down", f / etp, h),
    ]
    return ops


def a2a_bytes(model: ModelSpec, t: Num, tp: Num, etp: Num, routed: Num, e: Num) -> Num:
    """Bytes of one device's buffer in one dispatch (or combine) all-to-all, nccl-tests' size
    convention (the whole per-rank buffer; (ep-1)/ep of it leaves the rank): its routed token
    copies, `routed` x top-k average, each `hidden_size` elements of `e` bytes."""
    return dispatch_tokens(t, tp, etp) * model.num_experts_per_tok * routed * model.hidden_size * e


def moe_activation_bytes(
    model: ModelSpec, t: Num, tp: Num, etp: Num, routed: Num, e: Num, sp_split: Num
) -> Num:
    """Activation bytes one MoE block keeps for its backward on one device (no recompute):
    the norm input and router input (h each, split over tp with sequence parallelism), the
    dispatched token copies and the combine buffer (the permutation buffers, h each), the
    experts' activation inputs (2 f / etp) and down-projection input (f / etp), and the shared
    experts' (3 f_s / tp)."""
    h, f = model.hidden_size, model.expert_size
    rows = dispatch_tokens(t, tp, etp) * model.num_experts_per_tok * routed
    shared = 3 * t * model.shared_size / tp
    return (2 * t * h / sp_split + rows * (2 * h + 3 * f / etp) + shared) * e
