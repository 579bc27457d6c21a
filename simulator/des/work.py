"""What one pipeline rank executes, as programs of instructions built from the cost model.

Every duration comes from `simulator.costmodel` (op lists, `timing.op_times`, the collectives'
alpha-beta times through `collectives.for_group`); nothing is re-derived here. A program is the
instruction list of one pass (forward or backward of one micro-batch through one model chunk).

The order of a layer's kernels and tensor-parallel collectives follows Megatron-LM:
forward ``norm, qkv, attention, proj, [AR], residual, norm, up, act, down, [AR], residual``;
the backward mirrors it, with the all-reduces of the `f` operators after the qkv and up
gradients. With sequence parallelism each all-reduce becomes an all-gather before the column-
parallel GEMM and a reduce-scatter after the row-parallel one (Korthikanti et al. 2022).
With `overlap_tp_comm` each TP collective runs beside its adjacent GEMM (Transformer Engine's
userbuffer overlap); context-parallel K/V exchange runs beside the attention kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwprofiles.profile import HardwareProfile
from simulator.costmodel.memory import expert_params_per_device, params_per_device
from simulator.costmodel.ops import embedding_ops
from simulator.costmodel.stack import stack_head_ops, stack_layer_ops
from simulator.costmodel.timing import ACT_BYTES, op_times
from simulator.des import moe
from simulator.des.collectives import Collective, for_group
from simulator.des.moe import MOE_GEMMS, MOE_ORDER
from simulator.des.topology import Cluster
from simulator.parallel import Workload


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

_FWD = [
    "attention/norm",
    "attention/qkv",
    "attention/core",
    "attention/softmax",
    "attention/proj",
    "attention/residual",
    "mlp/norm",
    *MOE_ORDER,
    "mlp/up",
    "mlp/act",
    "mlp/down",
    "mlp/residual",
]
# position of the TP collectives: (index in the op order it follows, kind without SP, with SP)
_TP_FWD = {"attention/norm": "AG", "attention/proj": "RS", "mlp/norm": "AG", "mlp/down": "RS"}
_TP_BWD = {"mlp/residual": "AG", "mlp/up": "RS", "attention/residual": "AG", "attention/qkv": "RS"}
_GEMMS = ("attention/qkv", "attention/proj", "mlp/up", "mlp/down", *MOE_GEMMS)


def op_params(w: Workload) -> dict[str, float]:
    """Parameters (per TP rank) whose gradients each op's backward produces."""
    m, tp = w.model, w.parallel.tp
    h, f = m.hidden_size, m.intermediate_size
    proj = h * h + (h if m.bias else 0)
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
    """(first-stage extra, last-stage extra) parameters per TP rank beyond the layers.

    The first stage's total is the cost model's `params_per_device` (the busiest device, whose
    gradients the closed form reduces); with pp > 1 the last stage holds its own copy of the
    output matrix, V*h/tp (Megatron); with pp = 1 the untied output matrix is the "head".
    """
    m, p = w.model, w.parallel
    body = m.num_hidden_layers / p.pp * (m.layer_params() - m.expert_layer_params()) / p.tp
    head = (m.vocab_size * m.hidden_size if p.pp > 1 else m.lm_head_params()) / p.tp
    dense = params_per_device(m, p.tp, p.pp, p.ep, p.expert_tp) - expert_params_per_device(
        m, p.tp, p.pp, p.ep, p.expert_tp
    )
    first = float(dense) - body - (head if p.pp == 1 else 0.0)
    return first, head


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
        self.order = _kernel_order(list(self.t))
        self.tp_alias = moe.tp_aliases(self.order)
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
        self.act_bytes = p.micro_batch_size * s / p.cp * m.hidden_size * self.e
        self.kv_bytes = p.micro_batch_size * s * 2 * m.kv_size * self.e / min(p.tp, m.kv_heads)
        self.p2p_bytes = self.act_bytes / p.tp
        self.layers_per_chunk = m.num_hidden_layers // (p.pp * p.vpp)

    def a2a(self, rank: int) -> Collective:
        """`rank`'s expert-parallel all-to-all (one dispatch or combine, average layer)."""
        if rank not in self._a2a:
            self._a2a[rank] = moe.a2a_collective(self.w, self.hw, self.cluster, rank, self.opts)
        return self._a2a[rank]

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
        sp = p.sequence_parallel
        cp_coll = None
        if p.cp > 1:
            kind = "reduce_scatter" if backward else "all_gather"
            cp_coll = self.coll(rank, "cp", kind, self.kv_bytes)
        names = list(reversed(self.order)) if backward else self.order
        out: list[Instr] = []
        pending: Collective | None = None  # an all-gather waiting for the GEMM it feeds
        a2a = self.a2a(rank) if p.ep > 1 and self.w.model.is_moe else None
        a2a_beside = a2a is not None and opts.moe_a2a_overlap and "moe/shared" in self.t
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
            before = "moe/experts_down" if backward else "moe/experts_up"
            if a2a is not None and name == before and not (a2a_beside and not backward):
                # combine's gradient (backward) or dispatch (forward, unless beside the shared
                # experts above)
                out.append(Blocking(a2a, "ep all_to_all", "comm_ep", layer))
            if name == "moe/shared" and a2a_beside:
                # dispatch forward (shared experts run first) or its gradient backward (they
                # run right after the experts' backward) beside the shared experts
                out.append(Overlapped(dur, name, category, a2a, "comm_ep", layer))
            elif name == "attention/core" and cp_coll is not None:
                out.append(Overlapped(dur, name, category, cp_coll, "comm_cp", layer))
            elif pending is not None and name in _GEMMS:
                out.append(Overlapped(dur, name, category, pending, "comm_tp", layer))
                pending = None
            else:
                out.append(Compute(dur, name, category, layer))
            after = "moe/experts_up" if backward else "moe/experts_down"
            if a2a is not None and name == after and not (a2a_beside and backward):
                out.append(Blocking(a2a, "ep all_to_all", "comm_ep", layer))
            if pieces is not None and name in self.op_params:
                out.append(GradReady(len(pieces)))
                pieces.append(self.op_params[name])
            point = _tp_point(self.tp_alias.get(name, name), backward, sp)
            if point is None or p.tp == 1:
                continue
            kind = {"AR": "all_reduce", "AG": "all_gather", "RS": "reduce_scatter"}[point]
            coll = self.coll(rank, "tp", kind, self.act_bytes)
            if not opts.overlap_tp_comm:
                out.append(Blocking(coll, "tp " + kind, "comm_tp", layer))
            elif point == "AG":
                pending = coll  # overlaps the column-parallel GEMM that consumes it
            else:
                _fuse_with_previous_gemm(out, coll, layer)
        return out

    # ---- one rank ------------------------------------------------------------------------
    def rank_work(self, rank: int, stage: int) -> RankWork:
        """Programs of every chunk of pipeline rank `stage` (global rank `rank`)."""
        p = self.w.parallel
        V = p.pp * p.vpp
        emb_p, head_p = end_params(self.w)
        work = RankWork()
        # units in forward order (ZeRO): chunk ascending; embedding, layers, head
        unit_of: dict[tuple[int, str], int] = {}
        for c in range(p.vpp):
            v = c * p.pp + stage
            first = v * self.layers_per_chunk
            if v == 0:
                unit_of[(c, "emb")] = len(work.units)
                work.units.append(emb_p)
            for layer in range(first, first + self.layers_per_chunk):
                unit_of[(c, f"L{layer}")] = len(work.units)
                m = self.w.model
                work.units.append((m.layer_params() - m.expert_layer_params()) / p.tp)
            if v == V - 1:
                unit_of[(c, "head")] = len(work.units)
                work.units.append(head_p)
        work.params = sum(work.units)
        work.expert_params = moe.expert_params(self.w, p.vpp * self.layers_per_chunk)
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
        first = v * self.layers_per_chunk
        layers = list(range(first, first + self.layers_per_chunk))
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


def _kernel_order(names: list[str]) -> list[str]:
    """Forward order of a layer's kernels: Megatron's for the known ones; any other kernel of
    the cost model (e.g. fp8 casts) runs after the last GEMM of its block."""
    order = [n for n in _FWD if n in names]
    for n in names:
        if n not in order:
            anchor = "attention/proj" if n.startswith("attention/") else "mlp/down"
            order.insert(order.index(anchor) + 1 if anchor in order else len(order), n)
    return order


def _tp_point(name: str, backward: bool, sp: bool) -> str | None:
    """The TP collective that follows kernel `name`, if any ("AR", "AG" or "RS")."""
    if sp:
        return (_TP_BWD if backward else _TP_FWD).get(name)
    ar_after = ("attention/qkv", "mlp/up") if backward else ("attention/proj", "mlp/down")
    return "AR" if name in ar_after else None


def _fuse_with_previous_gemm(out: list[Instr], coll: Collective, layer: int) -> None:
    """Run `coll` beside the row-parallel GEMM just before it (TP comm overlap)."""
    for i in range(len(out) - 1, -1, -1):
        ins = out[i]
        if type(ins) is Compute and ins.name in _GEMMS:
            out[i] = Overlapped(ins.seconds, ins.name, ins.category, coll, "comm_tp", layer)
            return
    out.append(Blocking(coll, "tp " + coll.kind, "comm_tp", layer))


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
