"""The purchasing question at cluster level: which pool to add to cut the job mix's mean
queueing delay, ranked by what each hour of delay saved costs.

Every candidate addition (``b200:64`` adds 64 B200s as a new pool, or to the B200 pool if there
is one) is simulated on the same jobs (same seed: common random numbers) under one policy.
For each: the mean queueing delay, the job-hours of waiting saved against the cluster as it
is (its total waiting, ``D x jobs started`` with D the mean delay of started jobs, minus the
larger cluster's; averaged over seeds), the added cost over the period (GPUs x list price x
hours; `hwprofiles/data/prices.toml`, whose rows come from different providers: the report
names each price's source), and their ratio, US dollars per job-hour of waiting saved.
Candidates that save nothing are ranked last; a target delay marks which reach it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from analysis.cluster.pools import PoolSpec, parse_pools
from analysis.cluster.run import ClusterConfig, simulate_cluster
from analysis.cluster.steps import StepModel
from hwprofiles.errors import UserError

HOUR_S = 3600.0


def with_addition(pools: tuple[PoolSpec, ...], add: PoolSpec) -> tuple[PoolSpec, ...]:
    """The pools with `add` merged in (same hardware: more GPUs in that pool)."""
    if any(p.hardware == add.hardware for p in pools):
        return tuple(
            PoolSpec(p.hardware, p.gpus + add.gpus) if p.hardware == add.hardware else p
            for p in pools
        )
    return (*pools, add)


def _delay(result: dict[str, Any], policy: str) -> tuple[float, int]:
    t = result["policies"][policy]["totals"]
    started = sum(c["started"] for c in result["policies"][policy]["classes"].values())
    return t["mean_queueing_delay_h"] or 0.0, started


def _runs(config: ClusterConfig, seeds: list[int], sm: StepModel, pol: str) -> dict[str, Any]:
    """Mean over seeds of the delay, jobs started, job-hours waited and utilisation."""
    delay = started = waited = util = 0.0
    pools: list[dict[str, Any]] = []
    for s in seeds:
        res = simulate_cluster(config, s, sm, jobs_detail=False)
        d, n = _delay(res, pol)
        delay, started, waited = delay + d, started + n, waited + d * n
        util += res["policies"][pol]["totals"]["utilisation"]
        pools = res["inputs"]["pools"]
    k = len(seeds)
    return {
        "delay_h": delay / k,
        "started": started / k,
        "waited_job_h": waited / k,
        "utilisation": util / k,
        "pools": pools,
    }


def sweep_additions(
    config: ClusterConfig,
    additions: str,
    seeds: tuple[int, ...] = (0,),
    target_delay_h: float | None = None,
    policy: str | None = None,
    steps: StepModel | None = None,
) -> dict[str, Any]:
    """Simulate the cluster as it is and with each addition in `additions` ("b200:64,h200:64").

    Returns the baseline, one row per candidate (ranked: cheapest job-hour of waiting saved
    first) and the target. Uses `policy` (default: the config's first); every figure is the
    mean over `seeds` (one seed is one month of arrivals: its delays are noisy).
    """
    cands = parse_pools(additions, field="add", unique=False)
    if target_delay_h is not None and not 0 < target_delay_h < math.inf:  # inf breaks the JSON
        raise UserError("target-delay", target_delay_h, "must be a finite number > 0 hours")
    if not seeds:
        raise UserError("seeds", list(seeds), "at least one seed is needed")
    pol = policy or config.policies[0]
    sm = steps or StepModel()
    one = replace(config, policies=(pol,))
    base = _runs(one, list(seeds), sm, pol)
    hours = config.horizon_s / HOUR_S
    rows = []
    for add in cands:
        res = _runs(replace(one, pools=with_addition(config.pools, add)), list(seeds), sm, pol)
        pool = next(p for p in res["pools"] if p["name"] == add.hardware)
        cost = add.gpus * pool["usd_per_gpu_hour"] * hours
        saved = base["waited_job_h"] - res["waited_job_h"]
        rows.append(
            {
                "add": add.text,
                "hardware": add.hardware,
                "gpus": add.gpus,
                "usd_per_gpu_hour": pool["usd_per_gpu_hour"],
                "price_source": pool["price_source"],
                "added_cost_usd": cost,
                "mean_queueing_delay_h": res["delay_h"],
                "delay_saved_job_h": saved,
                "usd_per_job_hour_saved": cost / saved if saved > 0 else None,
                "meets_target": None
                if target_delay_h is None
                else res["delay_h"] <= target_delay_h,
                "utilisation": res["utilisation"],
            }
        )
    rows.sort(
        key=lambda r: (
            r["usd_per_job_hour_saved"] is None,
            r["usd_per_job_hour_saved"] or 0.0,
            r["add"],
        )
    )
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return {
        "policy": pol,
        "seeds": list(seeds),
        "target_delay_h": target_delay_h,
        "baseline": {
            "pools": [p.text for p in config.pools],
            "mean_queueing_delay_h": base["delay_h"],
            "waited_job_h": base["waited_job_h"],
            "utilisation": base["utilisation"],
        },
        "candidates": rows,
        "cheapest_meeting_target": next((r["add"] for r in rows if r["meets_target"]), None),
    }
