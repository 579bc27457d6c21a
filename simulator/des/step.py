"""A training step as SimPy processes: pipeline passes, TP/CP/PP/DP/ZeRO communication.

Scenario: one data-parallel replica's pipeline is simulated, one device per pipeline rank
(standing for its TP/CP group). Each rank runs its 1F1B (or interleaved) pass order; a pass
executes its program (`work`) kernel by kernel: compute on the compute stream, TP collectives
blocking it, CP exchanges beside attention. Activations and their gradients go to the next
rank as point-to-point transfers; a pass waits for its input to arrive.

Data parallelism: gradients of the last micro-batch's backward become final kernel by kernel;
buckets of `bucket_bytes` (boundaries laid from the end, so the last bucket is full, as the
closed form assumes) are all-reduced (ZeRO-0) or reduce-scattered (ZeRO-1/2) on the device's
DP stream as soon as they are complete, overlapping the rest of the backward. ZeRO-1/2 gather
the updated parameters (from the previous step's optimizer) at the start of the step, behind
the first forward. ZeRO-3 gathers each unit (layer, embedding, head) before its forward and
backward, prefetching the next one, and reduce-scatters its gradients after its backward, on
two streams. The other replicas run the same step on the same links: their flows are in the
weights of each route (`topology`), so NIC and uplink contention is modelled without
simulating them. After every rank's gradients are reduced (the global gradient-norm
synchronisation), each rank runs its optimizer step (memory-bound AdamW).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import simpy

from simulator.costmodel.framework import copies_time, copy_bytes, host_times
from simulator.costmodel.memory import logits_bytes
from simulator.costmodel.timing import copy_time
from simulator.des.collectives import Collective, for_group
from simulator.des.device import Device
from simulator.des.engine import Job, Sim
from simulator.des.work import (
    Blocking,
    Compute,
    GradReady,
    Overlapped,
    ParamWait,
    RankWork,
    WorkBuilder,
    Zero3Gather,
    Zero3ReduceScatter,
)
from simulator.pipeline_split import physical_stage_layers
from simulator.plan.schedule import schedule
from simulator.plan.step import Buckets, StepPlan, activations, kept_params, step_plan

Gen = Generator[simpy.Event, Any, Any]
_STREAMS = {"comm_tp": "tp", "comm_cp": "cp", "comm_ep": "ep"}
"""Trace stream of a collective on (or beside) the compute stream, by its category."""


class Step:
    """One step of one pipeline replica: devices, their work and the events between them."""

    def __init__(
        self,
        sim: Sim,
        builder: WorkBuilder,
        devices: list[Device],
        builders: list[WorkBuilder] | None = None,
        cross: Callable[[int, int], Collective | None] | None = None,
    ) -> None:
        """`builders` (one per device, default `builder` for all) give each pipeline rank its
        own hardware and cluster (stages on different pools, `simulator.des.pools`); `cross`
        (device index, device index) -> the send collective between them when it crosses
        pools (None: the usual route)."""
        self.sim, self.b, self.devices = sim, builder, devices
        self.bs = builders if builders is not None else [builder] * len(devices)
        self.cross = cross
        w, opts = builder.w, builder.opts
        self.p = w.parallel
        self.opts = opts
        self.m = self.p.num_microbatches
        self.V = self.p.pp * self.p.vpp
        self.work: list[RankWork] = [
            self.bs[i].rank_work(d.rank, d.stage) for i, d in enumerate(devices)
        ]
        # layers on each pipeline rank (the builders' split: uneven over pools allowed)
        self.stage_layers = physical_stage_layers(builder.split, self.p.pp)
        self.arrive: dict[tuple[str, int, int], simpy.Event] = {}
        self.grad_ready: list[list[simpy.Event]] = []
        self.param_ready: list[dict[int, simpy.Event]] = [{} for _ in devices]
        self.dp_done: list[simpy.Event] = []
        self.z3_events: dict[tuple[int, str, int, int], simpy.Event] = {}
        self.end_rows: list[int] = []
        """Each rank's last activity (its optimizer step, or the parameter gather after it)."""
        # the step plan of each rank (`simulator.plan.step`): DP buckets, ZeRO-3 units, sends,
        # memory; this engine executes it, the closed form evaluates the same entries
        p, model = self.p, w.model
        act = activations(
            model, p.micro_batch_size, w.seq_len, p.tp, p.cp, p.sequence_parallel, p.recompute,
            builder.e, opts, p.ep, p.expert_tp,
        )  # fmt: skip
        logits = logits_bytes(model, p.micro_batch_size, w.seq_len, p.tp, p.cp)
        self.plans: list[StepPlan] = [
            step_plan(
                model, p.precision, opts, tp=p.tp, cp=p.cp, dp=p.dp, pp=p.pp, vpp=p.vpp,
                zero=p.zero_stage, dense=wk.params, expert=wk.expert_params, edp=p.expert_dp,
                estride=p.expert_tp * p.ep, layers=self.stage_layers[d.stage],
                has_emb=d.stage == 0, has_head=d.stage == p.pp - 1,
                p2p_bytes=float(builder.msg.p2p), act_per_layer=float(act),
                logits=float(logits), microbatches=self.m,
            )
            for d, wk in zip(devices, self.work, strict=True)
        ]  # fmt: skip
        for dev, pl in zip(devices, self.plans, strict=True):
            mem = pl.memory
            dev.memory.static = {
                "weights": mem.weights,
                "gradients": mem.gradients,
                "optimizer": mem.optimizer,
            }
        # bytes per element moved: compute-dtype weights, gradients as the options say
        self.w_bytes, self.g_bytes = self.plans[0].w_bytes, self.plans[0].g_bytes
        self._colls: dict[tuple[int, str, float], Collective] = {}
        self._declare_users()

    def _declare_users(self) -> None:
        """Tell the cluster which streams send on which routes (see `Cluster.private`)."""
        p = self.p
        for i, d in enumerate(self.devices):
            cl = self.bs[i].cluster
            if p.dp > 1:
                streams = ("zero3 gather", "zero3 reduce") if p.zero_stage == 3 else ("dp",)
                for st in streams:
                    cl.group_route(d.rank, "dp", (d.rank, st))
        for v in range(self.V - 1):
            i, j = v % p.pp, (v + 1) % p.pp
            a, b = self.devices[i].rank, self.devices[j].rank
            # sends are asynchronous: two of them may overlap, so never "private"
            for n in (0, 1):
                for src, dst, x, y in ((i, j, a, b), (j, i, b, a)):
                    cross = self.cross(src, dst) if self.cross is not None else None
                    if cross is not None:
                        for ph in cross.phases:
                            self.bs[src].cluster.use(ph.route, ("pp send", x, y, n))
                    else:
                        self.bs[src].cluster.p2p_route(x, y, ("pp send", x, y, n))

    # ---- set-up ----------------------------------------------------------------------------
    def start(self) -> simpy.Event:
        """Start every process; the returned event fires when the step ends."""
        env = self.sim.env
        experts = self.p.expert_dp > 1 and any(wk.expert_params > 0 for wk in self.work)
        bucketed = (self.p.dp > 1 or experts) and self.p.zero_stage in (0, 1, 2)
        for i, _dev in enumerate(self.devices):
            pieces = self.work[i].grad_pieces
            self.grad_ready.append([env.event() for _ in pieces] if bucketed else [])
            if bucketed and self.p.zero_stage in (1, 2) and self.opts.overlap_param_gather:
                self._param_gather(i)
        procs = [env.process(self._pipeline(i)) for i in range(len(self.devices))]
        for i in range(len(self.devices)):
            self.dp_done.append(self._grad_sync(i, procs[i]) if bucketed else procs[i])
        return env.process(self._finish())

    def _dp_coll(self, i: int, kind: str, size: float, stream: str = "dp") -> Collective:
        key = (i, kind, size)
        if key not in self._colls:
            dev, b = self.devices[i], self.bs[i]
            pl = b.cluster.placement
            route = b.cluster.group_route(dev.rank, "dp", (dev.rank, stream))
            self._colls[key] = for_group(b.hw, kind, size, self.p.dp, pl.stride("dp"), route)
        return self._colls[key]

    def _grad_sync(self, i: int, proc: simpy.Event) -> simpy.Event:
        """Queue every gradient collective of rank i's plan (`StepPlan.grads`, in its order)
        on the DP stream, bucket by bucket; returns the last one's event."""
        done: simpy.Event = proc
        ready = self.grad_ready[i]
        overlap = self.opts.overlap_grad_reduce
        for b in _runs(self.plans[i].grads):
            # each bucket as soon as the piece holding its last byte is final; without
            # overlap every bucket waits for the whole backward
            for k, (nbytes, piece) in enumerate(b.split(self._pieces(i, b, "grad"), True)):
                done = self._submit(i, b, k, nbytes, ready=ready[piece if overlap else -1])
        return self.sim.env.all_of([proc, done])

    def _param_gather(self, i: int, issued: int = -1) -> simpy.Event:
        """ZeRO-1/2: gather the updated parameters (`StepPlan.params`) in forward order
        (overlapped: at the step's start, behind the first forward; otherwise after the
        optimizer); each unit's first forward waits for the bucket holding it. Returns the
        last one's event."""
        ev = self.devices[i].stream("dp").tail
        ready = self.param_ready[i]
        for b in _runs(self.plans[i].params):
            for k, (nbytes, unit) in enumerate(b.split(self._pieces(i, b, "param"), False)):
                ev = self._submit(i, b, k, nbytes, issued=issued)
                if b.dim == "dp":
                    for u in range(unit + 1):
                        ready.setdefault(u, ev)
                else:  # needed by the first forward too: by its last unit at the latest
                    ready[len(self.work[i].units) - 1] = ev
        return ev

    def _pieces(self, i: int, b: Buckets, what: str) -> list[float]:
        """Bytes of entry `b` per piece, in the order they become ready: the dense gradients
        as the last backward finalises them ("grad"), the dense parameters unit by unit in
        forward order ("param"); the routed experts' as one piece (their gradients are final
        from the last backward's first layer on)."""
        if b.dim != "dp":
            return [float(b.total)]
        params = self.work[i].grad_pieces if what == "grad" else self.work[i].units
        scale = float(b.total) / max(sum(params), 1e-30)
        return [x * scale for x in params]

    def _submit(self, i: int, b: Buckets, k: int, nbytes: float, **job: Any) -> simpy.Event:
        """Bucket `k` of entry `b` on rank i's DP stream."""
        if b.dim == "dp":
            coll = self._dp_coll(i, b.kind, nbytes)
        else:
            coll = self._expert_coll(i, b.kind, nbytes)
        name = f"{'dp' if b.dim == 'dp' else 'expert'} {b.name} {b.kind} {k}"
        group = (self.devices[i].rank, b.dim)
        return self.devices[i].stream("dp").submit(Job(coll, name, "comm_dp", group=group, **job))

    def _expert_coll(self, i: int, kind: str, size: float) -> Collective:
        """A collective of rank i's expert data-parallel group (etp * ep apart)."""
        p = self.p
        rank = self.devices[i].rank
        stride = p.expert_tp * p.ep
        b = self.bs[i]
        route = b.cluster.strided_route(rank, p.expert_dp, stride, (rank, "dp"))
        return for_group(b.hw, kind, size, p.expert_dp, stride, route)

    # ---- the pipeline --------------------------------------------------------------------------
    def _event(self, key: tuple[str, int, int]) -> simpy.Event:
        if key not in self.arrive:
            self.arrive[key] = self.sim.env.event()
        return self.arrive[key]

    def _pipeline(self, i: int) -> Gen:
        dev = self.devices[i]
        for kind, c, mb in schedule(self.p.pp, self.p.vpp, self.m, dev.stage):
            yield from self._pass(i, kind, c, mb)

    def _pass(self, i: int, kind: str, c: int, mb: int) -> Gen:
        sim, dev, rec = self.sim, self.devices[i], self.sim.rec
        env = sim.env
        v = c * self.p.pp + dev.stage
        fwd = kind == "F"
        need = v > 0 if fwd else v < self.V - 1
        cursor = dev.last
        if need:
            ev = self._event((kind, v, mb))
            if not ev.processed:
                yield ev
            cursor = rec.later(cursor, ev.value)
        chunk = self.work[i].chunks[c]
        last_bwd = not fwd and mb == self.m - 1 and bool(self.grad_ready[i])
        prog = chunk.fwd if fwd else (chunk.bwd_last if last_bwd else chunk.bwd)
        gathered = -1
        for ins in prog:
            if isinstance(ins, Compute):
                start = env.now
                yield dev.run_kernel(dev.duration(ins.seconds))
                cursor = rec.add(
                    rank=dev.rank,
                    stream="compute",
                    name=ins.name,
                    category=ins.category,
                    start=start,
                    end=env.now,
                    mb=mb,
                    layer=ins.layer,
                    pred=cursor,
                )
            elif isinstance(ins, Blocking):
                start = env.now
                yield from sim.collective(ins.coll)
                cursor = rec.add(
                    rank=dev.rank,
                    stream=_STREAMS.get(ins.category, "tp"),
                    name=ins.name,
                    category=ins.category,
                    start=start,
                    end=env.now,
                    mb=mb,
                    layer=ins.layer,
                    pred=cursor,
                    wire_bytes=ins.coll.wire_bytes,
                )
            elif isinstance(ins, Overlapped):
                start = env.now
                comm = env.process(self._beside(dev, ins.coll))
                yield dev.run_kernel(dev.duration(ins.seconds))
                a = rec.add(
                    rank=dev.rank,
                    stream="compute",
                    name=ins.name,
                    category=ins.category,
                    start=start,
                    end=env.now,
                    mb=mb,
                    layer=ins.layer,
                    pred=cursor,
                )
                if not comm.processed:
                    yield comm
                # the comm row is released by the kernel beside it: only its excess is exposed
                b = rec.add(
                    rank=dev.rank,
                    stream=_STREAMS.get(ins.comm_category, "cp"),
                    name=ins.coll.kind,
                    category=ins.comm_category,
                    start=start,
                    end=env.now,
                    mb=mb,
                    layer=ins.layer,
                    pred=a,
                    wire_bytes=ins.coll.wire_bytes,
                )
                cursor = rec.later(a, b)
            elif isinstance(ins, GradReady):
                self.grad_ready[i][ins.piece].succeed(cursor)
            elif isinstance(ins, ParamWait):
                if mb == 0 and fwd:
                    ev = self.param_ready[i].get(ins.unit)
                    if ev is not None:
                        if not ev.processed:
                            yield ev
                        cursor = rec.later(cursor, ev.value)
            elif isinstance(ins, Zero3Gather):
                ev = self._z3_gather(i, kind, mb, ins.unit, cursor)
                # past the prefetch limit: the rest of the unit, fetched now, waited for
                rest = self._z3_rest(i, kind, mb, ins.unit, cursor)
                if ins.prefetch >= 0 and self.plans[i].zero3[0].prefetch > 0:
                    self._z3_gather(i, kind, mb, ins.prefetch, cursor)
                if not ev.processed:
                    yield ev
                cursor = rec.later(cursor, ev.value)
                if rest is not None:
                    if not rest.processed:
                        yield rest
                    cursor = rec.later(cursor, rest.value)
                self.z3_events.pop((i, kind, mb, ins.unit), None)
                if gathered >= 0:
                    dev.memory.free("zero3_buffers", self.work[i].units[gathered] * self.w_bytes)
                gathered = ins.unit
            elif isinstance(ins, Zero3ReduceScatter):
                ev = self._z3_reduce(i, mb, ins.unit, cursor)
                if self.plans[i].zero3[0].prefetch == 0:  # no overlap: wait for it
                    yield ev
                    cursor = rec.later(cursor, ev.value)
        if gathered >= 0:
            dev.memory.free("zero3_buffers", self.work[i].units[gathered] * self.w_bytes)
        dev.last = cursor
        last_v = v == self.V - 1
        mem = self.plans[i].memory
        if fwd:
            dev.memory.alloc("activations", mem.activations * self.b.split[v])
            if last_v:
                dev.memory.alloc("activations", mem.logits)
        else:
            chunk_act = mem.activations * self.b.split[v]
            dev.memory.free("activations", chunk_act + (mem.logits if last_v else 0.0))
        if fwd and v < self.V - 1:
            yield from self._send(i, ("F", v + 1, mb), cursor)
        elif not fwd and v > 0:
            yield from self._send(i, ("B", v - 1, mb), cursor)

    def _beside(self, dev: Device, coll: Collective) -> Gen:
        """A collective overlapped with compute on `dev` (slowing it while it runs)."""
        dev.comm(1)
        yield from self.sim.collective(coll)
        dev.comm(-1)

    def _send(self, i: int, key: tuple[str, int, int], cursor: int) -> Gen:
        j = key[1] % self.p.pp
        dst = self.devices[j]
        coll = self.cross(i, j) if self.cross is not None else None
        if coll is None:
            b = self.bs[i]
            route = b.cluster.p2p_route(self.devices[i].rank, dst.rank)
            coll = for_group(
                b.hw,
                "send_recv",
                float(self.plans[i].sends.nbytes),
                2,
                abs(dst.rank - self.devices[i].rank),
                route,
            )
        proc = self._transfer(i, key, coll, cursor)
        if self.opts.overlap_p2p:
            self.sim.env.process(proc)
        else:  # a blocking send holds its rank: the rank's next pass follows the send
            self.devices[i].last = yield from proc

    def _transfer(
        self, i: int, key: tuple[str, int, int], coll: Collective, cursor: int
    ) -> Generator[simpy.Event, Any, int]:
        env, rec = self.sim.env, self.sim.rec
        start = env.now
        yield from self.sim.collective(coll)
        name = ("send activations" if key[0] == "F" else "send gradients") + f" to v{key[1]}"
        row = rec.add(
            rank=self.devices[i].rank,
            stream="pp",
            name=name,
            category="comm_pp",
            start=start,
            end=env.now,
            mb=key[2],
            pred=cursor,
            wire_bytes=coll.wire_bytes,
        )
        self._event(key).succeed(row)
        return row

    # ---- ZeRO-3 --------------------------------------------------------------------------------
    def _z3_bytes(self, i: int, kind: str, unit: int) -> float:
        """Bytes of unit `unit`'s gather before pass `kind` ("F" or "B"): none before the
        backward of a unit that stays gathered (`plan.step.regathers`)."""
        keep = 1.0 if kind == "F" else self.work[i].units_regather[unit]
        return keep * self.work[i].units[unit] * self.w_bytes

    def _z3_rest(self, i: int, kind: str, mb: int, unit: int, issued: int) -> simpy.Event | None:
        """The part of unit `unit`'s gather past the prefetch limit, issued now (None: none)."""
        share = self.work[i].units_ahead[unit]
        if share >= 1.0:
            return None
        nbytes = (1.0 - share) * self._z3_bytes(i, kind, unit)
        return self._z3_submit_gather(i, nbytes, mb, issued)

    def _z3_submit_gather(self, i: int, nbytes: float, mb: int, issued: int) -> simpy.Event:
        """Submit a ZeRO-3 all-gather of `nbytes` on device `i`'s gather stream; its buffer is
        allocated when it lands."""
        dev = self.devices[i]
        job = Job(
            self._dp_coll(i, "all_gather", nbytes, "zero3 gather"),
            "zero3 all_gather",
            "comm_zero3",
            mb=mb,
            issued=issued,
            group=(dev.rank, "dp"),
            on_done=lambda _r: dev.memory.alloc("zero3_buffers", nbytes),
        )
        return dev.stream("zero3 gather").submit(job)

    def _z3_gather(self, i: int, kind: str, mb: int, unit: int, issued: int) -> simpy.Event:
        key = (i, kind, mb, unit)
        if key not in self.z3_events:
            nbytes = self.work[i].units_ahead[unit] * self._z3_bytes(i, kind, unit)
            self.z3_events[key] = self._z3_submit_gather(i, nbytes, mb, issued)
        return self.z3_events[key]

    def _z3_reduce(self, i: int, mb: int, unit: int, issued: int) -> simpy.Event:
        dev = self.devices[i]
        nbytes = self.work[i].units[unit] * self.g_bytes
        dev.memory.alloc("zero3_buffers", nbytes)
        job = Job(
            self._dp_coll(i, "reduce_scatter", nbytes, "zero3 reduce"),
            "zero3 reduce_scatter",
            "comm_zero3",
            mb=mb,
            issued=issued,
            group=(dev.rank, "dp"),
            on_done=lambda _r: dev.memory.free("zero3_buffers", nbytes),
        )
        return dev.stream("zero3 reduce").submit(job)

    # ---- the end of the step ---------------------------------------------------------------
    def _finish(self) -> Gen:
        """Gradient-norm barrier over all ranks, then each rank's optimizer step."""
        env, rec = self.sim.env, self.sim.rec
        yield env.all_of(self.dp_done)
        yield env.all_of([st.tail for dev in self.devices for st in dev.streams.values()])
        pred = -1
        for dev in self.devices:
            pred = rec.later(pred, dev.last)
            for st in dev.streams.values():
                pred = rec.later(pred, st.last)
        procs = [env.process(self._optimizer(i, pred)) for i in range(len(self.devices))]
        yield env.all_of(procs)

    def _optimizer(self, i: int, pred: int) -> Gen:
        dev, acc = self.devices[i], self.bs[i].hw.accelerator
        p = self.p
        wk = self.work[i]
        shape = (wk.params + wk.expert_params, p.dp, p.zero_stage, self.m, self.w_bytes,
                 self.g_bytes)  # fmt: skip
        kept = kept_params(self.plans[i].zero3)
        copies = copy_bytes(*shape, self.opts, kept=kept)
        t_copies = float(copies_time(acc, copies, self.bs[i].hw.host))
        if t_copies > 0:  # the framework's buffer copies (costmodel.framework)
            pred = yield from self._kernel(dev, t_copies, "buffer copies", "copies", pred)
        n_layers = self.stage_layers[dev.stage]
        t_host, t_hooks = host_times(
            self.bs[i].hw.host,
            self.b.w.model,
            n_layers,
            p.zero_stage,
            self.m,
            self.opts,
            p.precision,
        )
        if float(t_hooks) > 0:  # FSDP2's hooks, host time per unit (costmodel.framework)
            pred = yield from self._kernel(dev, float(t_hooks), "framework hooks", "hooks", pred)
        local = self.plans[i].optimizer_params  # the rank's ZeRO shard
        t = float(copy_time(acc, local * self.opts.optimizer_bytes_per_param)) + float(t_host)
        row = yield from self._kernel(dev, t, "optimizer step", "optimizer", pred)
        if self.p.zero_stage in (1, 2) and self.p.dp > 1 and not self.opts.overlap_param_gather:
            ev = self._param_gather(i, issued=row)
            yield ev
            row = self.sim.rec.later(row, ev.value)
        self.end_rows.append(row)
        dev.last = row

    def _kernel(self, dev: Device, seconds: float, name: str, category: str, pred: int) -> Gen:
        """Run one kernel outside any micro-batch on `dev`; returns its row."""
        env = self.sim.env
        start = env.now
        yield dev.run_kernel(dev.duration(seconds))
        return self.sim.rec.add(
            rank=dev.rank,
            stream="compute",
            name=name,
            category=category,
            start=start,
            end=env.now,
            pred=pred,
        )


def _runs(entries: tuple[Buckets, ...]) -> list[Buckets]:
    """The plan's entries this layout runs (a group of one moves nothing)."""
    return [b for b in entries if bool(b.where) and b.group > 1 and b.total > 0]
