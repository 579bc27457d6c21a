"""Tail amplification: how stragglers stretch a synchronous step as the ranks grow, in both
engines side by side.

For each GPU count the SimPy engine simulates the step once per seed, drawing every device's
persistent speed factor and its transient slowdowns for that step (the slowest replica is the
one simulated), and the closed form (`simulator.stragglers`) gives the expected maximum factor
over the ranks, applied to the compute on the critical path (`compute` + `optimizer` of the
breakdown). Data parallelism only by default: every rank then sits on the critical path and the
two engines model the same thing; with pipeline stages the closed form's single stretch is an
approximation (each stage has its own maximum).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from hwprofiles.profile import HardwareProfile
from simulator.des.run import simulate_step
from simulator.model import ModelSpec
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload
from simulator.stragglers import (
    DEVICE_SPEED_SIGMA,
    Slowdown,
    expected_max_factor,
    expected_max_normal,
    expected_max_normal_asymptote,
    slow_ring_distribution,
    slowed_nics,
    step_with_stragglers,
)


def dp_workload(
    model: ModelSpec, gpus: int, seq_len: int = 2048, micro_batch: int = 1, micro_batches: int = 4
) -> Workload:
    """A data-parallel-only step on `gpus` ranks (ZeRO-1, `micro_batches` per rank)."""
    p = ParallelConfig(
        micro_batch_size=micro_batch,
        global_batch_size=micro_batch * micro_batches * gpus,
        zero_stage=1,
    ).resolve(gpus)
    return Workload(model, p, seq_len)


def tail_amplification(
    workloads: Iterable[Workload],
    hw: HardwareProfile,
    sigma: float = DEVICE_SPEED_SIGMA,
    transients: Sequence[Slowdown] = (),
    seeds: Iterable[int] = range(12),
    options: Options | None = None,
) -> list[dict[str, Any]]:
    """One row per workload: the step without variation, the DES mean/p90 over seeds, and the
    closed form's expected step, with the relative excess of each (contention off)."""
    opts = options or Options()
    seeds = list(seeds)
    comp = [(t.probability, t.factor) for t in transients if t.applies_to == "compute"]
    rows = []
    for w in workloads:
        n = w.num_gpus
        base = simulate_step(w, hw, opts, contention=False)
        t0 = base.arrays["step_time_s"]
        stretched = base.arrays["breakdown/compute"] + base.arrays["breakdown/optimizer"]
        steps = np.array(
            [
                simulate_step(
                    w, hw, opts, seed=s, speed_sigma=sigma, slowdowns=comp, contention=False
                ).arrays["step_time_s"]
                for s in seeds
            ]
        )
        cf = step_with_stragglers(
            t0, stretched, n, sigma, [t for t in transients if t.applies_to == "compute"]
        )
        rows.append(
            {
                "gpus": n,
                "step_s": t0,
                "des_mean_s": float(steps.mean()),
                "des_p90_s": float(np.percentile(steps, 90)),
                "closed_form_s": cf,
                "des_excess": float(steps.mean() / t0 - 1.0),
                "closed_form_excess": cf / t0 - 1.0,
                "expected_max_factor": expected_max_factor(n, sigma, comp),
                "expected_max_z": expected_max_normal(n),
                "sqrt_2_ln_n": expected_max_normal_asymptote(n),
            }
        )
    return rows


def slow_nic_expectation(
    w: Workload,
    hw: HardwareProfile,
    transients: Sequence[tuple[float, float]],
    engine: str = "analytic",
    options: Options | None = None,
) -> dict[str, Any]:
    """Expected step when NICs slow down transiently: the slowest NIC of the job's
    ``nodes x nics_per_node`` sets every ring's rate, so E[step] = sum over the slowest
    factor's distribution of the step on NICs that much slower (each priced by `engine`,
    contention off for the SimPy engine)."""
    from analysis.predict import analytic_arrays

    opts = options or Options()
    nics = -(-w.num_gpus // hw.node.gpus_per_node) * hw.node.nics_per_node
    dist = slow_ring_distribution(nics, transients)

    def step(h: HardwareProfile) -> float:
        if engine == "analytic":
            return analytic_arrays(w, h, opts)["step_time_s"]
        return simulate_step(w, h, opts, contention=False).arrays["step_time_s"]

    rows = [(p, f, step(slowed_nics(hw, f))) for p, f in dist if p > 0]
    base = next(t for p, f, t in rows if f == 1.0) if any(f == 1.0 for _, f, _ in rows) else None
    return {
        "gpus": w.num_gpus,
        "nics": nics,
        "p_slowed": 1.0 - sum(p for p, f, _ in rows if f == 1.0),
        "step_s": base if base is not None else step(hw),
        "expected_step_s": sum(p * t for p, _, t in rows),
        "outcomes": [{"probability": p, "factor": f, "step_s": t} for p, f, t in rows],
    }
