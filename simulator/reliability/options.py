"""`ReliabilityOptions`: what the user sets about failures, checkpoints and restarts (SI units)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwprofiles.errors import UserError

FILESYSTEM_BPS = 2e12
"""Shared-filesystem cap (B/s): Meta's Tectonic for Llama 3, '2 TB/s sustained, 7 TB/s peak'
(Dubey et al. 2024, 'The Llama 3 Herd of Models', sec. 3.3.1); the sustained figure is used."""

NODE_WRITE_BPS = 20e9
"""Per-node checkpoint write bandwidth (B/s): NVIDIA DGX SuperPOD (H100) reference architecture,
storage performance guidance, 'best' level, single-node write 20 GB/s (read 40 GB/s). Recalled
from the document, not re-checked here; --storage-bandwidth sets the user's figure."""

RESTART_S = 600.0
"""Detection plus relaunch (s), before the checkpoint is loaded. Modelled: a hung collective is
only noticed when the NCCL watchdog fires, 10 minutes by default in torch.distributed
(init_process_group timeout for NCCL); crashes are seen sooner but the job must then be
rescheduled, nodes swapped and NCCL communicators rebuilt at scale. 600 s in all."""

WARMUP_STEPS = 10.0
"""Steps lost to warm-up after a restart (allocator, compile caches, first iterations):
modelled."""


def _positive(name: str, value: float | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(name, value, "must be a finite number > 0")
    if value <= 0:
        raise UserError(name, value, "must be > 0")


@dataclass(frozen=True)
class ReliabilityOptions:
    """Failure, checkpoint and restart settings of a whole run (seconds, bytes/s)."""

    checkpoint_interval_s: float | None = None
    """Time from one checkpoint's start to the next; None = the optimal interval."""
    mtbf_scale: float = 1.0
    """Multiplies every component's MTBF (2 = failures half as frequent)."""
    failure_rates: str | None = None
    """A failure-rate TOML file (simulator.reliability.rates); None = the Llama 3 rates."""
    storage_bandwidth_bps: float = NODE_WRITE_BPS
    """Checkpoint write bandwidth of one node (B/s)."""
    filesystem_bandwidth_bps: float = FILESYSTEM_BPS
    """Shared-filesystem cap on all nodes' writes together (B/s)."""
    async_checkpoint: bool = False
    """Snapshot to host memory, write in the background (training blocks only for the copy)."""
    restart_s: float = RESTART_S
    warmup_steps: float = WARMUP_STEPS
    weibull_shape: float | None = None
    """SimPy only: Weibull time between failures with this shape (1 = exponential)."""
    seeds: int = 64
    """SimPy: runs sampled for the P10/P50/P90 of time to train."""
    seed: int = 0
    pue: float | None = None
    """Facility power usage effectiveness for facility energy (None = power.toml default)."""

    def __post_init__(self) -> None:
        _positive("checkpoint_interval_s", self.checkpoint_interval_s)
        _positive("mtbf_scale", self.mtbf_scale, allow_none=False)
        _positive("storage_bandwidth", self.storage_bandwidth_bps, allow_none=False)
        _positive("filesystem_bandwidth", self.filesystem_bandwidth_bps, allow_none=False)
        _positive("weibull_shape", self.weibull_shape)
        if not (isinstance(self.restart_s, int | float) and math.isfinite(self.restart_s)) or (
            self.restart_s < 0
        ):
            raise UserError("restart_s", self.restart_s, "must be a finite number >= 0")
        if not (math.isfinite(self.warmup_steps) and self.warmup_steps >= 0):
            raise UserError("warmup_steps", self.warmup_steps, "must be a finite number >= 0")
        if self.pue is not None and (
            isinstance(self.pue, bool)
            or not isinstance(self.pue, int | float)
            or not (math.isfinite(self.pue) and self.pue >= 1.0)
        ):
            raise UserError("pue", self.pue, "must be a finite number >= 1 (facility / IT energy)")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise UserError("seeds", self.seeds, "must be an integer >= 1")
