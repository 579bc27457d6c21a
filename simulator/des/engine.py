"""The simulation context: environment, network, records, and FIFO streams of work.

The model records, it does not print: every activity (a compute kernel, a collective, a
transfer) appends one `Row` to `Recorder.rows`; `timeline` turns them into a DataFrame and
`trace` into a Chrome/Perfetto trace. Each row names the activity whose end released it
(`pred`), so the critical path of the step can be walked back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, NamedTuple

import simpy

from simulator.des.collectives import Collective, run
from simulator.des.link import Network
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

    def collective(self, coll: Collective) -> Generator[simpy.Event, Any, None]:
        net = self.net
        private = self.private
        if net is not None and private is not None and all(private(p.route) for p in coll.phases):
            net = None  # provably alone on its links: same time, fewer events
        return run(self.env, net, coll)


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


class Stream:
    """A FIFO stream of collectives on one device (like a CUDA stream running NCCL kernels)."""

    def __init__(
        self, sim: Sim, rank: int, name: str, busy: Callable[[int], None] | None = None
    ) -> None:
        self.sim = sim
        self.busy = busy
        """Told +1 / -1 when a job starts / ends (the device slows its compute meanwhile)."""
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
                self.busy(1)
            yield from self.sim.collective(job.coll)
            if self.busy is not None:
                self.busy(-1)
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
