"""Checkpoint and restart cost from the training state and the storage path.

State written: weights plus optimizer state (bytes per parameter as `costmodel.memory`:
mixed precision 2 + 12, fp32 4 + 8); gradients are not saved. Who writes: with ZeRO >= 1 the
optimizer state is sharded over every data-parallel rank, so every node writes its share in
parallel; with ZeRO 0 one data-parallel replica (num_gpus / dp GPUs) holds the whole state and
writes it. Write time = bytes / min(writer nodes x node bandwidth, filesystem cap).
Asynchronous checkpointing (e.g. torch.distributed.checkpoint async_save) blocks training only
for the device-to-host copy of each GPU's share; the write proceeds in the background and the
checkpoint counts once it is on storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.costmodel.memory import param_state_bytes

HOST_COPY_BPS = 25e9
"""Device-to-host copy per GPU (B/s). Modelled: pinned D2H copies over PCIe 4.0 x16 (32 GB/s raw
per direction, PCI-SIG) reach about 25 GB/s; PCIe 5.0 hosts are faster, so this is conservative."""

READ_OVER_WRITE = 2.0
"""Read bandwidth / write bandwidth of the storage path when loading a checkpoint: the DGX
SuperPOD storage guidance gives single-node read 40 GB/s vs write 20 GB/s ('best' level)."""


@dataclass(frozen=True)
class CheckpointCost:
    state_bytes: float
    writer_nodes: int
    write_bps: float
    write_s: float
    """Time to put one checkpoint on storage."""
    block_s: float
    """Time training stops per checkpoint (= write_s when synchronous)."""
    load_s: float


def checkpoint_cost(
    *,
    n_params: float,
    precision: str,
    zero_stage: int,
    dp: int,
    num_gpus: int,
    gpus_per_node: int,
    node_bps: float,
    filesystem_bps: float,
    async_checkpoint: bool,
) -> CheckpointCost:
    """Bytes, write, blocking and load time of one checkpoint (see the module docstring)."""
    w, _g, o = param_state_bytes(precision)
    state = n_params * (w + o)
    nodes = math.ceil(num_gpus / gpus_per_node)
    writing_gpus = num_gpus if zero_stage >= 1 else max(1, num_gpus // max(dp, 1))
    writers = min(nodes, math.ceil(writing_gpus / gpus_per_node))
    bps = min(writers * node_bps, filesystem_bps)
    write = state / bps
    block = state / writing_gpus / HOST_COPY_BPS if async_checkpoint else write
    load = state / min(nodes * node_bps * READ_OVER_WRITE, filesystem_bps * READ_OVER_WRITE)
    return CheckpointCost(state, writers, bps, write, block, load)
