"""What a training framework adds to the step: buffer copies around its data-parallel
collectives, and fixed host time per parameter tensor and per sharded unit.

Memory traffic on the compute stream; each copy reads and writes its bytes. Which copies a
stack makes is an `Options` choice (`grad_bucket_copies` for torch DDP, `zero3_copies` for
torch FSDP2). DDP copies into buffers that live for the whole run (its buckets, the
parameters' gradients); FSDP2 frees its gathered parameters and reduce-scatter buffers after
each use and allocates them again (`free_storage` / `alloc_storage` in
torch/distributed/fsdp/_fully_shard), so its copies write fresh memory: on a host without a
caching allocator every fresh page faults on first touch, which `copies_time` prices with the
host's measured fresh-copy rate (`HostProfile.fresh_copy_bytes_per_s`).

Host time (`host_times`, with `Options.host_overheads`) is the dispatch cost of the
framework's calls, measured per tensor and per unit by calibration
(hwprofiles/calibration/framework.py); it is not arithmetic and not bytes, and it shows in
the step only where the host does not run ahead of the device (a CPU).
"""

from __future__ import annotations

import numpy as np

from hwprofiles.host import HostProfile
from hwprofiles.profile import Accelerator
from simulator.costmodel.timing import copy_time
from simulator.model import ModelSpec
from simulator.options import Options

Num = float | np.ndarray


def copy_bytes(
    params: Num,
    dp: Num,
    zero: Num,
    microbatches: Num,
    w_bytes: float,
    g_bytes: float,
    opts: Options,
    precision: str = "",
    kept: Num = 0.0,
) -> tuple[Num, Num]:
    """(bytes into existing buffers, bytes into fresh buffers) read + written per step by
    one device's framework copies.

    `params`: the device's parameters before sharding; `w_bytes`: bytes per gathered weight;
    `g_bytes`: bytes per reduced gradient element.

    - torch DDP (ZeRO-0, `grad_bucket_copies`), once per step, whatever the world size: the
      gradients into their buckets and back (2 copies of ``g * params``).
    - torch FSDP2 (ZeRO-3, `zero3_copies`), per micro-batch: two gathers, each copying the
      local shard in (``w * params / dp``; skipped with one rank) and the gathered buffer out
      into the parameters (``w * params``); one reduce-scatter copying the gradients in
      (``g * params``) and its shard out (``g * params / dp``). `kept`: parameters gathered
      once per micro-batch, not twice (the root unit, `Options.zero3_root_kept`;
      `plan.step.kept_params`).
    """
    dp = np.asarray(dp, dtype=float)
    zero = np.asarray(zero)
    ddp = 2 * g_bytes * params if opts.grad_bucket_copies else 0.0
    shard_in = np.where(dp > 1, w_bytes * params / dp, 0.0)
    z3_mb = 2 * (shard_in + w_bytes * params) + g_bytes * params * (1 + 1 / dp)
    z3_mb = z3_mb - np.where(dp > 1, w_bytes / dp, 0.0) * kept - w_bytes * kept
    z3 = microbatches * z3_mb if opts.zero3_copies else 0.0
    persistent = np.where(zero == 0, 2.0 * ddp, 0.0)  # x2: read + write
    fresh = np.where(zero == 3, 2.0 * z3, 0.0)
    return persistent, fresh


def copies_time(acc: Accelerator, copies: tuple[Num, Num], host: HostProfile | None) -> Num:
    """Seconds per step on `acc` of the copies `copy_bytes` returns (existing, fresh): fresh
    buffers at the host's measured fresh-copy rate where it has one (no caching allocator),
    else at the accelerator's copy rate."""
    persistent, fresh = copies
    rate = None if host is None else host.fresh_copy_bytes_per_s
    t_fresh = copy_time(acc, fresh) if rate is None else np.asarray(fresh, dtype=float) / rate
    return copy_time(acc, persistent) + t_fresh


def host_times(
    host: HostProfile | None,
    model: ModelSpec,
    n_layers: Num,
    zero: Num,
    microbatches: Num,
    opts: Options,
    precision: str = "",
) -> tuple[Num, Num]:
    """(optimizer, hooks): host seconds per step of one device's framework calls beyond their
    arithmetic and bytes, with `opts.host_overheads` (else zeros).

    - optimizer: torch's AdamW loops over the stage's parameter tensors (its `n_layers`
      layers, plus the embedding, final norm and head tensors, counted on every stage: exact
      without pipelining, an over-count of a few tensors on a middle stage; sharded or not,
      every data-parallel rank holds a piece of every tensor), paying the profile's measured
      time per tensor, DTensor's under torch FSDP2 (ZeRO-3 with `zero3_copies`).
    - hooks: torch FSDP2 runs each unit's forward and backward hooks every micro-batch, with
      a fixed time per unit and a time per parameter tensor of the unit; the units are the
      stage's layers plus the root module. Flat-parameter FSDP1 (ZeRO-3 without
      `zero3_copies`) has neither DTensors nor these hooks and pays the plain figure. torch
      DDP (ZeRO-0 with `grad_bucket_copies`) runs a hook per parameter tensor each backward
      (`HostProfile.ddp_tensor_s`) and fixed work per step (`ddp_step_s`), whatever the
      world size. Every stack adds, per micro-batch, its `n_layers` layers' non-GEMM
      operator dispatch (`layer_host_s`); counted under "hooks" (framework host time in the
      forward and backward).
    Where the host measured this whole model's forward + backward as the framework runs it
    (`HostProfile.model_pass_s`: the stage holds every layer, and the strategy and
    `precision` match), that figure replaces the hooks' generic terms; its optimizer step
    (precision field "optimizer") replaces the per-tensor optimizer figure.
    A figure the host has not measured (None), or a profile without a host, prices nothing.
    """
    zero = np.asarray(zero)
    if not opts.host_overheads or host is None:
        return np.zeros(np.shape(zero)), np.zeros(np.shape(zero))
    tensors = n_layers * model.layer_tensors() + (
        model.num_param_tensors() - model.num_hidden_layers * model.layer_tensors()
    )
    plain = host.optimizer_tensor_s or 0.0
    dtensor = host.dtensor_optimizer_tensor_s
    fsdp2 = (zero == 3) & opts.zero3_copies
    per_tensor = np.where(fsdp2, plain if dtensor is None else dtensor, plain)
    per_step = (n_layers + 1) * (host.fsdp_unit_s or 0.0) + tensors * (host.fsdp_tensor_s or 0.0)
    ddp = (zero == 0) & opts.grad_bucket_copies
    per_ddp = tensors * (host.ddp_tensor_s or 0.0) + (host.ddp_step_s or 0.0)
    hooks = np.where(fsdp2, microbatches * per_step, np.where(ddp, microbatches * per_ddp, 0.0))
    hooks = hooks + microbatches * n_layers * (host.layer_host_s or 0.0)
    optimizer = tensors * per_tensor
    if host.model_pass_s and np.all(np.asarray(n_layers) == model.num_hidden_layers):
        sig = model_signature(model)
        for kind, where in (("ddp", ddp), ("fsdp", fsdp2), ("plain", ~(ddp | fsdp2))):
            measured = host.model_pass(sig, kind, precision)
            if measured is not None:
                hooks = np.where(where, microbatches * measured, hooks)
            step = host.model_pass(sig, kind, "optimizer")
            if step is not None:
                optimizer = np.where(where, step, optimizer)
    return optimizer, hooks


def model_signature(model: ModelSpec) -> str:
    """A model's structure as `HostProfile.model_pass_s` keys it: name, layers, tensors."""
    return f"{model.name}/L{model.num_hidden_layers}/T{model.num_param_tensors()}"
