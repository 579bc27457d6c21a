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


def pool_settings(file_spec: dict[str, Any] | None) -> tuple[float | None, str | None]:
    """(`[cluster] pool_uplink_gb_per_s`, `pool_plan`) of a run file, removed from it."""
    c = (file_spec or {}).get("cluster", {})
    return c.pop("pool_uplink_gb_per_s", None), c.pop("pool_plan", None)


def simulate_pools(
    file_spec: dict[str, Any] | None,
    over: dict[str, dict[str, Any]],
    hardware: str,
    engine: str,
    contention: bool,
    seed: int,
    pool_plan: str | None = None,
    pool_uplink: float | None = None,
) -> dict[str, Any]:
    """Build the run as for one pool (the first; GPUs = the pools' total), search the plans
    over the pools (`analysis.pool_plans`: pipeline stages per pool, or data-parallel replicas
    per pool) and price the chosen one with `engine`."""
    from analysis.cluster.pools import parse_pools
    from analysis.hetero import PoolPart
    from analysis.pool_plans import MODES
    from analysis.runconfig import build_run, merge
    from hwprofiles.catalogue import load_profile
    from hwprofiles.errors import UserError
    from simulator.costmodel.crosspool import PoolLink, default_uplink

    file_uplink, file_plan = pool_settings(file_spec)
    uplink_gb = pool_uplink if pool_uplink is not None else file_uplink
    mode = pool_plan or file_plan or "auto"
    if mode not in MODES:
        where = "--pool-plan" if pool_plan is not None else "cluster.pool_plan"
        raise UserError(where, mode, f"must be one of {', '.join(MODES)}")
    specs = parse_pools(hardware)
    over = copy.deepcopy(over)
    total = sum(s.gpus for s in specs)
    given = over["cluster"].get("gpus")
    if given is not None and given != total:
        raise UserError("gpus", given, f"must equal the pools' total ({total}) or be left out")
    over["cluster"]["hardware"] = specs[0].hardware
    over["cluster"]["gpus"] = total
    spec = merge(file_spec, over)
    vpp_free = spec.get("parallelism", {}).get("vpp") is None
    if mode == "pipeline" and vpp_free:
        # stages over pools run without interleaving: search the layouts that can
        spec["parallelism"] = {**spec.get("parallelism", {}), "vpp": 1}
    fixed_pp = spec.get("parallelism", {}).get("pp") is not None
    run = build_run(spec)
    parts = [PoolPart(load_profile(s.hardware), s.gpus) for s in specs]
    if uplink_gb is not None:
        where = "--pool-uplink" if pool_uplink is not None else "cluster.pool_uplink_gb_per_s"
        if not isinstance(uplink_gb, (int, float)) or not 0 < uplink_gb < float("inf"):
            raise UserError(where, uplink_gb, "must be a bandwidth > 0 in GB/s per direction")
        uplink = PoolLink(uplink_gb * 1e9, f"given ({where})")
    else:
        uplink = default_uplink([(x.hardware, x.gpus) for x in parts])
    w = run.workload
    out = run_plan(w.model, parts, w.parallel, w.seq_len, uplink, run.options, mode, fixed_pp,
                   engine, contention, seed)  # fmt: skip
    out["model"] = w.model.name
    out["layout_note"] = run.layout_note
    if mode == "auto" and vpp_free and w.parallel.vpp != 1:
        # the one-pool search chose an interleaved layout, which stages over pools cannot
        # run: search the vpp 1 layouts too, for the pipeline plans, and keep the faster
        flat = {**spec, "parallelism": {**spec.get("parallelism", {}), "vpp": 1}}
        out = _with_flat_pipeline(out, flat, parts, uplink, fixed_pp, engine, contention, seed)
    return out


def _with_flat_pipeline(
    out: dict[str, Any], flat: dict[str, Any], parts: list[Any], uplink: Any, fixed_pp: bool,
    engine: str, contention: bool, seed: int,
) -> dict[str, Any]:  # fmt: skip
    """`out` (the replicas plan of an interleaved layout) against the best pipeline plan of a
    vpp 1 layout search (closed form against closed form): the faster, with the other kept
    among the plans tried."""
    from analysis.pool_plans import choose
    from analysis.runconfig import build_run
    from hwprofiles.errors import UserError

    try:
        run = build_run(flat)
        w = run.workload
        alt = choose(w.model, parts, w.parallel, w.seq_len, uplink, run.options, "pipeline",
                     fixed_pp)  # fmt: skip
    except UserError:  # no vpp 1 layout, or none that stages over pools can run
        return out
    best = alt["pipeline"]
    tried = [dict(a, tp=w.parallel.tp) for a in alt["alternatives"] if a["plan"] == "pipeline"]
    data_s = min(a["step_time_s"] for a in out["alternatives"] if a["plan"] == "data")
    if best["fits_in_memory"] and best["step_time_s"] < data_s:
        new = run_plan(w.model, parts, w.parallel, w.seq_len, uplink, run.options, "pipeline",
                       fixed_pp, engine, contention, seed)  # fmt: skip
        new["model"] = w.model.name
        new["layout_note"] = f"{run.layout_note}; vpp 1, for stages over pools"
        new["alternatives"] = sorted(
            tried + [a for a in out["alternatives"] if a["plan"] == "data"],
            key=lambda a: a["step_time_s"],
        )
        return new
    out["alternatives"] = sorted(out["alternatives"] + tried[:3], key=lambda a: a["step_time_s"])
    return out


def run_plan(model, parts, parallel, seq_len, uplink, opts, mode, fixed_pp, engine, contention,
             seed) -> dict[str, Any]:  # fmt: skip
    """The chosen plan priced with `engine`, JSON-ready."""
    from analysis.hetero import hetero_step
    from analysis.pool_plans import choose, cross_summary

    choice = choose(model, parts, parallel, seq_len, uplink, opts, mode, fixed_pp)
    if choice["plan"] == "data":
        out = hetero_step(
            model, parts, parallel, seq_len, engine, opts, contention, seed, uplink=uplink
        )
        out["plan"] = "data"
        out["alternatives"] = choice["alternatives"]
        return out
    r = choice["pipeline"]
    w = r["workload"]
    p = w.parallel
    by_name = {x.hardware.name: x.hardware for x in parts}
    stage_hw = [by_name[s["hardware"]] for s in r["stages"]]
    split = [s["layers"] for s in r["stages"]]
    cross = cross_summary(r, parts, uplink, w)
    step, energy = r["step_time_s"], r["energy_per_step_j"]
    if engine == "des":
        from simulator.des.pools import cross_send_seconds, simulate_stages

        d = simulate_stages(w, stage_hw, split, uplink, opts, seed, contention)
        step = d.step_time_s
        energy = d.arrays["energy_per_gpu_j"] * w.num_gpus
        busy = cross_send_seconds(d)
        cross = cross | {"busy_share": busy / step, "exposed_s": None, "exposed_share": None}
    pools = []
    for x in parts:
        mine = [s["stage"] for s in r["stages"] if s["hardware"] == x.hardware.name]
        pools.append({"hardware": x.hardware.name, "gpus": x.gpus, "stages": mine,
                      "layers": sum(split[s] for s in mine)})  # fmt: skip
    return {
        "engine": engine,
        "plan": "pipeline",
        "step_time_s": step,
        "gated_by": r["stages"][r["gated_by_stage"]]["hardware"],
        "tokens_per_step": p.global_batch_size * w.seq_len,
        "energy_per_step_j": energy,
        "layout": {
            "tp": p.tp,
            "pp": p.pp,
            "vpp": 1,
            "cp": p.cp,
            "dp": p.dp,
            "micro_batch_size": p.micro_batch_size,
            "global_batch_size": p.global_batch_size,
        },
        "stages": r["stages"],
        "pools": pools,
        "cross_pool": cross,
        "alternatives": choice["alternatives"],
        "notes": [] if r["fits_in_memory"] else ["a stage does not fit in memory (90 % usable)"],
    }


def render(result: dict[str, Any]) -> None:
    lay = result["layout"]
    pools = ", ".join(f"{p['hardware']}:{p['gpus']}" for p in result["pools"])
    kind = (
        "pipeline stages over pools" if result.get("plan") == "pipeline" else "replicas over pools"
    )
    typer.echo(
        f"{result['model']} over {pools}"
        f" ({result['engine']}, {kind}): step {result['step_time_s']:.3f} s, gated by "
        f"{result['gated_by']}; tp {lay['tp']} pp {lay['pp']} dp {lay['dp']}, global batch "
        f"{lay['global_batch_size']} ({result['layout_note']})"
    )
    if result.get("plan") == "pipeline":
        _render_stages(result)
    else:
        for p in result["pools"]:
            typer.echo(
                f"  {p['hardware']:12s} {p['gpus']:5d} GPUs  {p['replicas']:4d} replicas x "
                f"{p['microbatches_per_replica']:4d} micro-batches  its step "
                f"{p['step_time_s']:.3f} s"
            )
        bw = result["cross_pool_scale_out_per_gpu_bytes_per_s"]
        up = result.get("uplink_bytes_per_s")
        typer.echo(
            f"  cross-pool ring at the slowest NIC or its uplink share: {bw / 1e9:.1f} GB/s per "
            "GPU per direction"
            + ("" if up is None else f" (uplink {up / 1e9:.0f} GB/s, {result['uplink_source']})")
        )
    others = [a for a in result.get("alternatives", [])][:5]
    for a in others:
        what = "replicas over pools" if a["plan"] == "data" else (
            f"pp {a['pp']}, {' then '.join(a['order'])}, layers {a['layers']}"
            + (f" (tp {a['tp']}, vpp 1 search)" if "tp" in a else ""))  # fmt: skip
        typer.echo(f"  plan tried: {what}: {a['step_time_s']:.3f} s (closed form)")
    for note in result.get("notes", []):
        typer.echo(f"  note: {note}")


def _render_stages(result: dict[str, Any]) -> None:
    for s in result["stages"]:
        typer.echo(
            f"  stage {s['stage']:2d}  {s['hardware']:12s} {s['layers']:3d} layers  "
            f"{s['time_per_microbatch_s'] * 1e3:8.1f} ms per micro-batch  "
            f"{s['memory_per_gpu_bytes'] / 1e9:5.1f} GB per GPU"
            + ("" if s["fits_in_memory"] else "  (over memory)")
        )
    c = result["cross_pool"]
    typer.echo(
        f"  cross-pool link ({', '.join(c['boundaries'])}): uplink "
        f"{c['uplink_bytes_per_s'] / 1e9:.0f} GB/s per direction ({c['uplink_source']}), "
        f"{c['senders']} ranks cross at once{' (uplink-limited)' if c['uplink_limited'] else ''}"
    )
    share = f"busy {c['busy_share'] * 100:.2f} % of the step"
    if c.get("exposed_share") is not None:
        share += f", exposed {c['exposed_share'] * 100:.3f} %"
    typer.echo(f"  cross-pool sends: {c['send_s'] * 1e3:.2f} ms each (closed form), {share}")
