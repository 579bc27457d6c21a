"""What one pipeline rank executes, as programs of instructions built from the cost model.

Every duration comes from `simulator.costmodel` (op lists, `timing.op_times`, the collectives'
alpha-beta times through `collectives.for_group`); nothing is re-derived here. A program is the
instruction list of one pass (forward or backward of one micro-batch through one model chunk).

The layer's kernel order, its TP/CP collectives, the kernel each may overlap and the message
sizes come from the step plan (`simulator.plan.layer`), which the closed form evaluates too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwprofiles.profile import HardwareProfile
from simulator.costmodel.ops import embedding_ops
from simulator.costmodel.stack import stack_head_ops, stack_layer_ops
from simulator.costmodel.timing import ACT_BYTES, op_times
from simulator.des import moe
from simulator.des.collectives import Collective, for_group
from simulator.des.topology import Cluster
from simulator.parallel import Workload
from simulator.pipeline_split import chunk_offsets
from simulator.plan.layer import (
    LayerCollective,
    a2a_window,
    cp_collective,
    ep_all_to_alls,
    kernel_order,
    messages,
    mlp_names,
    tp_collectives,
)
from simulator.plan.step import end_params as plan_end_params
from simulator.plan.step import layer_unit_params, regathers
from simulator.plan.step import prefetch_share as share


@dataclass(frozen=True, slots=True)
class Compute:
    """A kernel on the compute stream."""

    seconds: float
    name: str
    category: str
    layer: int


@dataclass(frozen=True, slots=True)
class Blocking:
    """A collective on the compute stream: the next kernel waits for it."""

    coll: Collective
    name: str
    category: str
    layer: int


@dataclass(frozen=True, slots=True)
class Overlapped:
    """A kernel with a collective beside it on a communication stream (`comm_category`)."""

    seconds: float
    name: str
    category: str
    coll: Collective
    comm_category: str
    layer: int


@dataclass(frozen=True, slots=True)
class GradReady:
    """The gradients of piece `piece` are final (last backward only)."""

    piece: int


@dataclass(frozen=True, slots=True)
class ParamWait:
    """ZeRO-1/2: wait until unit `unit`'s parameters are gathered (first micro-batch)."""

    unit: int


@dataclass(frozen=True, slots=True)
class Zero3Gather:
    """ZeRO-3: wait until unit `unit` is gathered; prefetch `prefetch` (-1: none)."""

    unit: int
    prefetch: int


@dataclass(frozen=True, slots=True)
class Zero3ReduceScatter:
    """ZeRO-3: reduce-scatter unit `unit`'s gradients."""

    unit: int


Instr = Compute | Blocking | Overlapped | GradReady | ParamWait | Zero3Gather | Zero3ReduceScatter


def op_params(w: Workload) -> dict[str, float]:
    """Parameters (per TP rank) whose gradients each op's backward produces."""
    m, tp = w.model, w.parallel.tp
    h, f = m.hidden_size, m.intermediate_size
    proj = m.attention_out_params()
    down = f * h + (h if m.bias else 0)
    norm = m.norm_params() / 2
    dense = 1.0 - m.moe_fraction  # share of layers with a dense MLP (MoE: average layer)
    out = {
        "attention/norm": norm,
        "attention/qkv": m.attention_params() - proj,
        "attention/proj": proj,
        "mlp/norm": norm,
        "mlp/up": dense * (m.mlp_params() - down),
        "mlp/down": dense * down,
    }
    out = {k: v for k, v in out.items() if v > 0 or not k.startswith("mlp/")}
    return {k: v / tp for k, v in out.items()} | (moe.moe_op_params(w) if m.is_moe else {})


def end_params(w: Workload) -> tuple[float, float]:
    """(first-stage extra, last-stage extra) parameters per TP rank beyond the layers, as the
    step plan counts them (`simulator.plan.step.end_params`)."""
    emb, head = plan_end_params(w.model, w.parallel.tp, w.parallel.pp)
    return float(emb), float(head)


@dataclass
class ChunkPrograms:
    """The three programs of one model chunk on one rank."""

    fwd: list[Instr]
    bwd: list[Instr]
    bwd_last: list[Instr]
    """Backward of the last micro-batch: kernel by kernel, marking gradients as final."""


@dataclass
class RankWork:
    """Everything one pipeline rank runs in a step."""

    chunks: dict[int, ChunkPrograms] = field(default_factory=dict)
    grad_pieces: list[float] = field(default_factory=list)
    """Parameters per gradient piece, in the order backward finalises them."""
    units: list[float] = field(default_factory=list)
    """Parameters per unit (embedding, each layer, head) in forward order (ZeRO-1/2/3)."""
    units_ahead: list[float] = field(default_factory=list)
    """Share of each unit's ZeRO-3 gather issued ahead under the prefetch limit
    (`plan.step.prefetch_share`); the rest is gathered when the unit computes."""
    units_regather: list[float] = field(default_factory=list)
    """Gathers of each unit before its backward (`plan.step.regathers`: 0 if it stays
    gathered from its forward, torch FSDP2's root)."""
    params: float = 0.0
    """Dense parameters (reduced over the data-parallel group)."""
    expert_params: float = 0.0
    """Routed-expert parameters (reduced over the expert data-parallel group)."""


class WorkBuilder:
    """Builds `RankWork` for each pipeline rank of one workload on one cluster."""

    def __init__(self, w: Workload, hw: HardwareProfile, cluster: Cluster, opts: Any) -> None:
        self.w, self.hw, self.cluster, self.opts = w, hw, cluster, opts
        p, m, s = w.parallel, w.model, w.seq_len
        self.e = ACT_BYTES[p.precision]
        acc = hw.accelerator
        ops = stack_layer_ops(
            m, p.micro_batch_size, s, p.tp, p.cp, p.sequence_parallel, p.precision, opts,
            p.ep, p.expert_tp,
        )  # fmt: skip
        self.t: dict[str, list[float]] = {}
        for op in ops:  # ops sharing a name (fp8 casts of each GEMM) run as one kernel here
            tf, tb = (float(x) for x in op_times(acc, op, p.precision))
            acc_t = self.t.setdefault(op.name, [0.0, 0.0])
            acc_t[0] += tf
            acc_t[1] += tb
        self.order = kernel_order(list(self.t))
        self.names = mlp_names(self.order)  # a MoE-only layer's stand-ins for mlp/up, down
        self._a2a: dict[int, Collective] = {}
        self.selective = [op.name for op in ops if op.recompute_selective]
        self.head = [
            sum(
                float(op_times(acc, o, p.precision)[i])
                for o in stack_head_ops(m, p.micro_batch_size, s, p.tp, p.cp, p.precision, opts)
            )
            for i in (0, 1)
        ]
        self.emb = [
            sum(
                float(op_times(acc, o, p.precision)[i])
                for o in embedding_ops(m, p.micro_batch_size, s, p.cp, self.e)
            )
            for i in (0, 1)
        ]
        self.op_params = op_params(w)
        self.msg = messages(m, p.micro_batch_size, s, p.tp, p.cp, self.e)
        self.split = w.split  # layers of each virtual stage (uneven splits allowed)
        self.offsets = chunk_offsets(self.split)

    def a2a(self, rank: int) -> Collective:
        """`rank`'s expert-parallel all-to-all (one dispatch or combine, average layer)."""
        if rank not in self._a2a:
            self._a2a[rank] = moe.a2a_collective(self.w, self.hw, self.cluster, rank, self.opts)
        return self._a2a[rank]

    def collective(self, rank: int, lc: LayerCollective) -> Collective:
        """The layer collective `lc` of global rank `rank`, sized by the plan's messages."""
        size = self.msg.tp if lc.dim == "tp" else self.msg.cp
        return self.coll(rank, lc.dim, lc.kind, float(size))

    def coll(self, rank: int, dim: str, kind: str, size: float) -> Collective:
        pl = self.cluster.placement
        route = self.cluster.group_route(rank, dim, (rank, "compute" if dim == "tp" else dim))
        return for_group(self.hw, kind, size, pl.size(dim), pl.stride(dim), route)

    # ---- one layer -----------------------------------------------------------------------
    def layer(
        self,
        rank: int,
        layer: int,
        backward: bool,
        category: str,
        pieces: list[float] | None = None,
    ) -> list[Instr]:
        """Instructions of one layer's forward (or backward) pass.

        With `pieces` (the last backward), kernels are kept separate and each one that
        finalises gradients is followed by a `GradReady` mark; the piece sizes are appended.
        """
        p, opts = self.w.parallel, self.opts
        colls = tp_collectives(backward, p.sequence_parallel, self.names) if p.tp > 1 else {}
        a2a = self.a2a(rank) if p.ep > 1 and self.w.model.is_moe else None
        # the expert-parallel all-to-alls (plan.layer.ep_all_to_alls): beside their partner
        # kernel when overlapped, else blocking just before / after their kernel
        windows = {
            a: a2a_window(a, self.t, opts.moe_a2a_overlap, opts.moe_a2a_overlap_1f1b)
            for a in ep_all_to_alls(backward)
        }
        beside_a2a = {k for k in windows.values() if k is not None} if a2a is not None else set()
        blocking = [a for a, k in windows.items() if k is None] if a2a is not None else []
        names = list(reversed(self.order)) if backward else self.order
        out: list[Instr] = []
        pending: dict[str, tuple[Collective, str]] = {}  # partner kernel -> collective waiting
        if p.cp > 1:  # the K/V exchange always runs beside the attention kernel
            cpc = cp_collective(backward)
            pending[cpc.partner] = (self.collective(rank, cpc), cpc.category)
        recomputed = False
        for name in names:
            dur = self.t[name][1 if backward else 0]
            if (
                backward
                and p.recompute == "selective"
                and not recomputed
                and (name in self.selective)
            ):
                rc = sum(self.t[n][0] for n in self.selective)
                out.append(Compute(rc, "recompute attention", "recompute", layer))
                recomputed = True
            for a in blocking:
                if a.at == name and a.where == "before":
                    out.append(Blocking(a2a, "ep all_to_all", a.category, layer))
            beside = pending.pop(name, None)
            if name in beside_a2a:
                out.append(Overlapped(dur, name, category, a2a, "comm_ep", layer))
            elif beside is not None:
                out.append(Overlapped(dur, name, category, beside[0], beside[1], layer))
            else:
                out.append(Compute(dur, name, category, layer))
            for a in blocking:
                if a.at == name and a.where == "after":
                    out.append(Blocking(a2a, "ep all_to_all", a.category, layer))
            if pieces is not None and name in self.op_params:
                out.append(GradReady(len(pieces)))
                pieces.append(self.op_params[name])
            lc = colls.get(name)
            if lc is None:
                continue
            coll = self.collective(rank, lc)
            if not (opts.overlap_tp_comm or (backward and opts.overlap_tp_comm_backward)):
                out.append(Blocking(coll, "tp " + lc.kind, lc.category, layer))
            elif lc.partner != name:
                pending[lc.partner] = (coll, lc.category)  # beside a later GEMM
            else:
                _beside_previous(out, name, coll, lc.category, layer)
        return out

    # ---- one rank ------------------------------------------------------------------------
    def rank_work(self, rank: int, stage: int) -> RankWork:
        """Programs of every chunk of pipeline rank `stage` (global rank `rank`)."""
        p = self.w.parallel
        V = p.pp * p.vpp
        emb_p, head_p = end_params(self.w)
        work = RankWork()
        lim = self.opts.zero3_prefetch_params if self.opts.overlap_param_gather else None
        # units in forward order (ZeRO): chunk ascending; embedding, layers, head
        unit_of: dict[tuple[int, str], int] = {}
        for c in range(p.vpp):
            v = c * p.pp + stage
            first = self.offsets[v]
            if v == 0:
                unit_of[(c, "emb")] = len(work.units)
                work.units.append(emb_p)
                work.units_ahead.append(float(share(self.w.model, p.tp, lim, "embedding")))
                work.units_regather.append(regathers(self.opts, "embedding"))
            for layer in range(first, first + self.split[v]):
                unit_of[(c, f"L{layer}")] = len(work.units)
                work.units.append(float(layer_unit_params(self.w.model, p.tp)))
                work.units_ahead.append(float(share(self.w.model, p.tp, lim)))
                work.units_regather.append(regathers(self.opts, "layer"))
            if v == V - 1:
                unit_of[(c, "head")] = len(work.units)
                work.units.append(head_p)
                work.units_ahead.append(float(share(self.w.model, p.tp, lim, "head")))
                work.units_regather.append(regathers(self.opts, "head"))
        work.params = sum(work.units)
        layers = sum(self.split[c * p.pp + stage] for c in range(p.vpp))
        work.expert_params = moe.expert_params(self.w, layers)
        # gradients are finalised chunk by chunk, last chunk first
        for c in reversed(range(p.vpp)):
            work.chunks[c] = self._chunk(rank, c, stage, unit_of, work.grad_pieces)
        return work

    def _chunk(
        self,
        rank: int,
        c: int,
        stage: int,
        unit_of: dict[tuple[int, str], int],
        pieces: list[float],
    ) -> ChunkPrograms:
        p = self.w.parallel
        V = p.pp * p.vpp
        v = c * p.pp + stage
        first = self.offsets[v]
        layers = list(range(first, first + self.split[v]))
        z3 = p.zero_stage == 3 and p.dp > 1
        z12 = p.zero_stage in (1, 2) and p.dp > 1
        emb_p, head_p = end_params(self.w)
        seq = ([("emb", -1)] if v == 0 else []) + [(f"L{i}", i) for i in layers]
        seq += [("head", -1)] if v == V - 1 else []
        units = [unit_of[(c, key)] for key, _ in seq]

        def unit_body(
            key: str,
            layer: int,
            backward: bool,
            out_pieces: list[float] | None,
        ) -> list[Instr]:
            d = 1 if backward else 0
            if key == "emb":
                body: list[Instr] = [Compute(self.emb[d], "embedding", "compute", -1)]
                size = emb_p
            elif key == "head":
                body = [Compute(self.head[d], "head", "compute", -1)]
                size = head_p
            else:
                body = []
                if backward and p.recompute == "full":
                    body += self.layer(rank, layer, False, "recompute")
                body += self.layer(rank, layer, backward, "compute", out_pieces)
                return body
            if out_pieces is not None and size > 0:
                body.append(GradReady(len(out_pieces)))
                out_pieces.append(size)
            return body

        fwd: list[Instr] = []
        for i, (key, layer) in enumerate(seq):
            if z3:
                nxt = units[i + 1] if i + 1 < len(units) else -1
                fwd.append(Zero3Gather(units[i], nxt))
            if z12:
                fwd.append(ParamWait(units[i]))
            fwd += unit_body(key, layer, False, None)
        programs = []
        for out_pieces in (None, pieces):
            prog: list[Instr] = []
            for i in reversed(range(len(seq))):
                key, layer = seq[i]
                if z3:
                    prog.append(Zero3Gather(units[i], units[i - 1] if i > 0 else -1))
                prog += unit_body(key, layer, True, out_pieces)
                if z3:
                    prog.append(Zero3ReduceScatter(units[i]))
            programs.append(prog)
        return ChunkPrograms(merge(fwd, "fwd"), merge(programs[0], "bwd"), programs[1])


def _beside_previous(
    out: list[Instr], name: str, coll: Collective, category: str, layer: int
) -> None:
    """Run `coll` beside kernel `name`, the last one emitted (TP comm overlap)."""
    for i in range(len(out) - 1, -1, -1):
        ins = out[i]
        if type(ins) is Compute and ins.name == name:
            out[i] = Overlapped(ins.seconds, ins.name, ins.category, coll, category, layer)
            return
    out.append(Blocking(coll, "tp " + coll.kind, category, layer))


def merge(prog: list[Instr], label: str) -> list[Instr]:
    """Merge runs of adjacent `Compute` instructions of one category into one (fewer events)."""
    out: list[Instr] = []
    for ins in prog:
        prev = out[-1] if out else None
        if type(ins) is Compute and type(prev) is Compute and prev.category == ins.category:
            name = label if ins.category == "compute" else ins.category
            out[-1] = Compute(prev.seconds + ins.seconds, name, prev.category, prev.layer)
        else:
            out.append(ins)
    return out
