"""One training step whose pipeline stages run on different pools, discrete-event.

Scenario: a replica's pipeline ranks are spread over pools (stage s on `stage_hw[s]`); the
layers are split as `split` says (one count per stage, e.g. more layers on the faster pool).
Ranks are placed in Megatron's order (tp, cp, dp, pp: pp outermost), so each stage's ranks,
and with them its data-parallel group, lie in one pool; only pipeline sends between a stage on
one pool and the next on another cross pools. Every stage is simulated as its own device with
its own hardware (compute, scale-up, its pool's NICs for its DP collectives, its power
model); the pipeline send that crosses pools runs on a route through the sending pool's NICs,
the pool-to-pool uplink and the receiving pool's NICs, at the rate of
`simulator.costmodel.crosspool.cross_rate` (the closed form's). The replicas are symmetric
(every one spans the same pools the same way), so one is simulated and the others are carried
as route weights, as in `simulator.des.run`.

Not modelled here: interleaved schedules (vpp > 1), ZeRO-3, mixture-of-experts layers, speed
variation and jitter (use `simulate_step` for those on one pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import simpy

from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from simulator.costmodel.crosspool import PoolLink, cross_rate
from simulator.des.collectives import Collective, Phase
from simulator.des.device import Device
from simulator.des.engine import Recorder, Sim
from simulator.des.link import Link, Network
from simulator.des.run import DesResult, _summarise
from simulator.des.step import Step
from simulator.des.topology import Cluster, Placement, Route
from simulator.des.work import WorkBuilder
from simulator.limits import MAX_DES_SLOTS, DesTooLarge
from simulator.parallel import Workload
from simulator.pipeline_split import chunk_offsets


def check_stages(workload: Workload, stage_hw: Sequence[Any], split: Sequence[int]) -> None:
    """`UserError` unless the stage plan fits the workload (one entry per stage, layers sum)."""
    p, layers = workload.parallel, workload.model.num_hidden_layers
    if p.vpp != 1:
        raise UserError("vpp", p.vpp, "must be 1 with stages over pools (no interleaving)")
    if p.zero_stage == 3:
        raise UserError("zero", 3, "must be 0, 1 or 2 with stages over pools")
    if workload.model.is_moe:
        raise UserError(
            "model",
            workload.model.name,
            "is a mixture-of-experts model; stages over pools take dense models",
        )
    if len(stage_hw) != p.pp or len(split) != p.pp:
        raise UserError(
            "stages", len(split), f"need one pool and one layer count per stage (pp = {p.pp})"
        )
    if any(n < 1 for n in split) or sum(split) != layers:
        raise UserError("split", list(split), f"needs >= 1 layer per stage, {layers} in all")


def simulate_stages(
    workload: Workload,
    stage_hw: Sequence[HardwareProfile],
    split: Sequence[int],
    uplink: PoolLink,
    options: Any = None,
    seed: int = 0,
    contention: bool = True,
) -> DesResult:
    """Simulate one step with stage s on `stage_hw[s]` holding `split[s]` layers."""
    from simulator.options import Options

    check_stages(workload, stage_hw, split)
    p = workload.parallel
    slots = p.num_microbatches * p.pp
    if slots > MAX_DES_SLOTS:
        raise DesTooLarge(
            "engine", "des", f"would simulate {slots:,} micro-batch stage slots, above "
            f"llmcap's limit of {MAX_DES_SLOTS:,}; use --engine analytic",
        )  # fmt: skip
    opts = options if options is not None else Options()
    pl = Placement((p.tp, p.cp, p.dp, p.pp))
    env = simpy.Environment()
    clusters: dict[int, Cluster] = {}
    builders: dict[int, WorkBuilder] = {}
    split_t = tuple(int(n) for n in split)
    for hw in stage_hw:
        if id(hw) not in clusters:
            hw.accelerator.peak(p.precision)
            cl = Cluster(hw, pl)
            b = WorkBuilder(workload, hw, cl, opts)
            b.split, b.offsets = split_t, chunk_offsets(split_t)
            clusters[id(hw)], builders[id(hw)] = cl, b
    first = clusters[id(stage_hw[0])]
    for cl in clusters.values():  # one record of who sends where, over every pool's links
        cl._users, cl._private = first._users, first._private
    sim = Sim(env, Network(env) if contention else None, Recorder(), first.private)
    gens = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(p.pp)]
    devices, per_dev = [], []
    for s, hw in enumerate(stage_hw):
        cl = clusters[id(hw)]
        rank = pl.rank(dp=0, pp=s)
        devices.append(
            Device(sim, rank, s, cl.node_of(rank), 1.0, 0.0, p.tp * p.cp, gens[s],
                   interference=float(opts.comm_interference))
        )  # fmt: skip
        per_dev.append(builders[id(hw)])
    ups: dict[tuple[str, str], Link] = {}  # one uplink per pair of pools

    def up(a: HardwareProfile, b: HardwareProfile) -> Link:
        key = tuple(sorted((a.name, b.name)))
        if key not in ups:
            ups[key] = Link(f"uplink {key[0]}-{key[1]}", uplink.bandwidth_bytes_per_s, 0.0)
        return ups[key]

    senders = p.tp * p.cp * p.dp
    msg = float(per_dev[0].msg.p2p)
    cache: dict[tuple[int, int], Collective | None] = {}

    def cross(i: int, j: int) -> Collective | None:
        if stage_hw[i] is stage_hw[j]:
            return None
        if (i, j) not in cache:
            a, b = stage_hw[i], stage_hw[j]
            rate, lat = cross_rate(a, b, senders, uplink)
            ca, cb = clusters[id(a)], clusters[id(b)]
            w = float(a.node.gpus_per_node)  # every GPU of the node sends at once
            path = (
                (ca.nics(ca.node_of(devices[i].rank)), "tx", w),
                (up(a, b), "tx" if i < j else "rx", float(senders)),
                (cb.nics(cb.node_of(devices[j].rank)), "rx", w),
            )
            route = Route(path, rate, lat, 2)
            cache[(i, j)] = Collective("send_recv", msg, 2, (Phase(lat, msg, route),))
        return cache[(i, j)]

    step = Step(sim, per_dev[0], devices, builders=per_dev, cross=cross)
    env.run(until=step.start())
    result = _summarise(step, sim, stage_hw[0])
    result.extra["options"] = {"seed": seed, "contention": contention, "placement": "tp-cp-dp-pp"}
    result.extra["representative"] = {
        "replica": 0,
        "ranks": [d.rank for d in devices],
        "note": "one data-parallel replica simulated, one device per pipeline rank on its own "
        "pool's hardware; the other replicas' identical flows are carried as route weights",
    }
    result.extra["stages"] = [
        {"stage": s, "hardware": hw.name, "layers": split_t[s]} for s, hw in enumerate(stage_hw)
    ]
    result.extra.pop("_power_logs", None)
    return result


def cross_send_seconds(result: DesResult) -> float:
    """Seconds of pipeline sends that crossed pools in a `simulate_stages` result (the
    representative replica's, both directions)."""
    hw = {s["stage"]: s["hardware"] for s in result.extra["stages"]}
    out = 0.0
    for r in result.rows:
        if r.category != "comm_pp" or " to v" not in r.name:
            continue
        src = result.stage_of[r.rank]
        dst = int(r.name.rsplit(" to v", 1)[1]) % len(hw)
        if hw[src] != hw[dst]:
            out += r.end - r.start
    return out
