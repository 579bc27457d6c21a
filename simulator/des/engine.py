"""The simulation context: environment, network, records, and FIFO streams of work.

The model records, it does not print: every activity (a compute kernel, a collective, a
transfer) appends one `Row` to `Recorder.rows`; `timeline` turns them into a DataFrame and
`trace` into a Chrome/Perfetto trace. Each row names the activity whose end released it
(`pred`), so the critical path of the step can be walked back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import simpy

from simulator.des.collectives import Collective, run
from simulator.des.link import Link, Network
from simulator.des.topology import Route


class Row(NamedTuple):
    """One recorded activity (times in s)."""

    rank: int
    stream: str
    name: str
    category: str
    start: float
    end: float
    mb: int
    layer: int
    pred: int
    """Index of the row whose end released this one (-1: none)."""


class Recorder:
    """Append-only list of activities."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.wire: dict[tuple[int, str], float] = {}
        """Bytes put on the wire per (rank, category)."""

    def add(
        self,
        *,
        rank: int,
        stream: str,
        name: str,
        category: str,
        start: float,
        end: float,
        mb: int = -1,
        layer: int = -1,
        pred: int = -1,
        wire_bytes: float = 0.0,
    ) -> int:
        if wire_bytes:
            key = (rank, category)
            self.wire[key] = self.wire.get(key, 0.0) + wire_bytes
        self.rows.append(Row(rank, stream, name, category, start, end, mb, layer, pred))
        return len(self.rows) - 1

    def later(self, a: int, b: int) -> int:
        """The row (of two indices, -1 = none) that ended later; ties keep `a`."""
        if b < 0:
            return a
        if a < 0:
            return b
        return b if self.rows[b].end > self.rows[a].end else a


@dataclass
class Sim:
    """What every entity of one run shares."""

    env: simpy.Environment
    net: Network | None
    """The fair-share network, or None when contention is off (each transfer alone)."""
    rec: Recorder
    private: Callable[[Route], bool] | None = None
    """Whether a route is used by one stream only (then no contention can happen on it)."""
    group_net: Network | None = None
    """Without contention: the links of each (rank, parallel group), shared by that group's
    own collectives only (rule "one group, one link")."""
    group_links: dict[tuple[Hashable, float], Link] = field(default_factory=dict)

    def collective(
        self, coll: Collective, group: Hashable | None = None
    ) -> Generator[simpy.Event, Any, None]:
        """Run `coll`. With contention on, on the network; off, alone, except that collectives
        naming the same `group` (one rank's parallel group, e.g. ZeRO-3's gathers and
        reduce-scatters on two streams) share that group's link fairly: they cross the same
        NICs, so running together they take the sum of their bandwidth times, never less."""
        net = self.net
        private = self.private
        if net is not None and private is not None and all(private(p.route) for p in coll.phases):
            net = None  # provably alone on its links: same time, fewer events
        elif net is None and group is not None and coll.phases:
            return self._on_group_link(coll, group)
        return run(self.env, net, coll)

    def _on_group_link(
        self, coll: Collective, group: Hashable
    ) -> Generator[simpy.Event, Any, None]:
        """`coll`'s latency terms alone, its bytes fair-shared on the group's link."""
        if self.group_net is None:
            self.group_net = Network(self.env)
        for ph in coll.phases:
            if ph.latency_s > 0:
                yield self.env.timeout(ph.latency_s)
            if ph.nbytes > 0:
                key = (group, ph.route.rate)
                link = self.group_links.get(key)
                if link is None:
                    link = self.group_links[key] = Link(f"group {group}", ph.route.rate)
                yield self.group_net.transfer(((link, "tx", 1.0),), ph.nbytes, cap=ph.route.rate)


@dataclass
class Job:
    """A collective queued on a stream: waits for `ready`, then runs."""

    coll: Collective
    name: str
    category: str
    ready: simpy.Event | None = None
    mb: int = -1
    layer: int = -1
    issued: int = -1
    """Row of the activity that issued the job (its earliest start)."""
    done: simpy.Event | None = None
    on_done: Callable[[int], None] | None = None
    group: Hashable | None = None
    """The (rank, parallel group) whose link the collective uses; without contention, jobs of
    one group on different streams share it (`Sim.collective`)."""


class Stream:
    """A FIFO stream of collectives on one device (like a CUDA stream running NCCL kernels)."""

    def __init__(
        self,
        sim: Sim,
        rank: int,
        name: str,
        busy: Callable[[int, Hashable | None], None] | None = None,
    ) -> None:
        self.sim = sim
        self.busy = busy
        """Told +1 / -1 and the job's group when a job starts / ends (the device slows its
        compute meanwhile)."""
        self.rank = rank
        self.name = name
        self.last = -1
        self.tail: simpy.Event = sim.env.event()
        """Completion of the last job submitted so far."""
        self.tail.succeed(-1)
        self._queue: simpy.Store = simpy.Store(sim.env)
        sim.env.process(self._serve())

    def submit(self, job: Job) -> simpy.Event:
        """Queue `job`; the returned event fires (value: its row index) when it completes."""
        done = job.done = job.done or self.sim.env.event()
        self._queue.put(job)
        self.tail = done
        return done

    def _serve(self) -> Generator[simpy.Event, Any, None]:
        env, rec = self.sim.env, self.sim.rec
        while True:
            job: Job = yield self._queue.get()
            pred = rec.later(self.last, job.issued)
            if job.ready is not None:
                if not job.ready.processed:
                    yield job.ready
                pred = rec.later(pred, job.ready.value if job.ready.value is not None else -1)
            start = env.now
            if self.busy is not None:
                self.busy(1, job.group)
            yield from self.sim.collective(job.coll, job.group)
            if self.busy is not None:
                self.busy(-1, job.group)
            self.last = rec.add(
                rank=self.rank,
                stream=self.name,
                name=job.name,
                category=job.category,
                start=start,
                end=env.now,
                mb=job.mb,
                layer=job.layer,
                pred=pred,
                wire_bytes=job.coll.wire_bytes,
            )
            if job.on_done is not None:
                job.on_done(self.last)
            if job.done is not None:
                job.done.succeed(self.last)
