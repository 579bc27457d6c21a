"""Links that concurrent transfers share fairly (processor sharing), and the network of them.

Scenario: a transfer (a `Flow`) crosses a path of link directions; while several flows are
active their rates follow weighted max-min fairness (progressive filling): every flow's rate
rises together until a link direction is full or the flow reaches its own cap; flows through
that link freeze, the rest keep rising. A flow of weight `w` stands for `w` identical flows
of symmetric ranks that are not simulated (one representative of a set), so it consumes
``w * rate`` of each link it crosses.

Rates are recomputed whenever a flow starts or finishes; between those instants every rate is
constant, so a flow's finish time is exact (no time stepping). Ties are broken by the flow's
sequence number, so results are deterministic.

Ignored: packet-level effects, congestion control dynamics, switch buffers, and the latency of
each hop (a collective's latency terms are paid before its bytes move, see `collectives`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import simpy

DIRECTIONS = ("tx", "rx")
_EPS_REL = 1e-9
"""Relative tolerance for "link full" and "flow finished" tests (floating point)."""
_EPS_BYTES = 1e-6
"""Absolute tolerance of "flow finished" in bytes: flows of a few bytes end too."""


@dataclass
class ChannelStats:
    """Time integrals of one link direction's load (s, bytes)."""

    bytes: float = 0.0
    busy_s: float = 0.0
    """Time with at least one flow."""
    shared_s: float = 0.0
    """Time with two or more distinct flows (contention beyond the symmetric share)."""
    full_s: float = 0.0
    """Time at capacity."""
    saturated_s: float = 0.0
    """Time at capacity while shared: where contention slowed someone."""


@dataclass(eq=False)
class Link:
    """A link with a bandwidth per direction and a latency; each direction is shared fairly."""

    name: str
    bandwidth_bytes_per_s: float
    """Capacity per direction (bytes/s)."""
    latency_s: float = 0.0
    stats: dict[str, ChannelStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bandwidth_bytes_per_s > 0:
            raise ValueError(
                f"link {self.name}: bandwidth {self.bandwidth_bytes_per_s} must be > 0"
            )
        self.stats = {d: ChannelStats() for d in DIRECTIONS}


Channel = tuple[Link, str, float]
"""One direction of a link and the flow's weight on it: (link, "tx" | "rx", weight)."""


@dataclass(eq=False)
class Flow:
    """A transfer of `size` bytes over `path`.

    On each channel of the path the flow stands for `weight` identical transfers (the symmetric
    ranks it represents there), so it uses ``weight * rate`` of that channel.
    """

    seq: int
    path: tuple[Channel, ...]
    size: float
    cap: float
    """Upper bound of the rate (bytes/s) whatever the links allow."""
    done: simpy.Event
    remaining: float = 0.0
    rate: float = 0.0


class Network:
    """All active flows of one simulation and their fair-share rates."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.flows: list[Flow] = []
        self._seq = 0
        self._version = 0
        self._last = 0.0
        self.channels: dict[tuple[int, str], tuple[Link, str]] = {}

    def transfer(
        self,
        path: Sequence[Channel],
        nbytes: float,
        cap: float = math.inf,
    ) -> simpy.Event:
        """Start moving `nbytes` along `path`; the returned event fires when they arrived."""
        done = self.env.event()
        if nbytes <= 0:
            done.succeed()
            return done
        if not path and math.isinf(cap):
            raise ValueError("transfer: an empty path needs a finite rate cap")
        self._advance()
        flow = Flow(self._seq, tuple(path), nbytes, cap, done, remaining=nbytes)
        self._seq += 1
        for link, d, _w in flow.path:
            self.channels.setdefault((id(link), d), (link, d))
        self.flows.append(flow)
        self._reschedule()
        return done

    # ---- internals -------------------------------------------------------------------
    def _advance(self) -> None:
        """Move every active flow forward to `now` at its current rate; integrate stats."""
        now = self.env.now
        dt = now - self._last
        self._last = now
        if dt <= 0 or not self.flows:
            return
        load: dict[tuple[int, str], float] = {}
        count: dict[tuple[int, str], int] = {}
        for f in self.flows:
            f.remaining -= f.rate * dt
            for link, d, w in f.path:
                key = (id(link), d)
                load[key] = load.get(key, 0.0) + f.rate * w
                count[key] = count.get(key, 0) + 1
        for key, used in load.items():
            link, d = self.channels[key]
            st = link.stats[d]
            st.bytes += used * dt
            st.busy_s += dt
            full = used >= link.bandwidth_bytes_per_s * (1 - 1e-6)
            if count[key] > 1:
                st.shared_s += dt
            if full:
                st.full_s += dt
                if count[key] > 1:
                    st.saturated_s += dt

    def _rates(self) -> None:
        """Weighted max-min fair rates by progressive filling."""
        free: dict[tuple[int, str], float] = {}
        weight: dict[tuple[int, str], float] = {}
        for f in self.flows:
            f.rate = -1.0  # unfrozen marker
            for link, d, w in f.path:
                key = (id(link), d)
                free[key] = link.bandwidth_bytes_per_s
                weight[key] = weight.get(key, 0.0) + w
        level = 0.0
        unfrozen = list(self.flows)
        while unfrozen:
            # the next level at which a channel fills or a flow hits its cap
            nxt = min(f.cap for f in unfrozen)
            for key, w in weight.items():
                if w > 1e-12:
                    nxt = min(nxt, level + max(free[key], 0.0) / w)
            grow = nxt - level
            for key, w in weight.items():
                free[key] -= grow * w
            level = nxt
            still: list[Flow] = []
            for f in unfrozen:
                tight = f.cap <= level * (1 + _EPS_REL) or any(
                    free[(id(link), d)] <= link.bandwidth_bytes_per_s * _EPS_REL
                    for link, d, _w in f.path
                )
                if tight:
                    f.rate = level
                    for link, d, w in f.path:
                        weight[(id(link), d)] -= w
                else:
                    still.append(f)
            unfrozen = still

    def _reschedule(self) -> None:
        self._rates()
        self._version += 1
        if not self.flows:
            return
        dt = min(f.remaining / f.rate for f in self.flows)
        version = self._version
        timer = self.env.timeout(max(dt, 0.0))
        timer.callbacks.append(lambda _ev: self._on_timer(version))

    def _on_timer(self, version: int) -> None:
        if version != self._version:
            return  # a flow started or finished since: this wake-up is stale
        self._advance()
        finished = [f for f in self.flows if f.remaining <= f.size * _EPS_REL + _EPS_BYTES]
        if not finished:  # rounding: finish the nearest one
            finished = [min(self.flows, key=lambda f: (f.remaining / f.rate, f.seq))]
        self.flows = [f for f in self.flows if f not in finished]
        self._reschedule()
        for f in finished:
            f.done.succeed()

    def link_report(self, horizon_s: float) -> list[dict[str, float | str]]:
        """Per link direction: bytes, utilisation over `horizon_s`, shared and saturated time."""
        out: list[dict[str, float | str]] = []
        for link, d in self.channels.values():
            st = link.stats[d]
            cap = link.bandwidth_bytes_per_s * horizon_s
            out.append(
                {
                    "link": link.name,
                    "direction": d,
                    "bandwidth_bytes_per_s": link.bandwidth_bytes_per_s,
                    "bytes": st.bytes,
                    "utilisation": st.bytes / cap if cap > 0 else 0.0,
                    "busy_s": st.busy_s,
                    "shared_s": st.shared_s,
                    "saturated_s": st.saturated_s,
                }
            )
        return out
