"""Turn the ranks' raw timings of one run into its measurements.

Step time: each step's time is the slowest rank's (the step is done when every rank is), and a
run's step time is the median over the timed steps, with quartiles and extremes as spread.
Communication share, two methods, both *exposed* communication (what the step waits for):
- "no_sync" (DDP): interleaved pairs of the same step with and without the gradient
  all-reduce (`DistributedDataParallel.no_sync`); share = 1 - median(no_sync) / median(sync).
- "1-rank baseline" (FSDP, where no switch removes every collective): the same per-rank
  work on one rank; share = 1 - t(1 rank) / t(N ranks). It also counts whatever else slows N
  ranks down (sharing memory bandwidth and cores), and the 1-rank step's optimizer updates
  every parameter where each of N ranks updates 1/N, so it under-states communication by
  about that part.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from validation.launcher import Outcome
from validation.spec import RunSpec


@dataclass(frozen=True)
class Spread:
    """Median and spread of a sample of step times (s)."""

    median_s: float
    q1_s: float
    q3_s: float
    min_s: float
    max_s: float
    count: int

    @classmethod
    def of(cls, samples: list[float]) -> Spread:
        if not samples:
            raise ValueError("step times: no samples")
        xs = sorted(samples)
        if len(xs) > 1:
            q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
        else:
            q1 = q3 = xs[0]
        return cls(statistics.median(xs), q1, q3, xs[0], xs[-1], len(xs))

    @property
    def iqr_rel(self) -> float:
        """Interquartile range over the median (dimensionless)."""
        return (self.q3_s - self.q1_s) / self.median_s


def slowest_rank(per_rank: list[list[float]]) -> list[float]:
    """Step-wise maximum over ranks."""
    return [max(step) for step in zip(*per_rank, strict=True)]


@dataclass(frozen=True)
class Measured:
    """What one completed run measured. Times in s, memory in bytes, energy in J."""

    run: str
    step: Spread
    tokens_per_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    comm_fraction: float | None
    comm_method: str | None
    pair_sync_s: float | None
    pair_no_sync_s: float | None
    other_load_cores: float | None
    """CPU cores kept busy by anything but the ranks during the timed steps (machine busy
    time minus the ranks' own CPU time, over the window): torchrun agents, kernel packet
    processing, other processes. None where /proc/stat is unreadable."""
    energy_per_step_j: float | None
    energy_meter: str | None
    energy_reason: str
    loss_first: float
    loss_last: float
    round_medians_s: tuple[float, ...] = ()
    """Median step time of each round (`llmcap validate --rounds`): the run-to-run spread."""
    probe_gemm_s: float | None = None
    """Median seconds of the speed probe's GEMM over ranks and rounds (`worker.probe_gemm`)."""
    probe_round_s: tuple[float, ...] = ()
    """The probe's median per round."""
    inrun_gemm_s: float | None = None
    """In-run GEMM probe (`validation.inrun`), seconds per call: each rank's median over its
    timed steps, the slowest rank's (the step waits for it)."""
    inrun_pass_s: float | None = None
    """In-run host time of the wrapped hollow twin's forward + backward, seconds, taken the
    same way (CPU runs)."""
    inrun_optimizer_s: float | None = None
    """In-run host time of the hollow twin's AdamW step, taken the same way (CPU runs)."""
    inrun_collective_s: dict[str, float] = field(default_factory=dict)
    """In-run seconds per call of each collective (runs of several ranks): the slowest rank's
    per step, the mean over the steps (as the calibration's collectives as met)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["step_time_s"] = self.step.median_s
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measured:
        """Inverse of `to_dict` (reads a report's `runs[].measured`)."""
        known = {f.name for f in fields(cls)}
        args = {k: v for k, v in d.items() if k in known}
        args["round_medians_s"] = tuple(d.get("round_medians_s", ()))
        args["probe_round_s"] = tuple(d.get("probe_round_s", ()))
        return cls(**(args | {"step": Spread(**d["step"])}))


_POOLED = (
    "step_times_s",
    "pair_sync_s",
    "pair_nosync_s",
    "probe_gemm_s",
    "inrun_gemm_s",
    "inrun_pass_s",
    "inrun_optimizer_s",
)
_SUMMED = ("timed_window_s", "timed_cpu_s", "timed_machine_busy_s", "energy_j", "energy_window_s")


def merge_rounds(outcomes: list[Outcome]) -> Outcome:
    """One outcome from completed rounds of the same run: each rank's timed steps and pairs
    pooled in round order, CPU and energy windows summed (energy per step stays the mean),
    peak memory the highest, the first round's first loss and the last round's last."""
    if not outcomes:
        raise ValueError("rounds: no completed round to merge")
    first = outcomes[0]
    merged: dict[int, dict[str, Any]] = {}
    for rank in sorted(first.results):
        recs = [o.results[rank] for o in outcomes]
        rec = dict(recs[0])
        for k in _POOLED:
            rec[k] = [x for r in recs for x in r.get(k, [])]
        colls = recs[0].get("inrun_collective_s") or {}
        rec["inrun_collective_s"] = {
            c: [x for r in recs for x in r["inrun_collective_s"][c]] for c in colls
        }
        for k in _SUMMED:
            vals = [r.get(k) for r in recs]
            rec[k] = None if any(v is None for v in vals) else sum(vals)
        rec["peak_memory_bytes"] = max(r["peak_memory_bytes"] for r in recs)
        rec["loss_last"] = recs[-1]["loss_last"]
        rec["rounds"] = len(recs)
        merged[rank] = rec
    spec = replace(first.spec, steps=first.spec.steps * len(outcomes))
    return Outcome(spec, first.run_dir, merged, None, sum(o.wall_s for o in outcomes))


def measured(outcome: Outcome) -> Measured:
    """The measurements of a completed run (all ranks reported)."""
    if not outcome.ok:
        raise ValueError(f"run {outcome.spec.run_id}: incomplete, nothing to summarise")
    spec, ranks = outcome.spec, [outcome.results[r] for r in sorted(outcome.results)]
    steps = slowest_rank([r["step_times_s"] for r in ranks])
    step = Spread.of(steps)
    comm = sync = nosync = None
    if spec.measures_comm_by_no_sync:
        sync = statistics.median(slowest_rank([r["pair_sync_s"] for r in ranks]))
        nosync = statistics.median(slowest_rank([r["pair_nosync_s"] for r in ranks]))
        comm = max(0.0, 1.0 - nosync / sync)
    metered = [r for r in ranks if r["energy_metered"]]
    joules = [r["energy_j"] for r in metered]
    energy = None
    if metered and all(j is not None for j in joules):
        energy = sum(joules) / spec.steps
    busy, window = ranks[0]["timed_machine_busy_s"], ranks[0]["timed_window_s"]
    other = None
    if busy is not None and window > 0:
        other = max(0.0, (busy - sum(r["timed_cpu_s"] for r in ranks)) / window)
    reasons = sorted({r["energy_reason"] for r in metered if r["energy_reason"]})
    return Measured(
        run=spec.run_id,
        step=step,
        tokens_per_s=spec.tokens_per_step / step.median_s,
        peak_memory_bytes=max(r["peak_memory_bytes"] for r in ranks),
        peak_memory_kind=ranks[0]["peak_memory_kind"],
        comm_fraction=comm,
        comm_method="no_sync" if comm is not None else None,
        pair_sync_s=sync,
        pair_no_sync_s=nosync,
        other_load_cores=other,
        energy_per_step_j=energy,
        energy_meter=",".join(sorted({r["energy_meter"] for r in metered if r["energy_meter"]}))
        or None,
        energy_reason="; ".join(reasons) if energy is None else "",
        loss_first=ranks[0]["loss_first"],
        loss_last=ranks[0]["loss_last"],
        round_medians_s=_round_medians(steps, int(ranks[0].get("rounds", 1))),
        **_probe(ranks),
        **_inrun(ranks),
    )


def _inrun(ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """The in-run probes: per rank the median over its steps, the slowest rank's; nothing
    where a rank did not take them (runs measured before they existed)."""
    out = {}
    for key in ("inrun_gemm_s", "inrun_pass_s", "inrun_optimizer_s"):
        per_rank = [r.get(key) or [] for r in ranks]
        if all(per_rank):
            out[key] = max(statistics.median(xs) for xs in per_rank)
    per_rank_c = [r.get("inrun_collective_s") or {} for r in ranks]
    if all(per_rank_c):
        out["inrun_collective_s"] = {
            c: statistics.mean(slowest_rank([pr[c] for pr in per_rank_c])) for c in per_rank_c[0]
        }
    return out


def _probe(ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """The speed probe's median over every rank's calls, and per round (calls of equal count
    per round, pooled in round order; ranks' calls of one round together)."""
    per_rank = [r.get("probe_gemm_s") or [] for r in ranks]
    if not all(per_rank):
        return {}
    rounds = int(ranks[0].get("rounds", 1))
    k = len(per_rank[0]) // rounds
    per_round = tuple(
        statistics.median([x for calls in per_rank for x in calls[i * k : (i + 1) * k]])
        for i in range(rounds)
    )
    all_calls = [x for calls in per_rank for x in calls]
    return {
        "probe_gemm_s": statistics.median(all_calls),
        "probe_round_s": per_round if rounds > 1 else (),
    }


def _round_medians(steps: list[float], rounds: int) -> tuple[float, ...]:
    """Per-round medians of the slowest-rank step times (rounds of equal length, pooled in
    round order by `merge_rounds`); empty for a single round."""
    if rounds <= 1:
        return ()
    k = len(steps) // rounds
    return tuple(statistics.median(steps[i * k : (i + 1) * k]) for i in range(rounds))


def baseline_comm_fraction(run: Measured, spec: RunSpec, one_rank: Measured | None) -> Measured:
    """`run` with its communication share from the 1-rank baseline, where it has none yet."""
    if run.comm_fraction is not None or one_rank is None or spec.nproc == 1:
        return run
    share = max(0.0, 1.0 - one_rank.step.median_s / run.step.median_s)
    return replace(run, comm_fraction=share, comm_method="1-rank baseline")
