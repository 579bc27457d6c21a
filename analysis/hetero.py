"""A job that spans pools: data-parallel replicas on different GPUs, in both engines.

Scenario: one layout (tp, pp, cp, micro-batch) runs on every pool; pool i holds
``dp_i = gpus_i / (tp pp cp)`` replicas. The global batch's micro-batches are shared out so
that every replica finishes its forward and backward passes at about the same time: replica
counts being fixed, each pool's micro-batches per replica ``m_i`` are chosen greedily (one
replica-class unit at a time, to the pool that would finish earliest) from each pool's time per
micro-batch, i.e. in proportion to its speed, with ``sum_i dp_i m_i`` = the global batch's
micro-batches. The data-parallel all-reduce spans every replica, so

- each pool's step is priced as that pool running *all* ``dp`` replicas with its own ``m_i``
  (the ring has every replica in it), on its own profile whose NICs are brought down to the
  slowest pool's per-GPU scale-out bandwidth (a ring across pools runs at its slowest hop:
  the cross-pool link);
- the job's step is the slowest pool's (the slowest replica gates the all-reduce), and the
  faster pools idle (at their idle power) for the difference.

The SimPy engine simulates one replica per distinct pool (the replicas of one pool are
symmetric) and takes the same maximum; the closed form evaluates the same per-pool workloads.

With a pool-to-pool uplink (`simulator.costmodel.crosspool`), each of the tp x pp x cp rings
crosses it once per direction, so the ring's rate is also capped at uplink / (tp pp cp).
Pipeline stages on different pools are the other plan (`analysis.pipeline_pools`;
`analysis.pool_plans` chooses). Not modelled here: the slower NIC is applied to a pool's own
pipeline sends too (an upper bound on those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from analysis.predict import analytic_arrays
from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from simulator.costmodel.crosspool import PoolLink
from simulator.model import ModelSpec
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload


@dataclass(frozen=True)
class PoolPart:
    """One pool's share of a heterogeneous job."""

    hardware: HardwareProfile
    gpus: int


def per_gpu_scale_out(hw: HardwareProfile) -> float:
    """Scale-out bandwidth per GPU, per direction (bytes/s)."""
    return hw.node.scale_out_bytes_per_s / hw.node.gpus_per_node


def cross_pool_profile(hw: HardwareProfile, per_gpu_bytes_per_s: float) -> HardwareProfile:
    """`hw` with its NICs slowed to `per_gpu_bytes_per_s` per GPU (no change if already there)."""
    mine = per_gpu_scale_out(hw)
    if mine <= per_gpu_bytes_per_s:
        return hw
    link = hw.node.scale_out
    slow = replace(
        link,
        bandwidth_bytes_per_s=link.bandwidth_bytes_per_s * per_gpu_bytes_per_s / mine,
        source=f"{link.source}; slowed to the slowest pool's per-GPU scale-out (cross-pool ring)",
    )
    return replace(hw, node=replace(hw.node, scale_out=slow))


def split_microbatches(
    per_mb_s: Sequence[float], dps: Sequence[int], total: int, unit: int = 1
) -> list[int]:
    """Micro-batches per replica for each pool: sum(dp_i m_i) = `total`, each m_i a positive
    multiple of `unit`, the largest finishing time ``m_i * per_mb_s[i]`` kept small (greedy)."""
    m = [unit] * len(dps)
    left = total - unit * sum(dps)
    if left < 0 or left % unit:
        raise UserError(
            "global_batch_size",
            total,
            f"micro-batches cannot give every replica ({sum(dps)}) at least {unit}",
        )
    while left > 0:
        fits = [i for i in range(len(dps)) if dps[i] * unit <= left]
        if not fits:
            raise UserError(
                "global_batch_size",
                total,
                f"micro-batches cannot be shared out over replica counts {list(dps)} (in units "
                f"of {unit})",
            )
        i = min(fits, key=lambda i: ((m[i] + unit) * per_mb_s[i], i))
        m[i] += unit
        left -= dps[i] * unit
    return m


def _step(
    w: Workload, hw: HardwareProfile, engine: str, opts: Options, contention: bool, seed: int
) -> dict[str, float]:
    if engine == "analytic":
        return analytic_arrays(w, hw, opts)
    from simulator.des.run import simulate_step

    return simulate_step(w, hw, opts, seed=seed, contention=contention).arrays


def hetero_step(
    model: ModelSpec,
    parts: Sequence[PoolPart],
    parallel: ParallelConfig,
    seq_len: int,
    engine: str = "analytic",
    options: Options | None = None,
    contention: bool = False,
    seed: int = 0,
    uplink: PoolLink | None = None,
) -> dict[str, Any]:
    """One training step of a job spread over pools (see the module docstring); JSON-ready.
    `uplink`: the pool-to-pool link; each of the tp x pp x cp rings crosses it once per
    direction, so a ring's rate is at most its share (None: NICs only)."""
    if engine not in ("analytic", "des"):
        raise UserError("engine", engine, "must be analytic or des")
    if not parts:
        raise UserError("hardware", [], "at least one pool is needed")
    opts = options or Options()
    p = parallel
    mp = p.tp * p.pp * p.cp
    dps = []
    for part in parts:
        if part.gpus < 1 or part.gpus % mp:
            raise UserError(
                f"hardware.{part.hardware.name}",
                part.gpus,
                f"GPUs must be a positive multiple of tp*pp*cp = {mp}",
            )
        dps.append(part.gpus // mp)
    dp = sum(dps)
    gbs = p.global_batch_size or p.micro_batch_size * dp
    if gbs % p.micro_batch_size:
        raise UserError("global_batch_size", gbs, "must be a multiple of micro_batch_size")
    total = gbs // p.micro_batch_size
    unit = p.pp if p.vpp > 1 else 1
    slowest = min(per_gpu_scale_out(x.hardware) for x in parts)
    if uplink is not None and len(parts) > 1:
        slowest = min(slowest, uplink.bandwidth_bytes_per_s / mp)
    hws = [cross_pool_profile(x.hardware, slowest) for x in parts]

    def workload(m: int) -> Workload:
        cfg = replace(p, dp=dp, global_batch_size=m * p.micro_batch_size * dp)
        return Workload(model, cfg.resolve(dp * mp), seq_len)

    # time per micro-batch on each pool: the closed form's slope between two batch sizes
    lo, hi = 2 * unit * max(1, p.pp // unit), 4 * unit * max(1, p.pp // unit)
    per_mb = []
    for hw in hws:
        t_lo = analytic_arrays(workload(lo), hw, opts)["step_time_s"]
        t_hi = analytic_arrays(workload(hi), hw, opts)["step_time_s"]
        per_mb.append((t_hi - t_lo) / (hi - lo))
    ms = split_microbatches(per_mb, dps, total, unit)
    pools = []
    for part, hw, d, m in zip(parts, hws, dps, ms, strict=True):
        r = _step(workload(m), hw, engine, opts, contention, seed)
        pools.append(
            {
                "hardware": part.hardware.name,
                "gpus": part.gpus,
                "replicas": d,
                "microbatches_per_replica": m,
                "step_time_s": r["step_time_s"],
                "energy_per_gpu_j": r["energy_per_gpu_j"],
                "idle_w": part.hardware.power.idle_w,
                "scale_out_per_gpu_bytes_per_s": per_gpu_scale_out(hw),
            }
        )
    step = max(x["step_time_s"] for x in pools)
    notes = []
    if min(x["step_time_s"] for x in pools) < 0.9 * step and any(m == unit for m in ms):
        notes.append(
            "micro-batches cannot be shared out more finely (a pool has one per replica): a "
            "smaller micro-batch or a larger global batch lets the faster pools take more"
        )
    energy = sum(
        (x["energy_per_gpu_j"] + (step - x["step_time_s"]) * x["idle_w"]) * x["gpus"] for x in pools
    )
    return {
        "engine": engine,
        "step_time_s": step,
        "gated_by": max(pools, key=lambda x: x["step_time_s"])["hardware"],
        "tokens_per_step": gbs * seq_len,
        "energy_per_step_j": energy,
        "cross_pool_scale_out_per_gpu_bytes_per_s": slowest,
        "uplink_bytes_per_s": None if uplink is None else uplink.bandwidth_bytes_per_s,
        "uplink_source": None if uplink is None else uplink.source,
        "layout": {
            "tp": p.tp,
            "pp": p.pp,
            "vpp": p.vpp,
            "cp": p.cp,
            "dp": dp,
            "micro_batch_size": p.micro_batch_size,
            "global_batch_size": gbs,
        },
        "pools": pools,
        "notes": notes,
    }
