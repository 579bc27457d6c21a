"""One transformer layer's plan: kernel order, its collectives and their message sizes.

The order of a layer's kernels and tensor-parallel collectives follows Megatron-LM:
forward ``norm, qkv, attention, proj, [AR], residual, norm, up, act, down, [AR], residual``;
the backward mirrors it, with the all-reduces of the `f` operators after the qkv and up
gradients. With sequence parallelism each all-reduce becomes an all-gather before the column-
parallel GEMM and a reduce-scatter after the row-parallel one (Korthikanti et al. 2022,
"Reducing Activation Recomputation in Large Transformer Models", Sec. 4.2.2).

Each collective names the GEMM it runs beside when `Options.overlap_tp_comm` is on
(Transformer Engine's userbuffer overlap): an all-gather overlaps the column-parallel GEMM
that consumes it, a reduce-scatter or all-reduce the GEMM that produced its input. The
context-parallel K/V exchange always runs beside the attention kernel (ring attention). Both
engines read these tables: adding a collective here adds it to both.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from simulator.costmodel.ops import Num
from simulator.model import ModelSpec

FWD_ORDER = (
    "attention/norm",
    "attention/qkv",
    "attention/core",
    "attention/softmax",
    "attention/proj",
    "attention/residual",
    "mlp/norm",
    "moe/router",
    "moe/permute",
    "moe/shared",
    "moe/experts_up",
    "moe/act",
    "moe/experts_down",
    "mlp/up",
    "mlp/act",
    "mlp/down",
    "mlp/residual",
)
"""Megatron-LM's forward order of a layer's kernels; a mixture-of-experts layer's MoE block
(`costmodel.moe`) after the MLP norm, and a model with dense and MoE layers (costed as one
average layer) runs both blocks."""
GEMMS = (
    "attention/qkv", "attention/proj", "mlp/up", "mlp/down", "moe/shared", "moe/experts_up",
    "moe/experts_down",
)  # fmt: skip
"""The layer's weight GEMMs: the kernels a TP collective may overlap."""
ATTENTION_KERNEL = "attention/core"
"""The kernel the context-parallel K/V exchange overlaps."""


@dataclass(frozen=True, slots=True)
class LayerCollective:
    """A collective of one layer pass, placed after kernel `after`."""

    dim: str
    """Parallel dimension of its group: "tp" or "cp"."""
    kind: str
    """"all_reduce", "all_gather" or "reduce_scatter"."""
    after: str
    """The kernel it follows in the pass's order (it starts when that kernel ends)."""
    partner: str
    """The kernel it runs beside when overlapped (its hiding window)."""
    stream: str
    """The device stream it runs on when overlapped ("tp" or "cp")."""
    category: str
    """Its breakdown category ("comm_tp" or "comm_cp")."""


# TP collectives with sequence parallelism: kernel it follows -> kind; partner GEMM
_SP_FWD = {
    "attention/norm": ("all_gather", "attention/qkv"),
    "attention/proj": ("reduce_scatter", "attention/proj"),
    "mlp/norm": ("all_gather", "mlp/up"),
    "mlp/down": ("reduce_scatter", "mlp/down"),
}
_SP_BWD = {
    "mlp/residual": ("all_gather", "mlp/down"),
    "mlp/up": ("reduce_scatter", "mlp/up"),
    "attention/residual": ("all_gather", "attention/proj"),
    "attention/qkv": ("reduce_scatter", "attention/qkv"),
}
# without sequence parallelism: the `g` all-reduces forward, the `f` all-reduces backward
_AR_FWD = {n: ("all_reduce", n) for n in ("attention/proj", "mlp/down")}
_AR_BWD = {n: ("all_reduce", n) for n in ("attention/qkv", "mlp/up")}


def kernel_order(names: list[str]) -> list[str]:
    """Forward order of a layer's kernels: Megatron's for the known ones; any other kernel of
    the cost model (e.g. fp8 casts) runs after the last GEMM of its block."""
    order = [n for n in FWD_ORDER if n in names]
    for n in names:
        if n not in order:
            anchor = "attention/proj" if n.startswith("attention/") else "mlp/down"
            order.insert(order.index(anchor) + 1 if anchor in order else len(order), n)
    return order


def mlp_names(order: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Which kernel stands for "mlp/up" and "mlp/down" in a layer without a dense MLP (a model
    whose every layer is MoE): the first GEMM of the MoE block and its last, around which the
    block's TP collectives sit. Empty when the dense MLP is there."""
    if "mlp/down" in order or "moe/experts_down" not in order:
        return {}
    return {"mlp/up": "moe/router", "mlp/down": "moe/experts_down"}


def tp_collectives(
    backward: bool, sequence_parallel: bool, names: dict[str, str] | None = None
) -> dict[str, LayerCollective]:
    """The TP collectives of one layer pass, keyed by the kernel each follows (`names` maps
    the dense MLP's kernel names to the ones the layer has, `mlp_names`)."""
    if sequence_parallel:
        table = _SP_BWD if backward else _SP_FWD
    else:
        table = _AR_BWD if backward else _AR_FWD
    n = names or {}
    return {
        n.get(after, after): LayerCollective(
            "tp", kind, n.get(after, after), n.get(partner, partner), "tp", "comm_tp"
        )
        for after, (kind, partner) in table.items()
    }


@dataclass(frozen=True, slots=True)
class ExpertAllToAll:
    """One expert-parallel all-to-all of a MoE layer pass (`costmodel.moe`): blocking the
    compute stream just `where` ("before" / "after") kernel `at`, or, with
    `Options.moe_a2a_overlap` and a `partner`, beside that kernel instead."""

    name: str
    """"dispatch" or "combine" (backward: their gradients)."""
    at: str
    where: str
    partner: str | None
    """The shared experts' kernel (Megatron-Core `--moe-shared-expert-overlap`), or None."""
    across: str = ""
    """The experts' GEMM that stands for the other micro-batch's compute when all-to-alls
    overlap across micro-batches (`Options.moe_a2a_overlap_1f1b`)."""
    category: str = "comm_ep"


def a2a_window(
    a: ExpertAllToAll, kernels: Collection[str], shared: bool, across: bool
) -> str | None:
    """The kernel an all-to-all runs beside, or None (blocking), for both engines.

    `across` (Megatron-Core `--overlap-moe-expert-parallel-comm`, 1F1B all-to-all overlap;
    DeepSeek-V3's DualPipe, arXiv 2412.19437 Sec. 3.2.1): in steady 1F1B one micro-batch's
    all-to-all runs while another micro-batch computes; llmcap prices that window as the
    same layer's expert GEMM of the same pass (dispatch: `moe/experts_up`, combine:
    `moe/experts_down`), and applies it in pipeline fill and drain too (optimistic there).
    Else `shared` (`moe_a2a_overlap`): the dispatch beside the shared experts."""
    if across and a.across in kernels:
        return a.across
    if shared and a.partner is not None and a.partner in kernels:
        return a.partner
    return None


def ep_all_to_alls(backward: bool) -> tuple[ExpertAllToAll, ExpertAllToAll]:
    """Forward: dispatch before the experts' first GEMM (beside the shared experts when
    overlapped, which run before it), combine after their last. Backward: the combine's
    gradient before the experts' backward, the dispatch's after it (beside the shared
    experts' backward, which run next)."""
    if backward:
        return (
            ExpertAllToAll("combine", "moe/experts_down", "before", None, "moe/experts_down"),
            ExpertAllToAll("dispatch", "moe/experts_up", "after", "moe/shared", "moe/experts_up"),
        )
    return (
        ExpertAllToAll("dispatch", "moe/experts_up", "before", "moe/shared", "moe/experts_up"),
        ExpertAllToAll("combine", "moe/experts_down", "after", None, "moe/experts_down"),
    )


def cp_collective(backward: bool) -> LayerCollective:
    """The context-parallel K/V exchange of one layer pass: all-gather of K and V forward,
    reduce-scatter of their gradients backward, beside the attention kernel."""
    kind = "reduce_scatter" if backward else "all_gather"
    return LayerCollective("cp", kind, ATTENTION_KERNEL, ATTENTION_KERNEL, "cp", "comm_cp")


@dataclass(frozen=True)
class Messages:
    """Bytes of each message of a step, per micro-batch (arrays over layouts, or floats)."""

    tp: Num
    """One TP collective's buffer: the layer's activations, b * s / cp * h * bytes."""
    cp: Num
    """One CP exchange: K and V of the local sequence, b * s * 2 * kv_size * bytes / tp's
    share of the KV heads."""
    p2p: Num
    """One pipeline send: the activations scattered over TP (Megatron's scatter/gather)."""


def messages(model: ModelSpec, b: Num, s: Num, tp: Num, cp: Num, act_bytes: Num) -> Messages:
    """The step's message sizes (bytes) for micro-batch `b`, sequence `s`."""
    act = b * s / cp * model.hidden_size * act_bytes
    kv = b * s * 2 * model.kv_size * act_bytes / np.minimum(tp, model.kv_heads)
    return Messages(tp=act, cp=kv, p2p=act / tp)


def layer_passes(
    sequence_parallel: bool, names: dict[str, str] | None = None
) -> list[tuple[bool, LayerCollective]]:
    """(backward?, collective) for every TP and CP collective of one layer's forward and
    backward, in pass order (full recompute repeats the forward's)."""
    out: list[tuple[bool, LayerCollective]] = []
    for backward in (False, True):
        tpc = tp_collectives(backward, sequence_parallel, names)
        out += [(backward, c) for c in tpc.values()]
        out.append((backward, cp_collective(backward)))
    return out
