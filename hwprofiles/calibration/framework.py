"""Host time of the training framework itself: torch's AdamW per parameter tensor, plain and
as FSDP2's DTensor, and FSDP2's hooks per sharded unit.

On a CPU every operator runs on the thread that dispatches it, so eager PyTorch's per-call
cost adds to the step, and FSDP2 adds more: each optimizer operation on a DTensor parameter
goes through DTensor's Python dispatch (sharding propagation, then the local op), and each
`fully_shard` unit runs pre/post forward and backward hooks (all-gather and reduce-scatter
bookkeeping, DTensor <-> local views). Both are fixed costs per tensor or per unit, so they
are measured with tensors and units too small for their arithmetic or bytes to count:

    optimizer: AdamW.step over `TENSORS` parameters of `ELEMENTS` fp32 elements each, as
               plain tensors and as DTensors sharded over a 1-rank mesh; seconds per tensor.
    fsdp_unit: forward + backward of `UNITS` `fully_shard` units of 1, 2 and 4
               Linear(`WIDTH`, `WIDTH`) layers under a `fully_shard` root (as a training
               script wraps a model), minus the same model without FSDP: a fixed time per
               unit (the root counted as one) and a time per parameter tensor of a unit
               (FSDP2 gathers, views and reduces every tensor of a unit on its own), the
               least-squares line through the three sizes.
    ddp_unit:  the same models wrapped whole in torch DDP instead, minus unwrapped: DDP's
               autograd hook per parameter tensor (it marks the gradient ready and copies it
               into its bucket) and a fixed time per step (its forward pre-hook, the
               bucket's all-reduce launch and wait, the reducer's finalisation): the
               least-squares line through the three sizes (16, 32, 64 tensors).
    layer:     forward + backward of a pre-LayerNorm GPT block (LayerNorm, QKV Linear, causal
               SDPA, projection, residual add, LayerNorm, MLP up, GELU, down, residual add) of
               hidden `LAYER_HIDDEN`, `LAYER_TOKENS` tokens, minus the same block without its
               norms, adds and activation (its Linears and SDPA alone): the host time of a
               layer's non-GEMM operators, views and their autograd nodes, which the byte
               rates (measured at sizes where a call's dispatch does not count) leave out;
               seconds per layer. A GEMM's and SDPA's own dispatch stays with their timings.

A 1-rank gloo group in this process (a `HashStore`, no port) hosts the mesh; its collectives
are local copies, so a unit's figure holds its hooks and the calls' own dispatch; the
collectives' transfer time at more ranks stays with the collective fits, whose latency also
holds a call's dispatch (a double count of about 40 µs per 1-rank gloo call as measured by
`llmcap calibrate`, 14 calls per step of the validation GPT: under 1 ms).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from hwprofiles.calibration.timing import Repeats, time_op

FRAMEWORK_COLUMNS = (
    "bench", "variant", "items", "median_s", "min_s", "max_s", "noisy", "seconds_per_item",
)  # fmt: skip
TENSORS = 32  # parameters per optimizer step (the validation GPT's `small` model has 52)
ELEMENTS = 64  # fp32 elements per parameter: 256 B, far below any bandwidth term
UNITS = 8  # fully_shard units per model (the validation GPT has 5: 4 blocks + the root)
WIDTH = 16  # Linear(16, 16): 272 parameters, 2 tensors
LINEARS_PER_UNIT = (1, 2, 4)  # units of 2, 4 and 8 parameter tensors (a GPT block has 12)
TOKENS = 8  # rows of the unit's input
LAYER_HIDDEN, LAYER_HEADS, LAYER_TOKENS = 8, 2, 4  # a block whose bytes and FLOPs are nil


@contextmanager
def one_rank_group() -> Iterator[None]:
    """A 1-rank gloo process group in this process for the duration (none left behind)."""
    import torch.distributed as dist

    if dist.is_initialized():  # a caller's group: use it, do not tear it down
        yield
        return
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _optimizer_step(dtensor: bool) -> Callable[[], None]:
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    gen = torch.Generator().manual_seed(0)
    params = []
    mesh = init_device_mesh("cpu", (1,)) if dtensor else None
    for _ in range(TENSORS):
        t = torch.randn(ELEMENTS, generator=gen)
        p = torch.nn.Parameter(distribute_tensor(t, mesh, [Shard(0)]) if mesh else t)
        p.grad = torch.zeros_like(p)
        params.append(p)
    # torch's default on a CPU: the per-tensor path, as the validation runs use
    opt = torch.optim.AdamW(params, lr=1e-4)
    return opt.step


def _unit_step(fsdp: bool, linears: int, ddp: bool = False) -> Callable[[], None]:
    import torch

    torch.manual_seed(0)
    units = [
        torch.nn.Sequential(*(torch.nn.Linear(WIDTH, WIDTH) for _ in range(linears)))
        for _ in range(UNITS)
    ]
    model = torch.nn.Sequential(*units)
    if fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (1,))
        for unit in units:
            fully_shard(unit, mesh=mesh)
        fully_shard(model, mesh=mesh)  # the root, as a training script wraps it
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model)
    x = torch.randn(TOKENS, WIDTH)

    def step() -> None:
        model(x).sum().backward()

    return step


def _layer_step(full: bool) -> Callable[[], None]:
    import torch
    import torch.nn.functional as F

    h, nh, t = LAYER_HIDDEN, LAYER_HEADS, LAYER_TOKENS
    torch.manual_seed(0)
    ln1, ln2 = torch.nn.LayerNorm(h), torch.nn.LayerNorm(h)
    qkv, proj = torch.nn.Linear(h, 3 * h), torch.nn.Linear(h, h)
    up, down = torch.nn.Linear(h, 4 * h), torch.nn.Linear(4 * h, h)
    x = torch.randn(1, t, h, requires_grad=True)

    def block() -> Any:
        y = ln1(x) if full else x
        heads = (z.view(1, t, nh, h // nh).transpose(1, 2) for z in qkv(y).split(h, dim=2))
        att = F.scaled_dot_product_attention(*heads, is_causal=True)
        a = att.transpose(1, 2).reshape(1, t, h)
        if not full:
            return down(up(proj(a)))
        z = x + proj(a)
        return z + down(F.gelu(up(ln2(z))))

    def step() -> None:
        block().sum().backward()

    return step


def run_framework(repeats: Repeats, tick: Callable[[str], None]) -> list[dict[str, Any]]:
    """Rows of `FRAMEWORK_COLUMNS`: seconds per call of each variant and per item (tensor
    or unit). CPU only: on an accelerator the host runs ahead of the kernels it launches."""
    import torch

    rows = []
    with one_rank_group(), torch.no_grad():
        for variant, dt in (("plain", False), ("dtensor", True)):
            timing = time_op(_optimizer_step(dt), repeats, lambda: None)
            rows.append(_row("optimizer", variant, TENSORS, timing))
    tick("framework optimizer")
    with one_rank_group():
        for linears in LINEARS_PER_UNIT:
            for variant, fsdp in (("plain", False), ("fsdp", True)):
                timing = time_op(_unit_step(fsdp, linears), repeats, lambda: None)
                # UNITS units of 2 * linears tensors, and the root of none
                row = _row(f"fsdp_unit_{2 * linears}t", variant, UNITS + 1, timing)
                rows.append(row)
    tick("framework fsdp_unit")
    with one_rank_group():
        for linears in LINEARS_PER_UNIT:
            timing = time_op(_unit_step(False, linears, ddp=True), repeats, lambda: None)
            rows.append(_row(f"ddp_unit_{2 * linears}t", "ddp", UNITS * 2 * linears, timing))
            timing = time_op(_unit_step(False, linears), repeats, lambda: None)
            rows.append(_row(f"ddp_unit_{2 * linears}t", "plain", UNITS * 2 * linears, timing))
    tick("framework ddp_unit")
    for variant, full in (("full", True), ("matmuls", False)):
        rows.append(_row("layer", variant, 1, time_op(_layer_step(full), repeats, lambda: None)))
    tick("framework layer")
    return rows


def _row(bench: str, variant: str, items: int, timing: Any) -> dict[str, Any]:
    return {
        "bench": bench,
        "variant": variant,
        "items": items,
        **timing.as_row(),
        "seconds_per_item": timing.median_s / items,
    }


def host_overheads(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per-item host seconds from the rows: the plain optimizer's per tensor, DTensor's per
    tensor, FSDP2's per unit and per parameter tensor of a unit (the least-squares line
    through the unit sizes' extra time over the same layers unwrapped; never below 0), and
    DDP's per parameter tensor and per step (the same kind of line; never below 0), and a
    layer's non-GEMM host time (>= 0)."""
    per = {(r["bench"], r["variant"]): float(r["seconds_per_item"]) for r in rows}
    out: dict[str, float] = {}
    if ("optimizer", "plain") in per:
        out["optimizer_tensor_s"] = per[("optimizer", "plain")]
    if ("optimizer", "dtensor") in per:
        out["dtensor_optimizer_tensor_s"] = per[("optimizer", "dtensor")]
    points = []  # (tensors per unit, extra seconds per unit)
    for linears in LINEARS_PER_UNIT:
        bench = f"fsdp_unit_{2 * linears}t"
        if (bench, "fsdp") in per and (bench, "plain") in per:
            points.append((2 * linears, per[(bench, "fsdp")] - per[(bench, "plain")]))
    if len(points) >= 2:
        tensors, extra = zip(*points, strict=True)
        slope, intercept = np.polyfit(tensors, extra, 1)
        slope = max(0.0, float(slope))
        if slope == 0.0:  # noise tilted the line down: the mean is the per-unit figure
            intercept = float(np.mean(extra))
        out["fsdp_tensor_s"] = slope
        out["fsdp_unit_s"] = max(0.0, float(intercept))
    rows_by = {(r["bench"], r["variant"]): r for r in rows}
    ddp = [  # (tensors, extra seconds per step)
        (int(rows_by[(b, "ddp")]["items"]),
         float(rows_by[(b, "ddp")]["median_s"]) - float(rows_by[(b, "plain")]["median_s"]))
        for b in (f"ddp_unit_{2 * n}t" for n in LINEARS_PER_UNIT)
        if (b, "ddp") in rows_by and (b, "plain") in rows_by
    ]  # fmt: skip
    if len(ddp) >= 2:
        tensors, extra = zip(*ddp, strict=True)
        slope, intercept = np.polyfit(tensors, extra, 1)
        slope = max(0.0, float(slope))
        if slope == 0.0:
            intercept = float(np.mean(extra))
        out["ddp_tensor_s"] = slope
        out["ddp_step_s"] = max(0.0, float(intercept))
    if ("layer", "full") in per and ("layer", "matmuls") in per:
        out["layer_host_s"] = max(0.0, per[("layer", "full")] - per[("layer", "matmuls")])
    return out
