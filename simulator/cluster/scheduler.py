"""The shared cluster as a SimPy model: jobs arrive, wait, are placed, run, and may be preempted.

Scenario: a cluster of pools (`Pool`) receives jobs (`Job`) at their submission times. A
scheduling pass runs whenever a job arrives or ends (and, under gang scheduling, at every time
slice); the policy (`simulator.cluster.policy`) decides which queued jobs start and where, and
which running jobs give their GPUs up. A running job holds its placement for
``restart_s + remaining steps * step time`` unless it is stopped first.

Stopping a job: a *preempted* job keeps the steps up to its last checkpoint (every
`checkpoint_interval_s` of computing) and loses the rest; a *suspended* job (gang time slicing)
keeps all its steps. Either pays `restart_s` again when it next starts.

Failures: a running job is interrupted after an exponential time with its pool's
`PoolRun.failure_rate_s` (seeded; the rates come from the whole-run model,
`simulator.reliability`). A *failed* job loses the work since its last checkpoint like a
preempted one and goes back to the queue with its place (its submission time) kept; its GPUs are
given back at once (a spare replaces the broken node; repair time is not modelled).

The model records, it does not print: every run segment and every change of the queue length is
appended to plain lists that `simulator.cluster.metrics` turns into figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import simpy

from hwprofiles.errors import UserError
from simulator.cluster.jobs import Job, Pool
from simulator.cluster.placement import Placement, PoolState, earliest_start
from simulator.cluster.policy import Policy

PLACEMENTS = ("fastest-free", "earliest-finish")
"""Which pool a job starts on: the fastest pool where it fits now, or (earliest-finish) the pool
where it would finish first, waiting for a faster pool to free up when that finishes sooner."""


@dataclass
class Segment:
    """One stretch of a job on its GPUs, from start to stop (or to the end of the period)."""

    pool: str
    start_s: float
    end_s: float
    gpus: int
    """GPUs allocated (whole nodes for large jobs)."""
    compute_s: float
    """Time spent computing steps (after the restart), counted or lost."""
    kept_s: float
    """Computing time whose steps count (lost work excluded)."""
    leaves: int
    nodes: tuple[int, ...]
    """Node indices of the pool it held."""
    how: str
    """How it ended: "done", "preempted", "suspended", "failed" or "open" (still running at the
    end of the period)."""


@dataclass
class JobRecord:
    """What happened to one job."""

    job: Job
    steps_done: float = 0.0
    first_start_s: float | None = None
    finish_s: float | None = None
    pool: str | None = None
    """Pool of the latest (or current) segment."""
    segments: list[Segment] = field(default_factory=list)
    reservation_s: float | None = None
    """The reservation it got when it first blocked the queue's head (backfill policies)."""
    # running state
    placement: Placement | None = None
    start_s: float = 0.0
    token: int = 0
    queued_since: float = 0.0

    @property
    def running(self) -> bool:
        return self.placement is not None


class ClusterSim:
    """A simulated shared cluster under one policy (build it, then `run`)."""

    def __init__(
        self,
        pools: Sequence[Pool],
        jobs: Sequence[Job],
        policy: Policy,
        horizon_s: float,
        seed: int = 0,
        placement: str = "fastest-free",
    ) -> None:
        if not pools:
            raise UserError("pools: at least one pool is needed")
        names = [p.name for p in pools]
        if len(set(names)) != len(names):
            raise UserError(f"pools: {names} names a pool twice")
        if placement not in PLACEMENTS:
            raise UserError("placement", placement, f"must be one of {', '.join(PLACEMENTS)}")
        self.placement = placement
        if not (math.isfinite(horizon_s) and horizon_s > 0):
            raise UserError(f"horizon_s: {horizon_s!r} must be a finite number > 0")
        by_name = {p.name: p for p in pools}
        for j in jobs:
            unknown = [p for p in j.runs if p not in by_name]
            if unknown:
                raise UserError(f"job {j.id}.runs: pools {unknown} are not in the cluster")
            biggest = max(by_name[p].gpus for p in j.runs)
            if j.gpus > biggest:
                raise UserError(
                    f"job {j.id} ({j.job_class}).gpus: {j.gpus} > {biggest}, the largest pool "
                    "that can run it (a job runs inside one pool)"
                )
        self.env = simpy.Environment()
        self.pools = {p.name: p for p in pools}
        self.rank = {name: i for i, name in enumerate(names)}
        self.states = {p.name: PoolState(p) for p in pools}
        self.policy = policy
        self.horizon_s = float(horizon_s)
        self.records = [JobRecord(j) for j in sorted(jobs, key=lambda j: (j.submit_s, j.id))]
        self.queue: list[JobRecord] = []
        self.running: dict[int, JobRecord] = {}
        self.queue_log: list[tuple[float, int]] = [(0.0, 0)]
        """(time, queued jobs) after every change."""
        self._pref: dict[int, list[str]] = {}
        self._rng = np.random.default_rng([seed, 0xFA11])
        """Times to failure, drawn in event order (deterministic)."""
        self._fail: dict[str, int] = {}

    # ---- processes ---------------------------------------------------------------------------
    def run(self) -> ClusterSim:
        """Simulate up to the horizon; open segments are closed there."""
        self.env.process(self._arrive())
        if self.policy.quantum_s is not None:
            self.env.process(self._tick(self.policy.quantum_s))
        self.env.run(until=self.horizon_s)
        for r in sorted(self.running.values(), key=lambda r: r.job.id):
            self._close(r, "open")
        return self

    def _arrive(self):  # type: ignore[no-untyped-def]
        for r in self.records:
            if r.job.submit_s >= self.horizon_s:
                break
            if r.job.submit_s > self.env.now:
                yield self.env.timeout(r.job.submit_s - self.env.now)
            r.queued_since = self.env.now
            self.queue.append(r)
            self._log_queue()
            self._schedule()

    def _tick(self, quantum_s: float):  # type: ignore[no-untyped-def]
        while True:
            yield self.env.timeout(quantum_s)
            self._schedule(tick=True)

    # ---- starting and stopping ---------------------------------------------------------------
    def _prefer(self, r: JobRecord) -> list[str]:
        """Pools that can run the job, fastest first (then in cluster order)."""
        pref = self._pref.get(r.job.id)
        if pref is None:
            pref = sorted(r.job.runs, key=lambda p: (r.job.run_s(p), self.rank[p]))
            self._pref[r.job.id] = pref
        return pref

    def _fits(self, pool: str, gpus: int) -> Placement | None:
        """`PoolState.place`, remembering within a pass the smallest size that did not fit
        (starting jobs only takes GPUs, so a larger job cannot fit either)."""
        if gpus >= self._fail.get(pool, 1 << 62):
            return None
        p = self.states[pool].place(gpus)
        if p is None:
            self._fail[pool] = gpus
        return p

    def _duration(self, r: JobRecord, pool: str) -> float:
        left = max(r.job.steps - r.steps_done, 0.0)
        return r.job.restart_s + left * r.job.runs[pool].step_time_s

    def _start(self, r: JobRecord, p: Placement) -> None:
        now = self.env.now
        self.states[p.pool].take(p)
        self.queue.remove(r)
        self._log_queue()
        r.placement, r.pool, r.start_s = p, p.pool, now
        if r.first_start_s is None:
            r.first_start_s = now
        r.token += 1
        token = r.token
        duration = self._duration(r, p.pool)
        rate = r.job.runs[p.pool].failure_rate_s
        ttf = self._rng.exponential(1.0 / rate) if rate > 0 else math.inf
        if ttf < duration:
            ev = self.env.timeout(ttf)
            ev.callbacks.append(lambda _ev: self._failed(r, token))
        else:
            ev = self.env.timeout(duration)
            ev.callbacks.append(lambda _ev: self._end(r, token))
        self.running[r.job.id] = r

    def _end(self, r: JobRecord, token: int) -> None:
        if token != r.token:
            return  # stopped since
        self._close(r, "done")
        r.steps_done = r.job.steps
        r.finish_s = self.env.now
        self._schedule()

    def _failed(self, r: JobRecord, token: int) -> None:
        if token != r.token:
            return
        self._stop(r, "failed")
        r.queued_since = r.job.submit_s  # keeps its place in the queue
        self._schedule()

    def _close(self, r: JobRecord, how: str) -> None:
        """End the current segment: account the steps it kept, give its GPUs back."""
        p = r.placement
        assert p is not None
        now = self.env.now
        step = r.job.runs[p.pool].step_time_s
        left_s = max(r.job.steps - r.steps_done, 0.0) * step
        compute = min(max(0.0, now - r.start_s - r.job.restart_s), left_s)
        if how in ("preempted", "failed"):
            kept = math.floor(compute / r.job.checkpoint_interval_s) * r.job.checkpoint_interval_s
        else:
            kept = compute
        nodes = tuple(n for n, _ in p.nodes)
        r.segments.append(
            Segment(p.pool, r.start_s, now, p.gpus, compute, kept, p.leaves, nodes, how)
        )
        if how in ("preempted", "suspended", "failed"):
            r.steps_done += kept / step
        self.states[p.pool].give(p)
        del self.running[r.job.id]
        r.placement = None
        r.token += 1

    def _stop(self, r: JobRecord, how: str) -> None:
        self._close(r, how)
        r.queued_since = self.env.now
        self.queue.append(r)
        self._log_queue()

    def _log_queue(self) -> None:
        now = self.env.now
        if self.queue_log[-1][0] == now:
            self.queue_log[-1] = (now, len(self.queue))
        else:
            self.queue_log.append((now, len(self.queue)))

    # ---- the policy ---------------------------------------------------------------------------
    def _key(self, r: JobRecord) -> tuple[float, ...]:
        j = r.job
        if self.policy.quantum_s is not None:
            return (r.queued_since, j.submit_s, j.id)
        if self.policy.order == "priority":
            return (-j.priority, j.submit_s, j.id)
        return (j.submit_s, j.id)

    def _place_now(self, r: JobRecord) -> Placement | None:
        for pool in self._prefer(r):
            p = self._fits(pool, r.job.gpus)
            if p is not None:
                return p
        return None

    def _schedule(self, tick: bool = False) -> None:
        pol = self.policy
        reservation: tuple[float, str, PoolState] | None = None
        head: JobRecord | None = None
        self._fail = {}
        for r in sorted(self.queue, key=self._key):
            if head is None:
                p = self._place_now(r)
                wait = self._better_to_wait(r, p)
                if wait is not None:
                    p = None
                elif p is None and (pol.preempt or tick):
                    p = self._make_room(r, "preempted" if pol.preempt else "suspended")
                if p is not None:
                    self._start(r, p)
                    continue
                if pol.quantum_s is not None:
                    continue  # gang: fill the holes, nobody blocks
                if not pol.backfill:
                    break
                head = r
                reservation = wait or self._reserve(r, self.placement == "earliest-finish")
                if r.reservation_s is None and reservation is not None:
                    r.reservation_s = reservation[0]
                continue
            for pool in self._prefer(r):
                p = self._fits(pool, r.job.gpus)
                if p is None:
                    continue
                if self._better_to_wait(r, p) is not None:
                    break
                if reservation is None or pool != reservation[1]:
                    self._start(r, p)
                    break
                if self.env.now + self._duration(r, pool) <= reservation[0]:
                    self._start(r, p)  # gone again before the head's reservation
                    break
                later = reservation[2].copy()
                later.take(p)
                if later.place(head.job.gpus) is not None:
                    reservation = (reservation[0], pool, later)
                    self._start(r, p)
                    break

    def _better_to_wait(
        self, r: JobRecord, p: Placement | None
    ) -> tuple[float, str, PoolState] | None:
        """Under earliest-finish placement: the reservation on a faster pool when waiting for it
        finishes sooner than starting on `p`'s (slower) pool now; else None."""
        if self.placement != "earliest-finish" or p is None or p.pool == self._prefer(r)[0]:
            return None
        best = self._reserve(r, by_finish=True)
        if best is None or best[1] == p.pool:
            return None
        now_finish = self.env.now + self._duration(r, p.pool)
        return best if best[0] + self._duration(r, best[1]) < now_finish else None

    def _reserve(
        self, r: JobRecord, by_finish: bool = False
    ) -> tuple[float, str, PoolState] | None:
        """Earliest (time, pool, pool state then) at which `r` could start (or, `by_finish`,
        finish), fastest pool on ties."""
        best: tuple[float, str, PoolState] | None = None
        best_key = math.inf
        for pool in self._prefer(r):
            # a running job ends at its segment's start + its duration on its own pool
            releases = [
                (x.start_s + self._segment_s(x), x.job.id, x.placement)
                for x in self.running.values()
                if x.pool == pool and x.placement is not None
            ]
            e = earliest_start(self.states[pool], r.job.gpus, self.env.now, releases)
            if e is None:
                continue
            key = e[0] + (self._duration(r, pool) if by_finish else 0.0)
            if best is None or key < best_key:
                best, best_key = (e[0], pool, e[1]), key
        return best

    def _segment_s(self, x: JobRecord) -> float:
        assert x.pool is not None
        return self._duration(x, x.pool)

    def _make_room(self, r: JobRecord, how: str) -> Placement | None:
        """Stop running jobs so that `r` fits (fewest GPUs stopped); its placement, or None."""
        now = self.env.now
        best: tuple[int, int, list[JobRecord]] | None = None
        for pool in self._prefer(r):
            if how == "preempted":
                victims = [
                    x
                    for x in self.running.values()
                    if x.pool == pool and x.job.preemptible and x.job.priority < r.job.priority
                ]
                victims.sort(key=lambda x: (x.job.priority, -x.start_s, -x.job.id))
            else:
                q = self.policy.quantum_s or 0.0
                victims = [
                    x for x in self.running.values() if x.pool == pool and now - x.start_s >= q
                ]
                victims.sort(key=lambda x: (x.start_s, x.job.id))
            s = self.states[pool].copy()
            chosen: list[JobRecord] = []
            for x in victims:
                assert x.placement is not None
                s.give(x.placement)
                chosen.append(x)
                if s.place(r.job.gpus) is not None:
                    freed = sum(c.placement.gpus for c in chosen if c.placement is not None)
                    cand = (freed, self.rank[pool], chosen)
                    if best is None or cand[:2] < best[:2]:
                        best = cand
                    break
        if best is None:
            return None
        for x in best[2]:
            self._stop(x, how)
        self._fail = {}  # GPUs were given back
        return self._place_now(r)
