"""`simulate_step`: one training step of a workload on a hardware profile, discrete-event.

The result is an `EngineStep` (`simulator.engine_step`: step time, the breakdown by the
labels both engines share, total communication, memory as the simulated devices held it,
energy from the power states) plus `extra` (JSON-ready: saturated links, link utilisation,
per-rank summary, the critical path's split) and the per-activity records (`timeline()`).

Symmetry: one data-parallel replica's pipeline is simulated, one device per pipeline rank for
its TP/CP group. The other replicas (and the other TP ranks' rings) run the same step at the
same time on the same NICs and uplinks; routes carry them as flow weights, so contention with
them is modelled while only pp devices are simulated. With variability on, the simulated
replica is the slowest one (the others wait for it at the data-parallel synchronisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import simpy

from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from hwprofiles.typed import number
from simulator.des.critical import breakdown, critical_path
from simulator.des.device import Device
from simulator.des.engine import Recorder, Row, Sim
from simulator.des.link import Network
from simulator.des.power import device_power
from simulator.des.step import Step
from simulator.des.timeline import to_frame
from simulator.des.topology import Cluster, Placement
from simulator.des.trace import chrome_trace, write_trace
from simulator.des.work import WorkBuilder
from simulator.engine_step import EngineStep
from simulator.limits import MAX_DES_SLOTS, MAX_SIGMA, DesTooLarge
from simulator.parallel import Workload

SATURATED_FRACTION = 0.01
"""A link direction is reported saturated when it was full while shared for at least this
fraction of the step (llmcap's reporting threshold)."""


@dataclass
class DesResult:
    """What one simulated step produced."""

    step: EngineStep
    extra: dict[str, Any]
    rows: list[Row] = field(repr=False, default_factory=list)
    stage_of: dict[int, int] = field(repr=False, default_factory=dict)
    node_of: dict[int, int] = field(repr=False, default_factory=dict)

    @property
    def step_time_s(self) -> float:
        return self.step.step_time_s

    @property
    def arrays(self) -> dict[str, float]:
        """The step as the closed form's flat "group/label" keys."""
        return self.step.to_arrays()

    def timeline(self) -> pd.DataFrame:
        """Per-activity records as a DataFrame (see `simulator.des.timeline`)."""
        return to_frame(self.rows, self.stage_of, self.node_of)


def _default_options() -> Any:
    from simulator.options import Options

    return Options()


def _speeds(
    p: Any, seed: int, speed_sigma: float, slowdowns: Sequence[tuple[float, float]] = ()
) -> tuple[np.ndarray, int, list[np.random.Generator]]:
    """(speed factor per pipeline rank, simulated replica, jitter generator per rank).

    `slowdowns` are transient (probability, factor) pairs: in this step each device is slowed
    by one factor with its probability (at most one kind per device; `simulator.stragglers`).
    """
    ss = np.random.SeedSequence(seed)
    speed_seq, *rank_seqs = ss.spawn(1 + p.pp)
    gens = [np.random.default_rng(s) for s in rank_seqs]
    if speed_sigma <= 0 and not slowdowns:
        return np.ones(p.pp), 0, gens
    rng = np.random.default_rng(speed_seq)
    dev = np.exp(rng.normal(0.0, speed_sigma, size=(p.pp, p.dp, p.tp * p.cp)))
    if slowdowns:
        u = np.random.default_rng(ss.spawn(1)[0]).random(dev.shape)
        edge = 0.0
        for prob, factor in slowdowns:
            dev = np.where((u >= edge) & (u < edge + prob), dev * factor, dev)
            edge += prob
    group = dev.max(axis=2)  # a TP/CP group runs at its slowest member's pace
    replica = int(np.argmax(group.max(axis=0)))  # the replica everyone waits for
    return group[:, replica], replica, gens


def simulate_step(
    workload: Workload,
    hw: HardwareProfile,
    options: Any = None,
    seed: int = 0,
    speed_sigma: float = 0.0,
    jitter: float = 0.0,
    contention: bool = True,
    trace: str | None = None,
    placement: str | None = None,
    slowdowns: Sequence[tuple[float, float]] = (),
    nic_slowdowns: Sequence[tuple[float, float]] = (),
) -> DesResult:
    """Simulate one training step.

    `options` is the closed form's `Options` (attention, overlaps, buckets, optimizer bytes).
    `speed_sigma` and `jitter` are the lognormal sigmas of per-device speed and per-kernel
    jitter (0 = off); `seed` makes them reproducible. `contention=False` gives every transfer
    its uncontended (closed-form) bandwidth. `trace` writes a Chrome/Perfetto trace there.
    `placement` is the rank order, e.g. "tp-cp-dp-pp" (Megatron's, the default).
    `slowdowns`: transient (probability, factor) compute slowdowns drawn per device for this
    step (`simulator.stragglers.TRANSIENTS`). `nic_slowdowns`: the same for every NIC of the
    job; the slowest NIC sets the scale-out rate of every ring (`slow_nic_profile`).
    """
    number(speed_sigma, "speed_sigma", minimum=0.0, maximum=MAX_SIGMA)
    number(jitter, "jitter", minimum=0.0, maximum=MAX_SIGMA)
    p = workload.parallel
    slots = p.num_microbatches * p.pp * p.vpp
    if slots > MAX_DES_SLOTS:
        raise DesTooLarge(
            "engine",
            "des",
            f"would simulate {slots:,} micro-batch stage slots ({p.num_microbatches:,} "
            f"micro-batches x pp {p.pp} x vpp {p.vpp}), above llmcap's limit of "
            f"{MAX_DES_SLOTS:,}; use --engine analytic",
        )
    bad = [x for x in slowdowns if not (0 <= x[0] < 1 and x[1] >= 1)]
    if bad or sum(x[0] for x in slowdowns) >= 1:
        raise UserError(
            "slowdowns",
            list(slowdowns),
            "need probabilities in [0, 1) summing to < 1 and factors >= 1",
        )
    opts = options if options is not None else _default_options()
    hw.accelerator.peak(p.precision)
    pl = Placement.parse((p.tp, p.cp, p.dp, p.pp), placement)
    if nic_slowdowns:
        from simulator.stragglers import slow_nic_profile

        hw = slow_nic_profile(hw, workload.num_gpus, nic_slowdowns, seed)
    cluster = Cluster(hw, pl)
    speeds, replica, gens = _speeds(p, seed, speed_sigma, slowdowns)
    env = simpy.Environment()
    sim = Sim(env, Network(env) if contention else None, Recorder(), cluster.private)
    devices = []
    for s in range(p.pp):
        rank = pl.rank(dp=replica, pp=s)
        devices.append(
            Device(
                sim,
                rank,
                s,
                cluster.node_of(rank),
                float(speeds[s]),
                jitter,
                p.tp * p.cp,
                gens[s],
                interference=float(opts.comm_interference),
            )
        )
    step = Step(sim, WorkBuilder(workload, hw, cluster, opts), devices)
    env.run(until=step.start())
    result = _summarise(step, sim, hw)
    result.extra["options"] = {
        "seed": seed,
        "speed_sigma": speed_sigma,
        "jitter": jitter,
        "contention": contention,
        "placement": "-".join(pl.order),
    }
    if slowdowns:
        result.extra["options"]["slowdowns"] = [list(x) for x in slowdowns]
    if nic_slowdowns:
        result.extra["options"]["nic_slowdowns"] = [list(x) for x in nic_slowdowns]
    result.extra["representative"] = {
        "replica": replica,
        "ranks": [d.rank for d in devices],
        "note": "one data-parallel replica simulated, one device per pipeline rank for its "
        "TP/CP group; other replicas' identical flows are carried as route weights",
    }
    if trace is not None:
        labels = {d.rank: f"stage {d.stage} (rank {d.rank}, node {d.node})" for d in devices}
        logs = result.extra["_power_logs"]
        write_trace(trace, chrome_trace(result.rows, labels, logs, result.extra["options"]))
    result.extra.pop("_power_logs", None)
    return result


def simulate_timeline(
    workload: Workload, hw: HardwareProfile, options: Any = None, **kwargs: Any
) -> pd.DataFrame:
    """The per-activity timeline of one simulated step (keywords as `simulate_step`)."""
    return simulate_step(workload, hw, options, **kwargs).timeline()


def _summarise(step: Step, sim: Sim, hw: HardwareProfile) -> DesResult:
    """Arrays (the closed form's keys) and extra (JSON-ready) from the recorded step."""
    rows = sim.rec.rows
    end = max(rows[i].end for i in step.end_rows)
    last = max(step.end_rows, key=lambda i: (rows[i].end, -i))
    path = critical_path(rows, last)
    parts, bottleneck = breakdown(rows, path)
    by_rank: dict[int, list[Row]] = {d.rank: [] for d in step.devices}
    sums: dict[tuple[int, str], float] = {}
    for r in rows:
        by_rank[r.rank].append(r)
        sums[(r.rank, r.category)] = sums.get((r.rank, r.category), 0.0) + (r.end - r.start)

    def total(rank: int, cats: tuple[str, ...]) -> float:
        return sum(sums.get((rank, c), 0.0) for c in cats)

    def wire(rank: int, category: str) -> float:
        return sim.rec.wire.get((rank, category), 0.0)

    ranks = [d.rank for d in step.devices]
    ref = bottleneck if bottleneck in by_rank else ranks[-1]
    m = step.m
    arrays: dict[str, float] = {"step_time_s": end, "num_microbatches": float(m)}
    moe = step.b.w.model.is_moe
    arrays.update({f"breakdown/{k}": v for k, v in parts.items() if moe or k != "comm_ep"})
    arrays.update(
        {
            "comm_total/tp": total(ref, ("comm_tp",)),
            "comm_total/cp": total(ref, ("comm_cp",)),
            "comm_total/pp": max(total(r, ("comm_pp",)) for r in ranks),
            "comm_total/dp": max(total(r, ("comm_dp",)) for r in ranks),
            "comm_total/zero3": max(total(r, ("comm_zero3",)) for r in ranks),
            "compute_mb_s": total(ref, ("compute", "recompute")) / m,
            "recompute_s": total(ref, ("recompute",)),
            "comm_bytes/tp": wire(ref, "comm_tp"),
            "comm_bytes/cp": wire(ref, "comm_cp"),
            "comm_bytes/pp": max(wire(r, "comm_pp") for r in ranks),
            "comm_bytes/dp": max(wire(r, "comm_dp") + wire(r, "comm_zero3") for r in ranks),
        }
    )
    if moe:
        arrays["comm_total/ep"] = total(ref, ("comm_ep",))
        arrays["comm_bytes/ep"] = wire(ref, "comm_ep")
    power = {
        d.rank: device_power(by_rank[d.rank], end, b.hw.power)
        for d, b in zip(step.devices, step.bs, strict=True)
    }
    arrays["energy_per_gpu_j"] = float(np.mean([power[r]["energy_j"] for r in ranks]))
    top = max(step.devices, key=lambda d: (d.memory.peak_bytes, -d.rank))
    mem = top.memory.breakdown()
    for k in ("weights", "gradients", "optimizer", "activations", "zero3_buffers"):
        arrays[f"memory/{k}"] = float(mem.get(k, 0.0))
    arrays["memory_per_gpu_bytes"] = float(top.memory.peak_bytes)
    links = sim.net.link_report(end) if sim.net is not None else []
    saturated = [x for x in links if float(x["saturated_s"]) >= SATURATED_FRACTION * end]
    per_rank = []
    for d in step.devices:
        pw = power[d.rank]
        per_rank.append(
            {
                "rank": d.rank,
                "stage": d.stage,
                "node": d.node,
                "speed_factor": d.speed,
                "compute_s": total(d.rank, ("compute", "recompute")),
                "optimizer_s": total(d.rank, ("optimizer",)),
                "comm_s": {
                    c: total(d.rank, (f"comm_{c}",))
                    for c in ("tp", "cp", "ep", "pp", "dp", "zero3")
                },
                "state_s": pw["time_s"],
                "energy_j": pw["energy_j"],
                "peak_memory_bytes": d.memory.peak_bytes,
            }
        )
    extra: dict[str, Any] = {
        "engine": "des",
        "critical_path": {"bottleneck_rank": bottleneck, "activities": len(path), **parts},
        "saturated_links": sorted(f"{x['link']}:{x['direction']}" for x in saturated),
        "links": sorted(links, key=lambda x: (-float(x["utilisation"]), str(x["link"])))[:16],
        "per_rank": per_rank,
        "activities": len(rows),
        "_power_logs": {r: power[r]["log"] for r in ranks},
    }
    return DesResult(
        EngineStep.from_arrays(arrays),
        extra,
        rows,
        {d.rank: d.stage for d in step.devices},
        {d.rank: d.node for d in step.devices},
    )
