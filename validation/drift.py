"""Before a validation runs: is the profile still true of this machine, and is it steady?

A profile is only a fair basis for a prediction while the machine runs its kernels at the
rates it recorded. Before the matrix runs, the GEMMs its workload leans on (the model's MLP
up-projection and logits, forward, in each precision's compute dtype) are timed again here
with the calibration's interleaved rule (`hwprofiles.calibration.workload.measure_kernels`, a
few seconds) and set against the profile's price for the same GEMM on one idle rank (its
measured row where the profile timed that shape, `Accelerator.gemm_timings`, else its curve):

    speed = profile's time / measured time     (1.0 = as calibrated)

A dtype whose probes are off by more than `TOLERANCE` either way has *drifted*: its runs'
comparisons are not headlined (the report lists them, marked, and says why). The line
`status_line` names the profile, its age and its steadiness; `llmcap validate` prints it first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections.abc import Callable
from typing import Any

from hwprofiles.calibration.gemm import GemmShape
from hwprofiles.host import HostProfile
from hwprofiles.profile import HardwareProfile
from validation.gptconfig import GPTConfig

TOLERANCE = 0.25
"""Drifted when speed > 1.25 or < 1/1.25. Round medians of one run on this 2-core VM varied by
up to 18 % on a quiet machine (docs/validation.md, 2026-11-29), so a tighter bound would flag
noise; a 3x stale profile (the case in issue 21) is far outside it."""
PROBE_BUDGET_S = 6.0
"""Budget of the interleaved re-probe, all kernels together (s)."""
STALE_AGE_S = 24 * 3600.0
"""A profile older than this is called stale in the status line (a day: the VM's host and its
neighbours change over hours)."""

Timer = Callable[[list[tuple[GemmShape, str]]], list[float]]
"""Seconds per call of each (GEMM, dtype); tests pass a fake."""


def probe_shapes(cfg: GPTConfig) -> list[GemmShape]:
    """The model's MLP up- and down-projection and logits GEMMs, forward (tokens x hidden @
    hidden x n). Up and down have equal FLOPs, and the profile holds one figure for both, the
    mean of theirs (`profile.GemmTiming`): their probes are compared as a pair (`check_drift`);
    on a CPU without a 16-bit matrix unit their bf16 forwards differ 2x (1.01 vs 0.50 ms for
    the tiny model on the AMD EPYC VM, 2026-12-03), so the up-projection alone read 0.74x a
    fresh profile."""
    tokens = cfg.micro_batch_size * cfg.seq_len
    h, f = cfg.hidden_size, cfg.ffn_size
    return [
        GemmShape("probe", f"{cfg.name}/mlp_up", "fwd", tokens, f, h),
        GemmShape("probe", f"{cfg.name}/mlp_down", "fwd", tokens, h, f),
        GemmShape("probe", f"{cfg.name}/logits", "fwd", tokens, cfg.vocab_size, h),
    ]


def _measure(pairs: list[tuple[GemmShape, str]]) -> list[float]:
    from hwprofiles.calibration.workload import measure_kernels

    rows, _ = measure_kernels(pairs, PROBE_BUDGET_S)
    return [float(r["median_s"]) for r in rows]


def check_drift(
    hw: HardwareProfile,
    cfg: GPTConfig,
    precisions: tuple[str, ...],
    timer: Timer | None = None,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """One row per probe: dtype, GEMM, measured and profile time, speed, drifted; timed with
    `threads` torch threads (one rank's, as calibrated)."""
    from hwprofiles.calibration.device import torch_threads
    from simulator.costmodel.timing import gemm_dtype

    dtypes = list(dict.fromkeys(gemm_dtype(p) for p in precisions))
    pairs = [(s, d) for d in dtypes for s in probe_shapes(cfg)]
    if timer is None:
        with torch_threads(threads):
            measured = _measure(pairs)
    else:
        measured = timer(pairs)
    # probes of equal FLOPs in one dtype (MLP up and down) are one row: their mean against
    # the profile's figure, which is the mean of theirs
    groups: dict[tuple[str, float], list[tuple[GemmShape, float]]] = {}
    for (shape, dtype), t in zip(pairs, measured, strict=True):
        groups.setdefault((dtype, shape.flops), []).append((shape, t))
    rows = []
    for (dtype, flops), members in groups.items():
        shape = members[0][0]
        t = statistics.fmean(m for _, m in members)
        predicted = gemm_price(hw, dtype, flops)
        speed = predicted / t
        name = "+".join(s.name.rsplit("/", 1)[-1] for s, _ in members)
        name = shape.name if len(members) == 1 else f"{shape.name.rsplit('/', 1)[0]}/{name} mean"
        rows.append(
            {
                "dtype": dtype,
                "gemm": f"{name} {shape.m}x{shape.k}x{shape.n}",
                "measured_s": t,
                "profile_s": predicted,
                "speed": speed,
                "drifted": not (1 / (1 + TOLERANCE) <= speed <= 1 + TOLERANCE),
            }
        )
    return rows


def gemm_price(hw: HardwareProfile, dtype: str, flops: float) -> float:
    """The profile's seconds for one forward GEMM of `flops` on one idle rank: its measured
    row for a linear layer of those FLOPs, else its curve."""
    from simulator.costmodel.timing import compute_time

    timed = hw.accelerator.measured_gemm(dtype, flops)
    return timed.fwd_s if timed else float(compute_time(hw.accelerator, flops, dtype))


def _gemm_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("probe", "gemm") == "gemm"]


def dtypes_of(precisions: tuple[str, ...]) -> list[str]:
    """The GEMM dtypes of `precisions`, in order."""
    from simulator.costmodel.timing import gemm_dtype

    return list(dict.fromkeys(gemm_dtype(p) for p in precisions))


def drifted_dtypes(rows: list[dict[str, Any]]) -> list[str]:
    """Dtypes whose GEMM probes drifted (contention rows, `probe = contention`, aside)."""
    return sorted({r["dtype"] for r in _gemm_rows(rows) if r["drifted"]})


def drift_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per drifted dtype naming its probes' speeds, and what the report does; one
    per dtype whose GEMMs were re-measured in place (`remeasure`)."""
    held = [r for r in rows if r.get("probe") == "contention"]
    rows = _gemm_rows(rows)
    again = sorted({r["dtype"] for r in rows if r.get("remeasured")})
    out = contention_notes(held, any(r.get("remeasured") for r in held)) + [
        f"{dtype} GEMMs re-measured in place before the runs (the profile had drifted)"
        for dtype in again
    ]
    for dtype in drifted_dtypes(rows):
        speeds = ", ".join(f"{r['gemm']} {r['speed']:.2f}x" for r in rows if r["dtype"] == dtype)
        out.append(
            f"profile drifted for {dtype}: the machine runs its GEMMs at {speeds} the "
            f"profile's speed (tolerance ±{TOLERANCE:.0%}); the {dtype} runs' comparisons are "
            "not headlined. Recalibrate (llmcap calibrate --quick) and rerun, or "
            "`llmcap validate --repredict DIR --hardware NEW` to re-price these measurements"
        )
    return out


def age_s(date: str, now: dt.datetime | None = None) -> float | None:
    """Seconds since an ISO-8601 UTC date ("2026-12-02T21:00:00Z"), None if unreadable."""
    try:
        then = dt.datetime.fromisoformat(date.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return (now - then).total_seconds()


def _age_text(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min old"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h old"
    return f"{seconds / 86400:.0f} days old"


def status_line(hw: HardwareProfile | None, now: dt.datetime | None = None) -> str:
    """ "profile NAME (calibrated DATE, AGE, steadiness)": what `validate` predicts with."""
    if hw is None:
        return "profile: none (measuring only, no predictions)"
    pv = hw.provenance
    if pv.kind != "calibrated":
        return f"profile {hw.name}: datasheet, not a calibration of this machine"
    age = age_s(pv.date, now)
    when = "age unknown" if age is None else _age_text(age)
    if age is not None and age > STALE_AGE_S:
        when += " (stale: older than a day)"
    steady = pv.steadiness or "steadiness not recorded (calibrated before the verdict existed)"
    return f"profile {hw.name}: calibrated {pv.date or '?'}, {when}, {steady}"


REMEASURE_BUDGET_S = 15.0
"""Budget of an in-place re-measurement of one model's GEMMs, all drifted dtypes (s)."""

Measure = Callable[[list[tuple[GemmShape, str]], float], tuple[list[dict[str, Any]], Any]]
"""`workload.measure_kernels`' signature; tests pass a fake."""


def remeasure(
    hw: HardwareProfile,
    cfg: GPTConfig,
    dtypes: list[str],
    measure: Measure | None = None,
    threads: int = 1,
) -> HardwareProfile:
    """`hw` with the model's own GEMMs in `dtypes` (every linear layer's forward, dX and dW,
    and the logits) measured now, in place of the profile's (`Accelerator.gemm_timings`;
    nothing is written to disk). Only GEMMs change: attention, memory-bound kernels and
    collectives keep the profile's figures."""
    import pandas as pd

    from hwprofiles.calibration.device import torch_threads
    from hwprofiles.calibration.summary import gemm_layers
    from hwprofiles.calibration.workload import Workload, measure_kernels
    from hwprofiles.profile import GemmTiming

    tokens = cfg.micro_batch_size * cfg.seq_len
    w = Workload(cfg.name, cfg.hidden_size, cfg.ffn_size, cfg.vocab_size, tokens)
    pairs = [(s, d) for d in dtypes for s in w.gemms()]
    if measure is None:
        with torch_threads(threads):
            rows, _ = measure_kernels(pairs, REMEASURE_BUDGET_S)
    else:
        rows, _ = measure(pairs, REMEASURE_BUDGET_S)
    new = tuple(
        GemmTiming(r["dtype"], r["flops"], r["fwd_s"], r["bwd_s"])
        for r in gemm_layers(pd.DataFrame(rows))
    )
    fresh = {(t.dtype, t.flops) for t in new}
    acc = hw.accelerator
    kept = tuple(t for t in acc.gemm_timings if (t.dtype, t.flops) not in fresh)
    return dataclasses.replace(hw, accelerator=dataclasses.replace(acc, gemm_timings=kept + new))


Contention = Callable[[tuple[str, ...], int, int], list[dict[str, Any]]]
"""`contention.measure_contention(dtypes, threads, ranks)`' rows; tests pass a fake."""
CONTENTION_ROUNDS = 3
"""Alone/busy pairs of the contention re-probe (the quick calibration takes 9)."""


def check_contention(
    hw: HardwareProfile,
    precisions: tuple[str, ...],
    ranks: int,
    threads: int = 1,
    measure: Contention | None = None,
) -> list[dict[str, Any]]:
    """The host-contention factors (`contention.py`: one rank's speed with `ranks` busy over
    its speed alone) measured again, one row per kernel, against the profile's: drifted when
    the ratio is beyond `TOLERANCE` either way. Nothing when the profile has no factors."""
    from simulator.costmodel.timing import gemm_dtype

    host = hw.host
    if ranks < 2 or host is None or not host.contention:
        return []
    dtypes = tuple(dict.fromkeys(gemm_dtype(p) for p in precisions))
    if measure is None:
        from hwprofiles.calibration.contention import measure_contention

        rows = measure_contention(dtypes, threads, ranks, rounds=CONTENTION_ROUNDS)
    else:
        rows = measure(dtypes, threads, ranks)
    out = []
    for r in rows:
        kernel = "stream" if r["kernel"] == "stream" else f"gemm {r['dtype']}"
        was = host.contention_of(r["kernel"], r["dtype"])
        if was is None:
            continue
        ratio = float(r["factor"]) / was
        out.append(
            {
                "probe": "contention",
                "kernel": kernel,
                "dtype": r["dtype"],
                "measured": float(r["factor"]),
                "profile": was,
                "ratio": ratio,
                "drifted": not (1 / (1 + TOLERANCE) <= ratio <= 1 + TOLERANCE),
            }
        )
    return out


def with_contention(hw: HardwareProfile, rows: list[dict[str, Any]]) -> HardwareProfile:
    """`hw` with the host-contention factors of `rows` (`check_contention`) in place."""
    gemm = {r["dtype"]: r["measured"] for r in rows if r["kernel"].startswith("gemm")}
    stream = [r["measured"] for r in rows if r["kernel"] == "stream"]
    host = hw.host or HostProfile()
    host = dataclasses.replace(
        host,
        contention={**host.contention, **gemm},
        memory_contention=stream[0] if stream else host.memory_contention,
    )
    return dataclasses.replace(hw, host=host)


def contention_notes(rows: list[dict[str, Any]], replaced: bool) -> list[str]:
    """One line when a contention factor drifted, saying what was done."""
    off = [r for r in rows if r["drifted"]]
    if not off:
        return []
    what = ", ".join(f"{r['kernel']} {r['measured']:.2f} (profile {r['profile']:.2f})" for r in off)
    done = (
        "the measured factors are used in place"
        if replaced
        else "multi-rank predictions use the profile's (--remeasure-drifted uses the new ones)"
    )
    return [f"host contention drifted: {what}; {done}"]
