"""Typed, frozen description of what a machine can do.

Everything here is in SI units: FLOP/s, bytes, bytes/s **per direction**, seconds, watts.
Datasheet loaders (`catalogue.py`) and calibration (`calibration/`) build these objects;
the cost model, the closed-form model and the SimPy engine only read them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from hwprofiles.errors import UserError
from hwprofiles.host import HostProfile
from hwprofiles.precision import PRECISIONS

DTYPES = tuple(PRECISIONS)
"""Dtype keys of peaks and efficiency curves (`hwprofiles.precision`)."""


@dataclass(frozen=True)
class EfficiencyCurve:
    """Achieved fraction of peak as a function of operation size.

    The size is FLOPs per kernel for compute curves, bytes per kernel for memory curves.
    Between points the fraction is interpolated linearly in log(size); outside it is clamped.
    """

    sizes: tuple[float, ...]
    """Operation sizes, strictly ascending (FLOP or bytes)."""
    fractions: tuple[float, ...]
    """Achieved fraction of peak at each size, in (0, 1]."""
    source: str = ""
    """Where the points come from (datasheet-derived model, or a calibration file)."""

    def __post_init__(self) -> None:
        if len(self.sizes) != len(self.fractions) or not self.sizes:
            raise UserError(
                f"efficiency curve: {len(self.sizes)} sizes != {len(self.fractions)} fractions"
            )
        if any(b <= a for a, b in zip(self.sizes, self.sizes[1:], strict=False)):
            raise UserError("efficiency curve: sizes must be strictly ascending")
        if any(not (0.0 < f <= 1.0) for f in self.fractions):
            raise UserError(f"efficiency curve: fractions must be in (0, 1], got {self.fractions}")

    def at(self, size: float | np.ndarray) -> float | np.ndarray:
        """Fraction of peak achieved by one operation of `size` (scalar or array)."""
        logs = np.log(np.maximum(np.asarray(size, dtype=float), 1.0))
        out = np.interp(logs, np.log(self.sizes), self.fractions)
        return float(out) if np.ndim(out) == 0 else out

    @property
    def max_fraction(self) -> float:
        return max(self.fractions)

    @classmethod
    def saturating(
        cls,
        max_fraction: float,
        half_size: float,
        source: str,
        lo: float = 1e5,
        hi: float = 1e16,
        points: int = 23,
    ) -> EfficiencyCurve:
        """Sample ``f(s) = max_fraction * s / (s + half_size)`` on a log grid.

        The form is the usual latency-bandwidth (or launch-overhead) saturation: an operation
        of size `half_size` reaches half of the large-size efficiency.
        """
        sizes = np.logspace(math.log10(lo), math.log10(hi), points)
        fr = max_fraction * sizes / (sizes + half_size)
        fr = np.clip(fr, 1e-4, 1.0)
        return cls(tuple(float(s) for s in sizes), tuple(float(f) for f in fr), source)


@dataclass(frozen=True)
class AttentionTiming:
    """Measured seconds of one fused-attention call at one shape, per pass (calibrated for a
    workload: `llmcap calibrate --attention-shape`)."""

    dtype: str
    batch: int
    heads: int
    seq: int
    head_dim: int
    causal: bool
    fwd_s: float
    bwd_s: float

    def key(self) -> tuple[str, int, int, int, int, bool]:
        return (self.dtype, self.batch, self.heads, self.seq, self.head_dim, self.causal)


@dataclass(frozen=True)
class GemmTiming:
    """Measured seconds of one linear layer's GEMMs of `flops` FLOPs each (forward; backward =
    the dX and dW GEMMs), calibrated at a workload's own shapes (`calibration/workload.py`).
    Layers with the same FLOPs (MLP up and down) share one figure, the mean of theirs: their
    three GEMMs are the same three shapes, in another order."""

    dtype: str
    flops: int
    fwd_s: float
    bwd_s: float


@dataclass(frozen=True)
class Accelerator:
    """One device: peak compute per dtype, memory, power, and achieved-efficiency curves."""

    name: str
    peak_flops: Mapping[str, float]
    """Dense (no sparsity) peak FLOP/s per dtype key in `DTYPES`."""
    memory_bytes: float
    memory_bandwidth_bytes_per_s: float
    tdp_w: float
    idle_w: float
    matmul_efficiency: EfficiencyCurve
    """Fraction of the dtype's dense peak reached by one GEMM of a given FLOP count."""
    attention_efficiency: EfficiencyCurve
    """Fraction of dense peak reached by fused (flash) attention, by FLOPs per call."""
    memory_efficiency: float = 0.8
    """Achievable fraction of `memory_bandwidth_bytes_per_s` for streaming kernels."""
    matmul_efficiency_by_dtype: Mapping[str, EfficiencyCurve] = field(default_factory=dict)
    """Optional per-dtype override of `matmul_efficiency` (calibrated profiles fill it)."""
    attention_efficiency_by_dtype: Mapping[str, EfficiencyCurve] = field(default_factory=dict)
    """Optional per-dtype override of `attention_efficiency`, each a fraction of that dtype's
    peak (calibrated profiles fill it from measured forward + backward SDPA)."""
    copy_bytes_per_s: float | None = None
    """A copy into an existing buffer, bytes read + written per second (STREAM counting);
    None: `memory_bandwidth_bytes_per_s * memory_efficiency`, like any memory-bound kernel."""
    cast_bytes_per_s: float | None = None
    """A dtype conversion into a new tensor (fp32 <-> 16-bit, autocast's casts), bytes read +
    written per second; None: as any memory-bound kernel."""
    attention_timings: tuple[AttentionTiming, ...] = ()
    """Fused attention measured at a workload's own shapes; an op of such a shape is priced
    from these instead of `attention_curve` (none: every shape from the curve)."""
    gemm_timings: tuple[GemmTiming, ...] = ()
    """Linear layers' GEMMs measured at a workload's own shapes; a GEMM op of exactly such
    FLOPs is priced from these instead of `matmul_curve` (none: every GEMM from the curve)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Field name -> citation for the numbers above."""

    def measured_gemm(self, dtype: str, flops: float) -> GemmTiming | None:
        """The measured timing of a linear layer's GEMMs of exactly `flops` FLOPs, or None."""
        if not self.gemm_timings or flops != round(flops):
            return None
        return next(
            (t for t in self.gemm_timings if t.dtype == dtype and t.flops == round(flops)), None
        )

    def measured_attention(
        self, dtype: str, batch: int, heads: int, seq: int, head_dim: int, causal: bool = True
    ) -> AttentionTiming | None:
        """The measured timing of exactly this SDPA shape, or None."""
        key = (dtype, batch, heads, seq, head_dim, causal)
        return next((t for t in self.attention_timings if t.key() == key), None)

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for `dtype`; a clear error if the device has no such unit."""
        if dtype not in self.peak_flops:
            known = ", ".join(sorted(self.peak_flops))
            raise UserError(f"precision: {dtype!r} not supported by {self.name} (has {known})")
        return self.peak_flops[dtype]

    def matmul_curve(self, dtype: str) -> EfficiencyCurve:
        return self.matmul_efficiency_by_dtype.get(dtype, self.matmul_efficiency)

    def attention_curve(self, dtype: str) -> EfficiencyCurve:
        return self.attention_efficiency_by_dtype.get(dtype, self.attention_efficiency)


@dataclass(frozen=True)
class Link:
    """A point-to-point or switched link. Bandwidth is per direction."""

    name: str
    bandwidth_bytes_per_s: float
    """Line rate per direction, per port (bytes/s)."""
    latency_s: float
    """Per-message latency (alpha) including software overhead (s)."""
    efficiency: float = 1.0
    """Achievable fraction of line rate for large messages (protocol overhead)."""
    source: str = ""

    @property
    def effective_bandwidth(self) -> float:
        return self.bandwidth_bytes_per_s * self.efficiency


@dataclass(frozen=True)
class Node:
    """A server: accelerators, a scale-up fabric between them and NICs to the cluster."""

    name: str
    gpus_per_node: int
    scale_up: Link
    """Per-GPU link into the scale-up fabric (NVLink/NVSwitch, xGMI, PCIe, shared memory)."""
    scale_out: Link
    """One NIC's link into the cluster fabric."""
    nics_per_node: int
    source: str = ""
    gpus_per_host: int | None = None
    """GPUs of one host inside the scale-up domain, where that domain spans several hosts (an
    NVL72 rack: 18 compute trays of 4): the unit a job allocates. None = the whole node."""

    @property
    def allocation_unit(self) -> int:
        """GPUs a job takes at a time: a host (`gpus_per_host`), else the whole node."""
        return self.gpus_per_host or self.gpus_per_node

    @property
    def scale_out_bytes_per_s(self) -> float:
        """Node injection bandwidth into the fabric, per direction (all NICs)."""
        return self.scale_out.effective_bandwidth * self.nics_per_node


@dataclass(frozen=True)
class Fabric:
    """The cluster network between nodes."""

    topology: Literal["fat-tree", "rail-optimized"] = "fat-tree"
    oversubscription: float = 1.0
    """Downlink:uplink ratio at the leaf; 1.0 = full bisection bandwidth."""
    source: str = ""


@dataclass(frozen=True)
class PowerModel:
    """Device power by state: P = idle + (tdp - idle) * activity.

    `compute_activity` scales with achieved utilisation; `comm_activity` is the activity level
    while only communication kernels run; waiting devices draw idle power.
    """

    idle_w: float
    tdp_w: float
    comm_activity: float = 0.3
    """Fraction of the dynamic range drawn while only communicating (modelled assumption)."""
    memory_bound_activity: float = 0.6
    """Fraction of the dynamic range drawn by memory-bound kernels (modelled assumption)."""
    source: str = ""

    def power(self, activity: float | np.ndarray) -> float | np.ndarray:
        """Power in watts at an activity level in [0, 1]."""
        return self.idle_w + (self.tdp_w - self.idle_w) * np.clip(activity, 0.0, 1.0)


@dataclass(frozen=True)
class CollectiveFit:
    """A measured alpha-beta fit ``t = alpha + bytes * beta`` for one collective and world size."""

    collective: str
    world_size: int
    alpha_s: float
    beta_s_per_byte: float
    backend: str = ""
    source: str = ""


@dataclass(frozen=True)
class Provenance:
    """Where a profile's numbers come from."""

    kind: Literal["datasheet", "calibrated"]
    date: str = ""
    measured: tuple[str, ...] = ()
    """Names of the quantities that were measured rather than taken from a datasheet."""
    machine: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""
    steadiness: str = ""
    """A calibration's verdict on the machine while it measured ("steady", "unsteady: why"),
    "" where not recorded (datasheets, calibrations older than the verdict)."""


@dataclass(frozen=True)
class HardwareProfile:
    """Everything the models need to know about one cluster design."""

    name: str
    accelerator: Accelerator
    node: Node
    fabric: Fabric
    power: PowerModel
    provenance: Provenance
    collectives: tuple[CollectiveFit, ...] = ()
    price_per_gpu_hour_usd: float | None = None
    price_source: str = ""
    host: HostProfile | None = None
    """The host machine and its software where they show in the step (contention between CPU
    ranks, the allocator, the framework's dispatch time, the collective library), measured by
    calibration (`hwprofiles.host`); None: a datasheet profile, nothing of the host priced."""

    @property
    def collective_backend(self) -> str:
        """The ranks' collective library: the host's where calibrated, else NCCL (the library a
        datasheet GPU cluster runs)."""
        return "nccl" if self.host is None else self.host.collective_backend

    def collective_as_run(self, collective: str) -> str:
        """The collective the ranks' library really runs for `collective` (itself unless the
        host says otherwise)."""
        return collective if self.host is None else self.host.collective_as_run(collective)

    def with_gpus_per_node(self, n: int) -> HardwareProfile:
        if n < 1:
            raise UserError(f"gpus_per_node: {n} must be >= 1")
        return replace(self, node=replace(self.node, gpus_per_node=n))

    def collective_fit(self, collective: str, world_size: int) -> CollectiveFit | None:
        """The measured fit for this collective at this world size, if calibrated."""
        for fit in self.collectives:
            if fit.collective == collective and fit.world_size == world_size:
                return fit
        return None
