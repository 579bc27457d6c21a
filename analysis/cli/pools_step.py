"""`llmcap simulate --hardware h100-sxm:256,a100-80gb:256`: one job's step over several pools."""

from __future__ import annotations

import copy
from typing import Any

import typer


def pools_from_file(file_spec: dict[str, Any] | None) -> str | None:
    """``[[cluster.pool]]`` tables (hardware, gpus) of a run file as "name:gpus,...", removed
    from `file_spec`; None when the file has none."""
    from hwprofiles.errors import UserError

    if not file_spec or file_spec.get("cluster", {}).get("pool") is None:
        return None
    tables = file_spec["cluster"].pop("pool")
    if not isinstance(tables, list) or not tables:
        raise UserError("cluster.pool", tables, "must be [[cluster.pool]] tables")
    parts = []
    for i, t in enumerate(tables):
        where = f"cluster.pool[{i}]"
        if not isinstance(t, dict) or set(t) != {"hardware", "gpus"}:
            raise UserError(where, t, "must have exactly hardware = NAME and gpus = N")
        if not isinstance(t["hardware"], str) or ":" in t["hardware"] or "," in t["hardware"]:
            raise UserError(f"{where}.hardware", t["hardware"], "must be a hardware name")
        g = t["gpus"]
        if isinstance(g, bool) or not isinstance(g, int) or g < 1:
            raise UserError(f"{where}.gpus", g, "must be an integer >= 1")
        parts.append(f"{t['hardware']}:{g}")
    return ",".join(parts)


def simulate_pools(
    file_spec: dict[str, Any] | None,
    over: dict[str, dict[str, Any]],
    hardware: str,
    engine: str,
    contention: bool,
    seed: int,
) -> dict[str, Any]:
    """Build the run as for one pool (the first; GPUs = the pools' total), then price its step
    with `analysis.hetero.hetero_step` over every pool."""
    from analysis.cluster.pools import parse_pools
    from analysis.hetero import PoolPart, hetero_step
    from analysis.runconfig import build_run, merge
    from hwprofiles.catalogue import load_profile
    from hwprofiles.errors import UserError

    specs = parse_pools(hardware)
    over = copy.deepcopy(over)
    total = sum(s.gpus for s in specs)
    given = over["cluster"].get("gpus")
    if given is not None and given != total:
        raise UserError("gpus", given, f"must equal the pools' total ({total}) or be left out")
    over["cluster"]["hardware"] = specs[0].hardware
    over["cluster"]["gpus"] = total
    run = build_run(merge(file_spec, over))
    parts = [PoolPart(load_profile(s.hardware), s.gpus) for s in specs]
    w = run.workload
    out = hetero_step(w.model, parts, w.parallel, w.seq_len, engine, run.options, contention, seed)
    out["model"] = w.model.name
    out["layout_note"] = run.layout_note
    return out


def render(result: dict[str, Any]) -> None:
    lay = result["layout"]
    pools = ", ".join(f"{p['hardware']}:{p['gpus']}" for p in result["pools"])
    typer.echo(
        f"{result['model']} over {pools}"
        f" ({result['engine']}): step {result['step_time_s']:.3f} s, gated by "
        f"{result['gated_by']}; tp {lay['tp']} pp {lay['pp']} dp {lay['dp']}, global batch "
        f"{lay['global_batch_size']} ({result['layout_note']})"
    )
    for p in result["pools"]:
        typer.echo(
            f"  {p['hardware']:12s} {p['gpus']:5d} GPUs  {p['replicas']:4d} replicas x "
            f"{p['microbatches_per_replica']:4d} micro-batches  its step {p['step_time_s']:.3f} s"
        )
    bw = result["cross_pool_scale_out_per_gpu_bytes_per_s"]
    typer.echo(f"  cross-pool ring at the slowest NIC: {bw / 1e9:.1f} GB/s per GPU per direction")
    for note in result.get("notes", []):
        typer.echo(f"  note: {note}")
