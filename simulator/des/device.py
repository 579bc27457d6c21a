"""An accelerator of the simulated step: speed (with variability), memory, its streams.

Each simulated device stands for its tensor- and context-parallel group at one pipeline stage
of one data-parallel replica: the TP collectives inside every layer synchronise the group, so
the group runs at the pace of its slowest member. Variability (off by default) is two seeded
lognormal factors on compute durations:

- a per-device speed factor ``exp(N(0, speed_sigma))`` (the group takes its members' maximum);
- a per-kernel jitter ``exp(N(0, jitter))`` (the maximum of the group's members' draws).

Interference: while the device runs a communication kernel beside compute (data-parallel
buckets, ZeRO gathers, overlapped TP/CP exchanges), NCCL holds SMs and HBM bandwidth, so compute
progresses at ``1 - k * comm_interference`` of its speed while k collectives run (each NCCL
kernel holds its own SMs; the closed form's `Options.comm_interference`: hidden communication
of duration T costs the compute stream ``comm_interference * T``, summed over collectives).
A kernel's finish time is recomputed whenever communication starts or stops on the device.

Power states are derived afterwards from the recorded activities (`power`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import simpy

from simulator.des.engine import Sim, Stream

MIN_RATE = 0.05
"""Floor of compute progress under concurrent communication kernels (dimensionless), so that a
profile with heavy interference still makes progress; at the default
`Options.comm_interference` it would take 6 collectives beside one kernel to reach it."""
_BLOCK = 4096
"""Jitter factors drawn per refill (amortises numpy call overhead)."""


class Memory:
    """Bytes held by one device: a static part and dynamic allocations, with the peak."""

    def __init__(self, static: dict[str, float]) -> None:
        self.static = dict(static)
        self.current: dict[str, float] = defaultdict(float)
        self.peak_dynamic = 0.0
        self.at_peak: dict[str, float] = {}

    def alloc(self, kind: str, nbytes: float) -> None:
        self.current[kind] += nbytes
        total = sum(self.current.values())
        if total > self.peak_dynamic:
            self.peak_dynamic = total
            self.at_peak = dict(self.current)

    def free(self, kind: str, nbytes: float) -> None:
        self.current[kind] -= nbytes

    @property
    def peak_bytes(self) -> float:
        return sum(self.static.values()) + self.peak_dynamic

    def breakdown(self) -> dict[str, float]:
        """Static parts plus each dynamic kind as held at the peak."""
        out = dict(self.static)
        for k, v in self.at_peak.items():
            out[k] = out.get(k, 0.0) + v
        return out


@dataclass(eq=False)
class _Kernel:
    """The compute kernel in progress: work left (seconds at full speed) since `since`."""

    work: float
    since: float
    done: simpy.Event
    version: int = 0


class Device:
    """One simulated accelerator: compute stream state, comm streams, memory, speed."""

    def __init__(
        self,
        sim: Sim,
        rank: int,
        stage: int,
        node: int,
        speed: float = 1.0,
        jitter: float = 0.0,
        group: int = 1,
        rng: np.random.Generator | None = None,
        static_memory: dict[str, float] | None = None,
        interference: float = 0.0,
    ) -> None:
        self.sim = sim
        self.rank = rank
        self.stage = stage
        self.node = node
        self.speed = speed
        """Duration multiplier (>1: slower) of this device's group."""
        self.jitter = jitter
        self.group = group
        self.rng = rng
        self.memory = Memory(static_memory or {})
        self.last = -1
        """Row of the last activity on the compute stream."""
        self.streams: dict[str, Stream] = {}
        self.interference = interference
        self._draws = np.empty(0)
        self._next = 0
        self._comm = 0
        self._groups: dict[Hashable, int] = {}
        """Running communication kernels per parallel group (see `comm`)."""
        self._kernel: _Kernel | None = None

    # ---- compute slowed by concurrent communication -----------------------------------------
    @property
    def rate(self) -> float:
        """Compute progress per second now (1 unless communication kernels run beside it)."""
        return max(MIN_RATE, 1.0 - self.interference * self._comm)

    def run_kernel(self, seconds: float) -> simpy.Event:
        """An event that fires when a kernel of `seconds` (at full speed) has run."""
        env = self.sim.env
        if self.interference <= 0.0:
            return env.timeout(seconds)
        k = _Kernel(seconds, env.now, env.event())
        self._kernel = k
        self._schedule(k)
        return k.done

    def comm(self, delta: int, group: Hashable | None = None) -> None:
        """A communication kernel starts (+1) or ends (-1) on this device.

        Kernels of one parallel `group` (e.g. ZeRO-3's gather and reduce-scatter) share that
        group's link, so together they move the bytes of one at a time: they slow the compute
        as one (the interference follows the traffic, `Options.comm_interference`)."""
        k = self._kernel
        if k is not None:
            now = self.sim.env.now
            k.work -= (now - k.since) * self.rate
            k.since = now
        if group is None:
            self._comm += delta
        else:
            before = self._groups.get(group, 0)
            self._groups[group] = before + delta
            self._comm += (before + delta > 0) - (before > 0)
        if k is not None:
            self._schedule(k)

    def _schedule(self, k: _Kernel) -> None:
        k.version += 1
        version = k.version
        timer = self.sim.env.timeout(max(k.work, 0.0) / self.rate)
        timer.callbacks.append(lambda _ev: self._kernel_end(k, version))

    def _kernel_end(self, k: _Kernel, version: int) -> None:
        if version != k.version or self._kernel is not k:
            return  # rescheduled since
        self._kernel = None
        k.done.succeed()

    def stream(self, name: str) -> Stream:
        """The named communication stream (created on first use)."""
        if name not in self.streams:
            self.streams[name] = Stream(self.sim, self.rank, name, self.comm)
        return self.streams[name]

    def duration(self, base_s: float) -> float:
        """A compute kernel's duration on this device (speed factor and jitter applied)."""
        if self.jitter <= 0.0:
            return base_s * self.speed
        if self._next >= len(self._draws):
            rng = self.rng if self.rng is not None else np.random.default_rng(0)
            self.rng = rng
            z = rng.normal(0.0, self.jitter, size=(_BLOCK, self.group))
            self._draws = np.exp(z.max(axis=1))
            self._next = 0
        f = float(self._draws[self._next])
        self._next += 1
        return base_s * self.speed * f
