"""One sweep point -> one table row of results. Pure: the same task gives the same row on any
worker, in any order (the engine's seed is part of the task, derived from the point's inputs).
"""

from __future__ import annotations

import hashlib
from typing import Any

from analysis.sweep.grid import Point, digest, run_spec

DES_DEFAULTS: dict[str, Any] = {"seed": 0, "jitter": 0.0, "speed_sigma": 0.0, "contention": True}
"""The SimPy engine's options when no axis sets them (those of `llmcap simulate`)."""

METRICS = (
    "step_time_s",
    "tokens_per_s",
    "mfu",
    "hfu",
    "comm_exposed_s",
    "comm_fraction",
    "memory_per_gpu_bytes",
    "energy_per_step_j",
    "scaling_efficiency",
)
"""Float result columns (SI units, as `llmcap simulate --json` names them)."""
FLAGS = ("fits_in_memory",)
TEXTS = ("status", "error", "saturated_links")
INTS = ("engine_seed", "dp")
TOTAL = "total."
"""Prefix of a cluster point's totals (`llmcap cluster --json`: utilisation, goodput, mean
queueing delay in hours, jobs submitted and finished, energy J, cost USD)."""
BREAKDOWN = "breakdown."
"""Prefix of the step-time breakdown columns (seconds along the critical path)."""


def engine_seed(key: str) -> int:
    """The seed the engine gets: 32 bits of a hash of the point's key (its canonical inputs)."""
    return int(hashlib.sha256(f"engine-seed:{key}".encode()).hexdigest()[:8], 16)


def make_task(base: dict[str, dict[str, Any]], point: Point) -> dict[str, Any]:
    """Everything a worker needs for `point`, as plain data."""
    v = point.values
    if v["engine"] == "cluster":
        return _cluster_task(base, point)
    des = {k: v.get(k, d) for k, d in DES_DEFAULTS.items()}
    des["seed"] = engine_seed(point.seed_key or point.key)
    return {
        "key": point.key,
        "spec": run_spec(base, v),
        "engine": v["engine"],
        "des": des,
        "scale_out_gbps": v.get("scale_out_gbps"),
    }


def _cluster_task(base: dict[str, Any], point: Point) -> dict[str, Any]:
    """A cluster point. Its seed hashes only what the job draws depend on (the mix, the days,
    the `seed` replicate), so every pool split and policy of a grid faces the same jobs (common
    random numbers, as `llmcap cluster` compares its policies)."""
    v = point.values
    mix = base["cluster_jobs"][v["jobs"]]
    draws = digest({"mix": mix, "days": float(v.get("days", 30.0)), "seed": v.get("seed", 0)})
    return {
        "key": point.key,
        "engine": "cluster",
        "mix": mix,
        "pools": v["pools"],
        "policy": v.get("policy", "fifo"),
        "days": float(v.get("days", 30.0)),
        "des": {"seed": engine_seed(draws)},
    }


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def evaluate(task: dict[str, Any]) -> dict[str, Any]:
    """Run one task; a failure becomes a row with status "error" and its one-line message."""
    row: dict[str, Any] = {"engine_seed": task["des"]["seed"]}
    try:
        row.update(_cluster(task) if task["engine"] == "cluster" else _predict(task))
        row["status"], row["error"] = "ok", None
    except Exception as exc:
        row["status"], row["error"] = "error", _one_line(exc)
    return row


def _predict(task: dict[str, Any]) -> dict[str, Any]:
    from analysis.predict import predict
    from analysis.runconfig import build_run
    from analysis.scaling import with_scale_out_gbps

    run = build_run(task["spec"])
    hw = run.hardware
    if task["scale_out_gbps"] is not None:
        hw = with_scale_out_gbps(hw, float(task["scale_out_gbps"]))
    kw = dict(task["des"]) if task["engine"] == "des" else {}
    r = predict(run.workload, hw, task["engine"], run.options, run.tokens, **kw)
    out: dict[str, Any] = {m: float(getattr(r, m)) for m in METRICS if getattr(r, m) is not None}
    out["fits_in_memory"] = bool(r.fits_in_memory)
    out["dp"] = int(run.workload.parallel.dp)
    out["saturated_links"] = ";".join(r.extra.get("saturated_links", ())) or None
    for k, val in sorted(r.breakdown.items()):
        out[BREAKDOWN + k] = float(val)
    return out


_STEPS: Any = None
"""One `StepModel` per worker process: its layout searches are memoised across points."""


def _cluster(task: dict[str, Any]) -> dict[str, Any]:
    from analysis.cluster import ClusterConfig, StepModel, parse_mix, parse_pools, simulate_cluster

    global _STEPS
    if _STEPS is None:
        _STEPS = StepModel()
    pols = (task["policy"],)
    config = ClusterConfig(parse_pools(task["pools"]), parse_mix(task["mix"]), pols, task["days"])
    res = simulate_cluster(config, task["des"]["seed"], steps=_STEPS, jobs_detail=False)
    totals = res["policies"][task["policy"]]["totals"]
    return {TOTAL + k: None if x is None else float(x) for k, x in sorted(totals.items())}
