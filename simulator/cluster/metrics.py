"""Turn a finished `ClusterSim` into plain numbers: per pool, per job class, totals, time series.

Definitions (SI inside; hours only in the keys that say so):

- *utilisation* of a pool: GPU-seconds allocated to jobs / (GPUs x period); allocated includes
  restarts, lost work and the idle GPUs of whole-node allocations.
- *goodput*: GPU-seconds computing steps that count (the job's own GPUs, lost work excluded) /
  GPU-seconds of the whole cluster over the period; *goodput of allocated*: the same over the
  allocated GPU-seconds.
- *queueing delay* of a job: first start - submission (jobs that never started are counted
  apart, with the delay they had accumulated at the end of the period).
- *slowdown* of a finished job: (finish - submission) / (restart + steps x step time on the pool
  it finished on), 1 = no wait and no interruption.
- *energy*: computing GPUs draw the job's average power from the step model; every other GPU of
  a pool (idle, restarting, allocated but unused) draws the profile's idle power.
- *cost*: every GPU of every pool is paid for the whole period at its price per GPU-hour.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.cluster.scheduler import ClusterSim, JobRecord

HOUR_S = 3600.0


def _stats(values: list[float], scale: float = 1.0) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p95": None, "max": None}
    a = np.asarray(values, dtype=float) / scale
    return {
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def _ideal_s(r: JobRecord) -> float:
    pool = r.pool
    assert pool is not None
    return r.job.restart_s + r.job.run_s(pool)


def per_class(sim: ClusterSim) -> dict[str, dict[str, Any]]:
    """Counts, queueing delay (hours) and slowdown per job class."""
    horizon = sim.horizon_s
    out: dict[str, dict[str, Any]] = {}
    names = sorted({r.job.job_class for r in sim.records})
    for name in names:
        rs = [r for r in sim.records if r.job.job_class == name and r.job.submit_s < horizon]
        started = [r for r in rs if r.first_start_s is not None]
        done = [r for r in rs if r.finish_s is not None]
        waiting = [r for r in rs if r.first_start_s is None]
        stops = [s for r in rs for s in r.segments if s.how in ("preempted", "suspended")]
        failures = sum(1 for r in rs for s in r.segments if s.how == "failed")
        lost = sum((s.compute_s - s.kept_s) * r.job.gpus for r in rs for s in r.segments)
        out[name] = {
            "submitted": len(rs),
            "started": len(started),
            "finished": len(done),
            "never_started": len(waiting),
            "queueing_delay_h": _stats(
                [r.first_start_s - r.job.submit_s for r in started],
                HOUR_S,  # type: ignore[operator]
            ),
            "never_started_delay_h": _stats([horizon - r.job.submit_s for r in waiting], HOUR_S),
            "slowdown": _stats([(r.finish_s - r.job.submit_s) / _ideal_s(r) for r in done]),  # type: ignore[operator]
            "stops": len(stops),
            "failures": failures,
            "lost_gpu_h": lost / HOUR_S,
        }
    return out


def _level_integral(times: np.ndarray, deltas: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Integral of the step function sum(deltas at times) from 0 to each edge."""
    order = np.argsort(times, kind="stable")
    t, d = times[order], deltas[order]
    level = np.cumsum(d)
    # integral at each breakpoint
    knots = np.concatenate([[0.0], t])
    seg = np.diff(knots) * np.concatenate([[0.0], level[:-1]])
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    idx = np.searchsorted(knots, edges, side="right") - 1
    idx = np.clip(idx, 0, len(knots) - 1)
    lev = np.concatenate([[0.0], level])[idx]
    return cum[idx] + lev * (edges - knots[idx])


def _binned(segments: list[tuple[float, float, float]], edges: np.ndarray) -> np.ndarray:
    """Time-average level per bin of a sum of boxes (start, end, height)."""
    if not segments:
        return np.zeros(len(edges) - 1)
    s = np.asarray(segments, dtype=float)
    times = np.concatenate([s[:, 0], s[:, 1]])
    deltas = np.concatenate([s[:, 2], -s[:, 2]])
    integral = _level_integral(times, deltas, edges)
    return np.diff(integral) / np.diff(edges)


def series(sim: ClusterSim, bin_s: float = HOUR_S) -> dict[str, Any]:
    """Hourly averages: allocated GPUs per pool and queued jobs."""
    n = max(1, int(np.ceil(sim.horizon_s / bin_s)))
    edges = np.minimum(np.arange(n + 1) * bin_s, sim.horizon_s)
    busy = {}
    for name in sim.pools:
        boxes = [
            (s.start_s, s.end_s, float(s.gpus))
            for r in sim.records
            for s in r.segments
            if s.pool == name
        ]
        busy[name] = [round(float(v), 6) for v in _binned(boxes, edges)]
    q = [*sim.queue_log, (sim.horizon_s, sim.queue_log[-1][1])]
    boxes = [(q[i][0], q[i + 1][0], float(q[i][1])) for i in range(len(q) - 1)]
    queued = [round(float(v), 6) for v in _binned(boxes, edges)]
    return {"bin_h": bin_s / HOUR_S, "busy_gpus": busy, "queued_jobs": queued}


def per_pool(sim: ClusterSim) -> dict[str, dict[str, float]]:
    """Utilisation, GPU-hours, energy and cost per pool."""
    out = {}
    for name, pool in sim.pools.items():
        segs = [(r, s) for r in sim.records for s in r.segments if s.pool == name]
        alloc = sum((s.end_s - s.start_s) * s.gpus for _, s in segs)
        useful = sum(s.kept_s * r.job.gpus for r, s in segs)
        computing = sum(s.compute_s * r.job.gpus for r, s in segs)
        busy_j = sum(s.compute_s * r.job.gpus * r.job.runs[name].power_w for r, s in segs)
        total = pool.gpus * sim.horizon_s
        energy = busy_j + (total - computing) * pool.idle_w
        out[name] = {
            "gpus": pool.gpus,
            "utilisation": alloc / total,
            "allocated_gpu_h": alloc / HOUR_S,
            "useful_gpu_h": useful / HOUR_S,
            "energy_j": energy,
            "cost_usd": pool.gpus * pool.usd_per_gpu_hour * sim.horizon_s / HOUR_S,
            "cross_leaf_segments": sum(1 for _, s in segs if s.leaves > 1),
        }
    return out


def summarise(sim: ClusterSim) -> dict[str, Any]:
    """Everything a report needs, JSON-ready (plain floats, ints, strings, lists, dicts)."""
    pools = per_pool(sim)
    classes = per_class(sim)
    total_gpu_s = sum(p.gpus for p in sim.pools.values()) * sim.horizon_s
    alloc = sum(p["allocated_gpu_h"] for p in pools.values()) * HOUR_S
    useful = sum(p["useful_gpu_h"] for p in pools.values()) * HOUR_S
    cost = sum(p["cost_usd"] for p in pools.values())
    started = [r for r in sim.records if r.first_start_s is not None]
    waits = [r.first_start_s - r.job.submit_s for r in started]  # type: ignore[operator]
    totals = {
        "jobs_submitted": sum(c["submitted"] for c in classes.values()),
        "jobs_finished": sum(c["finished"] for c in classes.values()),
        "mean_queueing_delay_h": float(np.mean(waits)) / HOUR_S if waits else None,
        "utilisation": alloc / total_gpu_s,
        "goodput": useful / total_gpu_s,
        "goodput_of_allocated": useful / alloc if alloc else None,
        "energy_j": sum(p["energy_j"] for p in pools.values()),
        "cost_usd": cost,
        "usd_per_useful_gpu_h": cost / (useful / HOUR_S) if useful else None,
    }
    return {"totals": totals, "pools": pools, "classes": classes, "series": series(sim)}


def job_rows(sim: ClusterSim) -> list[dict[str, Any]]:
    """One row per job with its segments (for Gantt charts and audits)."""
    rows = []
    for r in sim.records:
        if r.job.submit_s >= sim.horizon_s:
            continue
        rows.append(
            {
                "id": r.job.id,
                "class": r.job.job_class,
                "gpus": r.job.gpus,
                "priority": r.job.priority,
                "submit_h": r.job.submit_s / HOUR_S,
                "start_h": None if r.first_start_s is None else r.first_start_s / HOUR_S,
                "finish_h": None if r.finish_s is None else r.finish_s / HOUR_S,
                "segments": [
                    [s.pool, s.start_s / HOUR_S, s.end_s / HOUR_S, s.gpus, s.how, list(s.nodes)]
                    for s in r.segments
                ],
            }
        )
    return rows
