"""Which plan runs one job best over several pools: pipeline stages per pool, or replicas.

Two kinds of plan for pools of different GPUs (`analysis.pipeline_pools`, `analysis.hetero`):

- **pipeline**: every replica spans the pools; pool i hosts ``k_i = gpus_i pp / total``
  consecutive stages, layers balanced by speed. The search tries every pipeline depth that
  gives each pool a whole number of stages (only the given one when the run fixes pp), every
  order of the pools along the pipeline (which pool hosts the first stages: the first stage
  holds the most micro-batches' activations and the embedding, the last the output layer),
  and the balanced layer split of each (`balance_split`, memory permitting);
- **data**: the run's layout on every pool, micro-batches per replica shared out by speed
  (`analysis.hetero.hetero_step`).

The fastest plan whose stages fit in memory wins (closed form); `mode` forces one kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import permutations
from typing import Any

from analysis.hetero import PoolPart, hetero_step
from analysis.pipeline_pools import balance_split, stages_step
from hwprofiles.errors import UserError
from simulator.costmodel.crosspool import PoolLink, uplink_limited
from simulator.model import ModelSpec
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload

MODES = ("auto", "pipeline", "data")
MAX_PP = 64
"""Deepest pipeline the search tries (llmcap's own bound, well past published runs)."""


def pp_candidates(
    parts: Sequence[PoolPart], p: ParallelConfig, layers: int, fixed: bool
) -> list[int]:
    """Pipeline depths that give every pool a whole number (>= 1) of stages of tp x cp x dp
    ranks, with a whole number of micro-batches per replica."""
    total = sum(x.gpus for x in parts)
    out = []
    for pp in [p.pp] if fixed else range(len(parts), min(layers, MAX_PP) + 1):
        if pp < len(parts) or total % (p.tp * p.cp * pp):
            continue
        dp = total // (p.tp * p.cp * pp)
        if any(x.gpus * pp % total for x in parts):
            continue
        gbs = p.global_batch_size or p.micro_batch_size * dp
        if gbs % (p.micro_batch_size * dp):
            continue
        out.append(pp)
    return out


def pipeline_refusal(model: ModelSpec, p: ParallelConfig) -> UserError | None:
    """Why stages over pools cannot run this job (None: they can): vpp > 1, ZeRO-3, pinned
    first/last stage layers, a mixture-of-experts model (`simulator.des.pools.check_stages`)."""
    if p.vpp != 1:
        return UserError("vpp", p.vpp, "must be 1 with stages over pools (no interleaving)")
    if p.zero_stage == 3:
        return UserError("zero", 3, "must be 0, 1 or 2 with stages over pools")
    if model.is_moe:
        return UserError(
            "model",
            model.name,
            "is a mixture-of-experts model; stages over pools take dense models",
        )
    for name in ("first_stage_layers", "last_stage_layers"):
        if getattr(p, name) is not None:
            return UserError(
                name,
                getattr(p, name),
                "cannot be pinned with stages over pools (layers are split by speed)",
            )
    return None


def pipeline_plans(
    model: ModelSpec,
    parts: Sequence[PoolPart],
    p: ParallelConfig,
    seq_len: int,
    uplink: PoolLink,
    opts: Options,
    fixed_pp: bool,
) -> list[dict[str, Any]]:
    """Every pipeline-over-pools plan the search tries, fastest first (closed form)."""
    total = sum(x.gpus for x in parts)
    plans = []
    for pp in pp_candidates(parts, p, model.num_hidden_layers, fixed_pp):
        dp = total // (p.tp * p.cp * pp)
        cfg = replace(p, pp=pp, dp=dp)
        cfg = replace(cfg, global_batch_size=p.global_batch_size or p.micro_batch_size * dp)
        w = Workload(model, cfg, seq_len)
        for order in permutations(range(len(parts))):
            stage_hw = [
                parts[i].hardware for i in order for _ in range(parts[i].gpus * pp // total)
            ]
            split = balance_split(w, stage_hw, opts)
            r = stages_step(w, stage_hw, split, uplink, opts)
            r["workload"] = w
            r["order"] = [parts[i].hardware.name for i in order]
            r["fits_in_memory"] = all(s["fits_in_memory"] for s in r["stages"])
            plans.append(r)
    plans.sort(key=lambda r: (not r["fits_in_memory"], r["step_time_s"]))
    return plans


def choose(
    model: ModelSpec,
    parts: Sequence[PoolPart],
    p: ParallelConfig,
    seq_len: int,
    uplink: PoolLink,
    opts: Options,
    mode: str = "auto",
    fixed_pp: bool = False,
) -> dict[str, Any]:
    """The chosen plan and the alternatives (closed form); see the module docstring."""
    if mode not in MODES:
        raise UserError("pool_plan", mode, f"must be one of {', '.join(MODES)}")
    refusal = pipeline_refusal(model, p)
    if refusal is not None and mode == "pipeline":
        raise refusal
    pipes = []
    if mode != "data" and refusal is None:
        pipes = pipeline_plans(model, parts, p, seq_len, uplink, opts, fixed_pp)
    data = None
    if mode != "pipeline":
        try:
            data = hetero_step(model, parts, p, seq_len, "analytic", opts, uplink=uplink)
        except UserError:
            if mode == "data":
                raise
    if mode == "pipeline" and not pipes:
        raise UserError(
            "pool_plan", "pipeline", f"no pipeline depth gives every pool a whole number of "
            f"stages of tp*cp = {p.tp * p.cp} ranks (pools {[x.gpus for x in parts]})",
        )  # fmt: skip
    best = pipes[0] if pipes else None
    use_pipe = best is not None and (
        data is None or (best["fits_in_memory"] and best["step_time_s"] < data["step_time_s"])
    )
    alternatives = [
        {"plan": "pipeline", "pp": r["workload"].parallel.pp, "order": r["order"],
         "layers": [s["layers"] for s in r["stages"]], "step_time_s": r["step_time_s"],
         "fits_in_memory": r["fits_in_memory"]}
        for r in pipes[:6]
    ]  # fmt: skip
    if data is not None:
        alternatives.append({"plan": "data", "step_time_s": data["step_time_s"]})
    alternatives.sort(key=lambda a: a["step_time_s"])
    return {"plan": "pipeline" if use_pipe else "data", "pipeline": best, "data": data,
            "alternatives": alternatives}  # fmt: skip


def cross_summary(
    r: dict[str, Any], parts: Sequence[PoolPart], uplink: PoolLink, w: Workload
) -> dict[str, Any]:
    """The cross-pool link of a pipeline plan, JSON-ready."""
    p = w.parallel
    senders = p.tp * p.cp * p.dp
    hws = {x.hardware.name: x.hardware for x in parts}
    pairs = [(r["stages"][b]["hardware"], r["stages"][b + 1]["hardware"])
             for b in r["cross_pool"]["boundaries"]]  # fmt: skip
    return {
        "boundaries": [f"stage {b} -> {b + 1}" for b in r["cross_pool"]["boundaries"]],
        "uplink_bytes_per_s": uplink.bandwidth_bytes_per_s,
        "uplink_source": uplink.source,
        "senders": senders,
        "uplink_limited": any(uplink_limited(hws[a], hws[b], senders, uplink) for a, b in pairs),
        "send_s": r["cross_pool"]["send_s"],
        "busy_share": r["cross_pool"]["busy_share"],
        "exposed_s": r["cross_pool"]["exposed_s"],
        "exposed_share": r["cross_pool"]["exposed_s"] / r["step_time_s"],
    }
