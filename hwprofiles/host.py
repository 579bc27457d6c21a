"""The host and its software stack, where they show in the step: a calibrated profile's
measurements of what CPU ranks share and what the framework costs on the host.

An accelerator's own physics (peaks, efficiencies, memory, copies) lives in `Accelerator`;
what belongs to the machine the ranks run on and the libraries they call lives here, so the
core types and the collective model carry none of it:

- contention: CPU "devices" (ranks of a few threads) share one host's caches, memory
  bandwidth, matrix units and power budget, so a rank computes slower while the others do
  (`under_load`); GPUs are separate devices and have no such factor;
- the allocator: a copy into a newly allocated buffer page-faults on first touch on a host
  without a caching allocator (torch's CPU allocator), a separate rate from a copy into an
  existing buffer;
- the framework's dispatch time per parameter tensor (torch's AdamW, as DTensors under FSDP2;
  DDP's gradient hooks) and per FSDP2 unit, which adds to the step where the host does not
  run ahead of the device;
- the collective library: gloo has no native reduce-scatter (`COLLECTIVES_AS_RUN`).

The calibration loader (`hwprofiles/calibration/loader.py`) attaches one to the profiles it
builds from measurements; datasheet presets have none (`HardwareProfile.host` is None) and
price nothing here. The validation mapping (`validation/mapping.py`) describes the run's
links and ranks per node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwprofiles.profile import HardwareProfile

COLLECTIVES_AS_RUN: Mapping[str, Mapping[str, str]] = {
    # torch's gloo backend reduce-scatters by all-reducing the whole buffer: measured on 2
    # ranks, reduce_scatter_tensor of 16 MiB moved 32 MiB through loopback, the same as
    # all_reduce and twice all_gather (/proc/net/dev counters, 2026-11-29, torch 2.13)
    "gloo": {"reduce_scatter": "all_reduce"},
}
"""Collective library -> {collective: the collective it really runs}, for the cost model."""


def model_pass_key(signature: str, strategy: str, precision: str) -> str:
    """The key of `HostProfile.model_pass_s`: e.g. "tiny/L2/T28|fsdp|bf16"."""
    return f"{signature}|{strategy}|{precision}"


@dataclass(frozen=True)
class HostProfile:
    """What the host machine and its software add to a calibrated profile (SI units)."""

    collective_backend: str = "nccl"
    """Collective library the ranks use ("nccl", "rccl", "gloo"); see `COLLECTIVES_AS_RUN`."""
    contention: Mapping[str, float] = field(default_factory=dict)
    """Per dtype: GEMM throughput of one device while every device of its node computes,
    relative to the device alone (1.0 = independent devices, as GPUs are). Measured by
    calibration for CPU ranks. (Profiles calibrated before 2026-11-29 07:00 UTC measured one
    kernel mix per dtype, which also stands for memory when `memory_contention` is None.)"""
    memory_contention: float | None = None
    """The same for memory-bound streaming (memory bandwidth, copies); None: the dtype's
    `contention` factor."""
    fresh_copy_bytes_per_s: float | None = None
    """A copy into a newly allocated buffer (read + written per second). On a host without a
    caching allocator every fresh page faults on first touch; None: as
    `Accelerator.copy_bytes_per_s`."""
    optimizer_tensor_s: float | None = None
    """Host seconds of torch's AdamW step per parameter tensor beyond its memory traffic (the
    dispatch of its ~10 operations); None: not measured, not priced."""
    dtensor_optimizer_tensor_s: float | None = None
    """As `optimizer_tensor_s` for a DTensor parameter (torch FSDP2), whose every operation
    goes through DTensor's Python dispatch; None: not measured, not priced."""
    fsdp_unit_s: float | None = None
    """Host seconds per torch FSDP2 unit per forward + backward: its pre/post hooks and the
    dispatch of its collectives; None: not measured, not priced."""
    fsdp_tensor_s: float | None = None
    """Further host seconds per parameter tensor of an FSDP2 unit per forward + backward (its
    per-tensor views, copies and gradient bookkeeping); None: not measured, not priced."""
    ddp_tensor_s: float | None = None
    """Host seconds per parameter tensor per backward under torch DDP: its autograd hook
    (gradient marked ready, copied into its bucket; the copy's bytes are priced apart);
    None: not measured, not priced."""
    ddp_step_s: float | None = None
    """Host seconds per forward + backward under torch DDP beyond its per-tensor hooks: the
    forward pre-hook, the bucket all-reduce's launch (a 1-rank group in the calibration) and
    the reducer's finalisation; None: not measured, not priced."""
    layer_host_s: float | None = None
    """Host seconds per transformer layer per forward + backward of its non-GEMM operators
    (norms, residual adds, activation), views and autograd nodes at a size where their bytes
    are nil: the eager framework's per-call time that byte rates measured on large tensors
    leave out (GEMM and attention timings hold their own calls' dispatch). Measured on a
    GPT-2-style block; None: not measured, not priced."""
    model_pass_s: Mapping[str, float] = field(default_factory=dict)
    """Host seconds of one forward + backward of a whole model as the framework runs it, by
    `model_pass_key` (model signature, strategy, precision): the same model built with
    negligible widths (its modules, hooks, autocast and autograd nodes intact, its arithmetic
    and bytes nil), measured before a validation run (`validation/hollow.py`). Where a key
    matches, it replaces the generic per-layer, per-tensor and per-unit figures above, which
    were measured on stand-in modules and miss what they do not model (each Linear's module
    call and autograd node, the loss and the backward's start, the root unit's tied weights).
    Empty: not measured."""
    fastest_s: Mapping[str, float] = field(default_factory=dict)
    """The calibration's fastest sample (seconds per call) of the noisy probes the validation's
    drift guard repeats the same way: "collective:<name>:<world size>:<bytes>" (world size >= 2,
    network/collectives.csv) and "copy:<array bytes>" (compute/memory.csv). A fastest sample is
    what one scheduler hiccup cannot move; empty where not recorded."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Field name -> citation for the numbers above."""

    def model_pass(self, signature: str, strategy: str, precision: str) -> float | None:
        """The measured host seconds of one forward + backward (`model_pass_s`), or None."""
        return self.model_pass_s.get(model_pass_key(signature, strategy, precision))

    def collective_as_run(self, collective: str) -> str:
        """The collective the library really runs for `collective`."""
        return COLLECTIVES_AS_RUN.get(self.collective_backend, {}).get(collective, collective)

    def contention_of(self, kernel: str, dtype: str) -> float | None:
        """The measured contention factor for a probe kernel: "stream" (memory-bound) reads
        `memory_contention`, else fp32's; any other kernel the GEMM factor of `dtype`. None:
        not measured."""
        if kernel == "stream":
            mem = self.memory_contention
            return mem if mem is not None else self.contention.get("fp32")
        return self.contention.get(dtype)


def under_load(hw: HardwareProfile, devices_busy: int, dtype: str) -> HardwareProfile:
    """`hw` as a job sees it with `devices_busy` devices of a node computing.

    Scales each dtype's compute peak by the host's measured `contention` factor (a dtype
    without one by `dtype`'s), memory bandwidth and copy rates by `memory_contention` (else
    `dtype`'s factor), and the times of attention and GEMMs measured at a workload's shapes by
    their dtype's factor, when more than one device of the node is busy; unchanged otherwise
    (and for a profile without a host). Host times (framework dispatch) are not scaled: the
    calibration does not measure their contention (a validation run measures them inside
    itself, ranks busy, `validation.inrun`).
    """
    host = hw.host
    if devices_busy <= 1 or host is None:
        return hw
    if not host.contention and host.memory_contention is None:
        return hw
    default = host.contention.get(dtype, 1.0)

    def factor(d: str) -> float:
        return host.contention.get(d, default)

    fm = default if host.memory_contention is None else host.memory_contention
    acc = hw.accelerator
    slowed = replace(
        acc,
        peak_flops={k: v * factor(k) for k, v in acc.peak_flops.items()},
        memory_bandwidth_bytes_per_s=acc.memory_bandwidth_bytes_per_s * fm,
        copy_bytes_per_s=acc.copy_bytes_per_s and acc.copy_bytes_per_s * fm,
        cast_bytes_per_s=acc.cast_bytes_per_s and acc.cast_bytes_per_s * fm,
        attention_timings=tuple(
            replace(t, fwd_s=t.fwd_s / factor(t.dtype), bwd_s=t.bwd_s / factor(t.dtype))
            for t in acc.attention_timings
        ),
        gemm_timings=tuple(
            replace(t, fwd_s=t.fwd_s / factor(t.dtype), bwd_s=t.bwd_s / factor(t.dtype))
            for t in acc.gemm_timings
        ),
    )
    fresh = host.fresh_copy_bytes_per_s
    return replace(
        hw, accelerator=slowed, host=replace(host, fresh_copy_bytes_per_s=fresh and fresh * fm)
    )
