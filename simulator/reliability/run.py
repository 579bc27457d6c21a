"""The whole run of one predicted step: time to train with failures, checkpoints and restarts."""

from __future__ import annotations

from typing import Any

from hwprofiles.errors import UserError
from simulator.reliability.checkpoint import checkpoint_cost
from simulator.reliability.goodput import RunPlan, expected, optimal_tau, young_tau
from simulator.reliability.options import ReliabilityOptions
from simulator.reliability.rates import llama3_rates, read_failure_rates


def whole_run(
    *,
    work_s: float,
    step_time_s: float,
    n_params: float,
    precision: str,
    zero_stage: int,
    dp: int,
    num_gpus: int,
    gpus_per_node: int,
    nics_per_node: int,
    options: ReliabilityOptions | None = None,
    sample: bool = False,
) -> dict[str, Any]:
    """Expected (and, with `sample`, SimPy-sampled) wall clock of `work_s` seconds of steps."""
    o = options or ReliabilityOptions()
    rates = read_failure_rates(o.failure_rates) if o.failure_rates else llama3_rates()
    by_comp = rates.job_rate_s(num_gpus, gpus_per_node, nics_per_node, o.mtbf_scale)
    rate = sum(by_comp.values())
    ck = checkpoint_cost(
        n_params=n_params,
        precision=precision,
        zero_stage=zero_stage,
        dp=dp,
        num_gpus=num_gpus,
        gpus_per_node=gpus_per_node,
        node_bps=o.storage_bandwidth_bps,
        filesystem_bps=o.filesystem_bandwidth_bps,
        async_checkpoint=o.async_checkpoint,
    )
    restart = o.restart_s + ck.load_s + o.warmup_steps * step_time_s
    plan = RunPlan(work_s, rate, ck.block_s, ck.write_s, restart, o.async_checkpoint)
    shortest = ck.block_s + (ck.write_s if o.async_checkpoint else 0.0)
    if o.checkpoint_interval_s is not None:
        if o.checkpoint_interval_s <= shortest:
            raise UserError(
                "checkpoint_interval_s",
                o.checkpoint_interval_s,
                f"must be longer than one checkpoint write ({shortest:.3g} s for "
                f"{ck.state_bytes / 1e9:,.0f} GB at {ck.write_bps / 1e9:,.1f} GB/s)",
            )
        tau = o.checkpoint_interval_s - ck.block_s
    else:
        tau = optimal_tau(plan)
    e = expected(plan, tau)
    out: dict[str, Any] = {
        "time_to_train_s": e["time_s"],
        "time_to_train_ideal_s": work_s,
        "goodput_fraction": work_s / e["time_s"],
        "expected_interruptions": e["interruptions"],
        "checkpoint_interval_s": tau + ck.block_s,
        "checkpoint_interval_optimal": o.checkpoint_interval_s is None,
        "checkpoint_interval_young_s": young_tau(plan) + ck.block_s,
        "job_mtbf_s": plan.mtbf_s,
        "interruptions_per_day_by_component": {c: r * 86400.0 for c, r in by_comp.items()},
        "checkpoint_bytes": ck.state_bytes,
        "checkpoint_write_s": ck.write_s,
        "checkpoint_block_s": ck.block_s,
        "checkpoint_write_bandwidth_bytes_per_s": ck.write_bps,
        "restart_s": restart,
        "async_checkpoint": o.async_checkpoint,
        "time_breakdown_s": {
            "training": work_s,
            "checkpoint": e["checkpoint_s"],
            "lost_work": e["lost_work_s"],
            "restart": e["restart_s"],
        },
        "failure_model": "exponential"
        if o.weibull_shape in (None, 1.0)
        else f"weibull shape {o.weibull_shape:g} (SimPy; the closed form stays exponential)",
        "failure_rates_source": rates.source,
    }
    if sample:
        from simulator.reliability.simrun import simulate_runs

        s = simulate_runs(plan, tau, o.seeds, o.seed, o.weibull_shape)
        out["time_to_train_sampled"] = s
        out["time_to_train_p10_s"] = s["p10_s"]
        out["time_to_train_p50_s"] = s["p50_s"]
        out["time_to_train_p90_s"] = s["p90_s"]
    return out
