"""The validation matrix: expand the requested axes into runs, run them one after another
(each rate-limited run inside its own namespaces), and keep what every run gave.

A failed run does not stop the matrix: its failure is recorded, the measurements already made
are kept, and the caller exits non-zero. Ctrl-C stops the run in progress (ranks and
namespaces are removed on the way out) and returns what was completed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwprofiles.calibration.collectives import CollectiveError
from hwprofiles.errors import UserError
from validation.gptconfig import GPTConfig
from validation.launcher import Failure, Outcome, launch
from validation.linkcal import LinkFit, measure_link
from validation.measure import Measured, baseline_comm_fraction, measured, merge_rounds
from validation.monitor.config import Injections, MonitorSpec
from validation.monitor.rules import Alert
from validation.netns import RateLimitedLinks
from validation.spec import Fault, RunSpec, format_rate


@dataclass(frozen=True)
class Matrix:
    """The axes of a validation: every combination is one run.

    One-rank runs cross no link, so they run once on the host whatever `links` says;
    `None` in `links` means the host's loopback (no rate limit).
    """

    model: GPTConfig
    nprocs: tuple[int, ...] = (1, 2)
    strategies: tuple[str, ...] = ("ddp", "fsdp")
    precisions: tuple[str, ...] = ("fp32", "bf16")
    links: tuple[float | None, ...] = (None,)
    steps: int = 20
    warmup: int = 3
    comm_pairs: int = 10
    device: str = "cpu"
    threads_per_rank: int = 1
    seed: int = 0
    rounds: int = 1
    """Times the whole matrix is run, round-robin; each run's timed steps are pooled over
    its rounds, so a slow spell of the machine spreads over every configuration instead of
    landing on one."""
    fault: Fault | None = None
    """Injected into every run with more ranks than `fault.rank` (launcher tests)."""
    monitor: MonitorSpec | None = None
    """Watch every run (thresholds, Prometheus port); the predictions are filled in per run
    by `run_matrix`'s `monitors`. None: no monitoring."""
    inject: Injections = field(default_factory=Injections)
    """Faults injected to prove the monitor (`--inject`): each applies to runs that have
    the rank it names (a link drop: to runs through a rate-limited link)."""

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise UserError(f"rounds: {self.rounds} must be >= 1")

    def specs(self) -> list[RunSpec]:
        """All runs, 1-rank baselines first, then grouped by link."""
        out: list[RunSpec] = []
        for (i, link), n in itertools.product(enumerate(self.links), sorted(self.nprocs)):
            if n == 1 and i > 0:
                continue  # one rank crosses no link: run it once
            for strat, prec in itertools.product(self.strategies, self.precisions):
                fault = self.fault if self.fault is not None and self.fault.rank < n else None
                link_n = None if n == 1 else link
                inj = self.inject
                if inj.hang is not None and inj.hang[0] < n:
                    fault = Fault(inj.hang[0], "hang", inj.hang[1])
                slow = inj.slow if inj.slow is not None and inj.slow.rank < n else None
                drop = inj.link_drop if link_n is not None else None
                out.append(
                    RunSpec(
                        self.model,
                        strat,
                        prec,
                        n,
                        steps=self.steps,
                        warmup=self.warmup,
                        comm_pairs=self.comm_pairs,
                        link_bytes_per_s=link_n,
                        device=self.device,
                        threads_per_rank=self.threads_per_rank,
                        seed=self.seed,
                        fault=fault,
                        monitor=self.monitor,
                        slow=slow,
                        link_drop=drop,
                    )
                )
        return sorted(out, key=lambda s: s.nproc > 1)


@dataclass
class Record:
    """One run of the matrix: its spec, and its measurements or its failure."""

    spec: RunSpec
    measured: Measured | None = None
    failure: Failure | None = None
    wall_s: float = 0.0
    run_dir: Path | None = None
    alerts: list[dict[str, Any]] | None = None
    """Monitor alerts of the run (None: not monitored; [] monitored, none fired)."""
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SuiteResult:
    records: list[Record] = field(default_factory=list)
    interrupted: bool = False
    link_fits: list[LinkFit] = field(default_factory=list)
    """Collectives measured through each rate-limited link (`linkcal`), for the predictions."""
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.failure is not None]

    def measured(self) -> dict[str, tuple[RunSpec, Measured]]:
        return {r.spec.run_id: (r.spec, r.measured) for r in self.records if r.measured}


def run_one(
    spec: RunSpec, run_dir: Path, links: SuiteResult | None = None, **timeouts: Any
) -> Outcome:
    """Launch one run, inside rate-limited namespaces when it has a link. With `links`, the
    first run through each (link, ranks) first measures the collectives through it
    (`linkcal.measure_link`) into `links.link_fits`; a failed measurement is a note there,
    and the prediction falls back to the nominal link."""
    rate = spec.link_bytes_per_s
    if rate is None or spec.nproc == 1:
        return launch(spec, run_dir, **timeouts)
    with RateLimitedLinks(spec.nproc, rate) as net:
        done = {(f.link_bytes_per_s, f.world_size) for f in links.link_fits} if links else set()
        if links is not None and (rate, spec.nproc) not in done:
            try:
                fits = measure_link(net, spec.nproc, rate, spec.threads_per_rank)
                why = "" if fits else "no collective measured"
            except (CollectiveError, OSError, ValueError) as exc:
                fits, why = [], str(exc)
            if why:  # noted once; the marker stops a retry at every run through this link
                links.notes.append(f"collectives through {format_rate(rate)} not measured: {why}")
                fits = [LinkFit(rate, "none", spec.nproc, 0.0, 0.0, 0.0)]
            links.link_fits += fits
        return launch(spec, run_dir, net, **timeouts)


def run_matrix(
    matrix: Matrix,
    runs_dir: Path,
    on_done: Callable[[Record], None] | None = None,
    monitors: dict[str, MonitorSpec] | None = None,
    on_alert: Callable[[Alert], None] | None = None,
    **timeouts: float,
) -> SuiteResult:
    """Run every spec of `matrix` under `runs_dir/<run id>/` (`.../round<k>/` with several
    rounds), round after round; `on_done` sees each round's record. A run is recorded once:
    its completed rounds merged, or its first failure (a failed run is not retried).
    `monitors`: per run id, the monitoring settings with that run's prediction (a monitored
    matrix without one is watched for cross-rank alerts only); `on_alert` sees each alert."""
    result = SuiteResult()
    specs = matrix.specs()
    if monitors:
        specs = [s.with_(monitor=monitors.get(s.run_id, s.monitor)) for s in specs]
    done: dict[str, list[Outcome]] = {s.run_id: [] for s in specs}
    alerts: dict[str, list[dict[str, Any]]] = {s.run_id: [] for s in specs}
    events: dict[str, list[dict[str, Any]]] = {s.run_id: [] for s in specs}
    failed: dict[str, Record] = {}
    walls: dict[str, float] = dict.fromkeys(done, 0.0)
    try:
        for k in range(matrix.rounds):
            for spec in specs:
                if spec.run_id in failed:
                    continue
                run_dir = runs_dir / spec.run_id
                if matrix.rounds > 1:
                    run_dir = run_dir / f"round{k + 1}"
                outcome = run_one(spec, run_dir, result, on_alert=on_alert, **timeouts)
                walls[spec.run_id] += outcome.wall_s
                alerts[spec.run_id] += outcome.alerts
                events[spec.run_id] += outcome.events
                watched = alerts[spec.run_id] if spec.monitor is not None else None
                rec = Record(spec, failure=outcome.failure, wall_s=outcome.wall_s, run_dir=run_dir,
                             alerts=watched, events=outcome.events)  # fmt: skip
                if outcome.ok:
                    done[spec.run_id].append(outcome)
                    rec.measured = measured(outcome)
                else:
                    failed[spec.run_id] = rec
                if on_done is not None:
                    on_done(rec)
    except KeyboardInterrupt:
        result.interrupted = True
    for spec in specs:
        if spec.run_id in failed:
            result.records.append(failed[spec.run_id])
        elif done[spec.run_id]:
            merged = merge_rounds(done[spec.run_id])
            run_dir = merged.run_dir.parent if matrix.rounds > 1 else merged.run_dir
            watched = alerts[spec.run_id] if spec.monitor is not None else None
            rec = Record(spec, measured(merged), None, walls[spec.run_id], run_dir, watched,
                         events[spec.run_id])  # fmt: skip
            result.records.append(rec)
    _fill_baseline_comm(result)
    return result


def _fill_baseline_comm(result: SuiteResult) -> None:
    """FSDP runs: communication share from the matching 1-rank run (see `measure`)."""
    ones = {
        (r.spec.strategy, r.spec.precision): r.measured
        for r in result.records
        if r.measured is not None and r.spec.nproc == 1
    }
    for r in result.records:
        if r.measured is not None:
            one = ones.get((r.spec.strategy, r.spec.precision))
            r.measured = baseline_comm_fraction(r.measured, r.spec, one)
