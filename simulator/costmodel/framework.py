"""Buffer copies a training framework adds around its data-parallel collectives.

Memory traffic on the compute stream; each copy reads and writes its bytes. Which copies a
stack makes is an `Options` choice (`grad_bucket_copies` for torch DDP, `zero3_copies` for
torch FSDP2). DDP copies into buffers that live for the whole run (its buckets, the
parameters' gradients); FSDP2 frees its gathered parameters and reduce-scatter buffers after
each use and allocates them again (`free_storage` / `alloc_storage` in
torch/distributed/fsdp/_fully_shard), so its copies write fresh memory: on a host without a
caching allocator every fresh page faults on first touch, which `timing.copy_time` prices
with the profile's measured fresh-copy rate.
"""

from __future__ import annotations

import numpy as np

from hwprofiles.profile import Accelerator
from simulator.costmodel.timing import copy_time
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
      (``g * params``) and its shard out (``g * params / dp``).
    """
    dp = np.asarray(dp, dtype=float)
    zero = np.asarray(zero)
    ddp = 2 * g_bytes * params if opts.grad_bucket_copies else 0.0
    shard_in = np.where(dp > 1, w_bytes * params / dp, 0.0)
    z3_mb = 2 * (shard_in + w_bytes * params) + g_bytes * params * (1 + 1 / dp)
    z3 = microbatches * z3_mb if opts.zero3_copies else 0.0
    persistent = np.where(zero == 0, 2.0 * ddp, 0.0)  # x2: read + write
    fresh = np.where(zero == 3, 2.0 * z3, 0.0)
    return persistent, fresh


def copies_time(acc: Accelerator, copies: tuple[Num, Num]) -> Num:
    """Seconds per step on `acc` of the copies `copy_bytes` returns (existing, fresh)."""
    persistent, fresh = copies
    return copy_time(acc, persistent) + copy_time(acc, fresh, fresh=True)
