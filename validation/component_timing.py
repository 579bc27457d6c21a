"""The component re-probes of `validation.components`, timed on this machine (torch, gloo).

Each uses the calibration's own benchmark at the calibration's own sizes (the level's plan,
`hwprofiles.calibration.plan`), with fewer samples (`REPEATS`): attention per pass
(`attention.bench_attention_passes`), the elementwise ops and casts
(`elementwise.bench_elementwise`), the buffer copy (`memory.bench_memory`), and gloo
collectives in fresh 2-rank process groups (`collectives.run_collective_group`).
"""

from __future__ import annotations

import statistics
from typing import Any

from hwprofiles.calibration.timing import Repeats

REPEATS = Repeats(warmup=5, samples=5, min_samples=3, budget_s=0.2, sample_s=0.005)
"""Per kernel of the re-probe: some tens of milliseconds each (the calibration's quick plan
takes 5 samples and 0.25 s). Five warm-up calls, not the calibration's one: a probe is often
the first call of its kernel in a fresh process, which the calibration's never is (it runs
after the curve benchmarks of the same kernel); on the AMD EPYC VM (2026-12-03, quiet) the
tiny model's fp32 SDPA forward + backward read 557 us after one warm-up call and 411-435 us
after more, against 409-411 us as the calibration times it, so every chain flagged it 0.8x."""
COLLECTIVE_TIMEOUT_S = 120.0
"""Longest a 2-rank gloo collective probe may take, start-up included (s): llmcap's own bound,
far above the seconds a probe takes here, so only a hung rank reaches it."""


def time_probes(specs: list[dict[str, Any]], threads: int = 1) -> list[float]:
    """Seconds per call (attention, collectives) or per byte (rates) of each spec."""
    from hwprofiles.calibration.device import torch_threads

    out: dict[int, float] = {}
    colls = [(i, s) for i, s in enumerate(specs) if s["probe"] == "collective"]
    with torch_threads(threads):
        for i, s in enumerate(specs):
            if s["probe"] != "collective":
                out[i] = _local(s)
    if colls:
        timed = _collectives([s for _, s in colls], threads)
        out.update(zip((i for i, _ in colls), timed, strict=True))
    return [out[i] for i in range(len(specs))]


def _plan(spec: dict[str, Any]) -> Any:
    from hwprofiles.calibration.plan import LEVELS, make_plan

    level = spec.get("level", "quick")
    return make_plan(level if level in LEVELS else "quick", "cpu")


def _local(spec: dict[str, Any]) -> float:
    from hwprofiles.calibration.attention import bench_attention_passes
    from hwprofiles.calibration.elementwise import OPS, bench_elementwise
    from hwprofiles.calibration.memory import bench_memory
    from hwprofiles.calibration.plan import AttentionShape

    kind = spec["probe"]
    if kind == "attention":
        row = bench_attention_passes(AttentionShape(*spec["shape"]), spec["dtype"], "cpu", REPEATS)
        return float(row["fwd_s"]) + float(row["bwd_s"])
    plan = _plan(spec)
    if kind in ("memory", "cast"):
        ops = ("cast",) if kind == "cast" else tuple(op for op in OPS if op != "cast")
        rates = [
            float(bench_elementwise(op, tokens, hidden, dt, "cpu", REPEATS)["bytes_per_s"])
            for dt in spec.get("dtypes", ["fp32"])
            for tokens, hidden in plan.elementwise
            for op in ops
        ]
        return 1.0 / statistics.median(rates)
    if kind == "copy" and spec.get("fastest"):  # the calibration's repeats, fastest sample
        per = [
            float(bench_memory("copy", size, "cpu", plan.repeats)["min_s"]) / (2 * size)
            for size in spec["sizes"]
        ]
        return statistics.median(per)
    if kind == "copy":
        rates = [
            float(bench_memory("copy", size, "cpu", REPEATS)["bytes_per_s"])
            for size in plan.memory_bytes
        ]
        return 1.0 / statistics.median(rates)
    raise ValueError(f"probe: {kind!r} is not timed here")


def _collectives(specs: list[dict[str, Any]], threads: int) -> list[float]:
    """One 2-rank gloo group for all of them (its worker measures every named collective at
    every size: a few extra small measurements, one process start instead of several)."""
    from hwprofiles.calibration.collectives import GroupConfig, message_bytes, run_collective_group

    ws = int(specs[0]["world_size"])
    fastest = any(s.get("fastest") for s in specs)  # the calibration's repeats, fastest sample
    cfg = GroupConfig(
        world_size=ws,
        backend="gloo",
        device="cpu",
        collectives=tuple(dict.fromkeys(s["collective"] for s in specs)),
        sizes=tuple(dict.fromkeys(int(s["bytes"]) for s in specs)),
        repeats=_plan(specs[0]).comm_repeats if fastest else REPEATS,
        threads_per_rank=threads,
        timeout_s=COLLECTIVE_TIMEOUT_S,
    )
    rows = run_collective_group(cfg)
    got = {(r["collective"], int(r["bytes"]), k): float(r[k]) for r in rows
           for k in ("median_s", "min_s")}  # fmt: skip
    return [
        got[(s["collective"], message_bytes(int(s["bytes"]), ws),
             "min_s" if s.get("fastest") else "median_s")]
        for s in specs
    ]  # fmt: skip
