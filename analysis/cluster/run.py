"""`simulate_cluster(config, seed)`: a job mix on a cluster of pools under each policy, as JSON.

A pure function of its inputs: the same config and seed give the same (byte-identical when
dumped) result. Jobs are drawn once per seed and replayed under every policy (common random
numbers), so differences between policies are the policies' own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from analysis.cluster.mix import JobMix, sample
from analysis.cluster.pools import PoolSpec, build_pool
from analysis.cluster.steps import StepModel
from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from simulator.cluster import ClusterSim, Job, Pool, PoolRun, get_policy, job_rows, summarise
from simulator.cluster.scheduler import PLACEMENTS
from simulator.reliability.rates import LLAMA3_SOURCE, llama3_rates

DAY_S = 86400.0


@dataclass(frozen=True)
class ClusterConfig:
    """A cluster question: pools, a job mix, the policies to compare, the simulated period."""

    pools: tuple[PoolSpec, ...]
    mix: JobMix
    policies: tuple[str, ...] = ("fifo", "backfill")
    days: float = 30.0
    failures: bool = True
    """Interrupt running jobs at the whole-run model's rates (Llama 3's, per GPU/node/NIC)."""
    placement: str = "fastest-free"
    """"fastest-free" or "earliest-finish" (`simulator.cluster.scheduler.PLACEMENTS`)."""
    profiles: dict[str, HardwareProfile] = field(default_factory=dict, compare=False)
    """Optional pre-loaded profiles by pool name (tests, sweeps); others are loaded by name."""

    def __post_init__(self) -> None:
        if not self.pools:
            raise UserError("hardware: at least one pool is needed")
        if not self.policies:
            raise UserError("policy: at least one policy is needed")
        for p in self.policies:
            get_policy(p)
        if self.placement not in PLACEMENTS:
            raise UserError("placement", self.placement, f"must be one of {', '.join(PLACEMENTS)}")
        if len(set(self.policies)) != len(self.policies):
            raise UserError(f"policy: {list(self.policies)} names a policy twice")
        if not (isinstance(self.days, (int, float)) and 0 < self.days < 3660):
            raise UserError(f"days: {self.days!r} must be > 0 and < 3660")
        names = {p.hardware for p in self.pools}
        for c in self.mix.classes:
            unknown = sorted(set(c.pools or ()) - names)
            if unknown:
                raise UserError(
                    f"job_class.{c.name}.pools: {unknown} are not pools of the cluster "
                    f"(pools: {', '.join(sorted(names))})"
                )

    @property
    def horizon_s(self) -> float:
        return float(self.days) * DAY_S


def build_cluster(
    config: ClusterConfig, steps: StepModel | None = None
) -> tuple[list[Pool], dict[str, HardwareProfile], dict[tuple[str, int, str], PoolRun]]:
    """Pools, their profiles, and every (class, size, pool) the mix can use -> its `PoolRun`.

    Raises ValueError for a class size that no pool can hold or run (larger than every pool it
    may use, or no layout fits in memory).
    """
    sm = steps or StepModel()
    pools, profiles = [], {}
    for spec in config.pools:
        pool, hw = build_pool(spec, config.profiles.get(spec.hardware))
        pools.append(pool)
        profiles[pool.name] = hw
    table: dict[tuple[str, int, str], PoolRun] = {}
    for c in config.mix.classes:
        allowed = [p for p in pools if c.pools is None or p.name in c.pools]
        for g in c.gpus:
            fits = [p for p in allowed if g <= p.gpus]
            if not fits:
                largest = max(allowed, key=lambda p: p.gpus)
                raise UserError(
                    f"job_class.{c.name}.gpus: {g} > {largest.gpus}, the largest pool it may "
                    f"use ({largest.name}); a job runs inside one pool"
                )
            why = []
            for p in fits:
                r = sm.run(c.model, profiles[p.name], g, c.seq_len, c.global_batch, c.precision)
                if r is None:
                    key = (c.model, p.name, g, c.seq_len, c.global_batch, c.precision)
                    why.append(f"{p.name}: {sm.why[key]}")
                else:
                    if config.failures:
                        hw = profiles[p.name]
                        rates = llama3_rates().job_rate_s(
                            g, hw.node.gpus_per_node, hw.node.nics_per_node
                        )
                        r = replace(r, failure_rate_s=sum(rates.values()))
                    table[(c.name, g, p.name)] = r
            if not any((c.name, g, p.name) in table for p in fits):
                raise UserError(
                    f"job_class.{c.name}: {c.model} on {g} GPUs has no layout on any pool "
                    f"({'; '.join(why)})"
                )
    return pools, profiles, table


def draw_jobs(
    config: ClusterConfig, seed: int, table: dict[tuple[str, int, str], PoolRun]
) -> list[Job]:
    """The seeded jobs of the period, priced by `table`."""
    jobs = []
    for i, d in enumerate(sample(config.mix, config.horizon_s, seed)):
        c = d.job_class
        runs = {pool: r for (name, g, pool), r in table.items() if name == c.name and g == d.gpus}
        step_tokens = StepModel.batch(c.seq_len, c.global_batch).target_sequences * c.seq_len
        jobs.append(
            Job(
                id=i,
                job_class=c.name,
                submit_s=d.submit_s,
                gpus=d.gpus,
                steps=d.tokens / step_tokens,
                runs=runs,
                priority=c.priority,
                preemptible=c.preemptible,
                checkpoint_interval_s=c.checkpoint_interval_s,
                restart_s=c.restart_s,
            )
        )
    return jobs


def simulate_cluster(
    config: ClusterConfig, seed: int = 0, steps: StepModel | None = None, jobs_detail: bool = True
) -> dict[str, Any]:
    """Simulate `config` under each of its policies; a JSON-ready dict.

    `steps` may be shared between calls (a sweep) so that each layout search runs once.
    `jobs_detail=False` leaves the per-job rows out (smaller results for sweeps).
    """
    pools, profiles, table = build_cluster(config, steps)
    jobs = draw_jobs(config, seed, table)
    out: dict[str, Any] = {
        "inputs": {
            "seed": seed,
            "days": float(config.days),
            "pools": [
                asdict(p)
                | {
                    "price_source": profiles[p.name].price_source,
                    "node": profiles[p.name].node.name,
                }
                for p in pools
            ],
            "mix": {
                "description": config.mix.description,
                "source": config.mix.source,
                "classes": [asdict(c) for c in config.mix.classes],
            },
            "step_model": {
                f"{name}/{g}/{pool}": asdict(r) for (name, g, pool), r in sorted(table.items())
            },
            "jobs": len(jobs),
            "placement": config.placement,
            "failures": LLAMA3_SOURCE if config.failures else "not simulated",
        },
        "provenance": {
            "engine": "simpy cluster scheduler; job step times from the closed-form planner search",
            "modelled": "arrivals, sizes and lengths are drawn from the job mix; step times, "
            "power and memory fit come from the step model on datasheet profiles; placement, "
            "restarts and checkpoint losses follow the stated rules",
        },
        "policies": {},
    }
    for name in config.policies:
        sim = ClusterSim(
            pools, jobs, get_policy(name), config.horizon_s, seed, config.placement
        ).run()
        res = summarise(sim)
        if jobs_detail:
            res["jobs"] = job_rows(sim)
        out["policies"][name] = res
    return out
