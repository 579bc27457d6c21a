"""A run priced at the component rates measured inside it (`validation.inrun`).

The profile prices a run at the rates the calibration measured, and its host times at those
the pre-run probe measured; the in-run probes say what the same components ran at between
the run's own steps. `rates` sets them side by side:

    gemm_speed = profile's seconds for the probe GEMM (ranks busy) / in-run seconds
    pass, optimizer = the hollow twin's host times in the run / before the runs

and `at_rates` puts them in place: the run's compute dtype's GEMM and attention times over
`gemm_speed` (its measured rows and its peak, so the curve too), the model's host times
(`HostProfile.model_pass_s`) for the run's strategy and precision replaced by the in-run
ones, and each collective's alpha-beta fit scaled by its in-run time over the fit's at the
probed size (`components.replaced`). Attention follows the GEMM probe: on a CPU its kernels
are matrix products (a stated approximation, not measured). Memory-bound kernels, casts and
copies keep the profile's rates (the pre-run probes check them).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hwprofiles.host import model_pass_key, under_load
from hwprofiles.profile import HardwareProfile
from simulator.costmodel.framework import model_signature
from simulator.costmodel.timing import compute_time, gemm_dtype
from validation.hollow import with_passes
from validation.mapping import model_spec
from validation.measure import Measured
from validation.spec import RunSpec


def probe_flops(spec: RunSpec) -> float:
    """FLOPs of one probe GEMM call: the model's MLP up (or down) projection forward."""
    cfg = spec.model
    return 2.0 * cfg.micro_batch_size * cfg.seq_len * cfg.hidden_size * cfg.ffn_size


def probe_profile_s(hw: HardwareProfile, spec: RunSpec) -> float:
    """The profile's seconds for one probe GEMM call with the run's ranks busy: its measured
    figure for the layers (the up/down mean), else its curve."""
    dtype = gemm_dtype(spec.precision)
    acc = under_load(hw, spec.nproc, dtype).accelerator
    timed = acc.measured_gemm(dtype, probe_flops(spec))
    return timed.fwd_s if timed else float(compute_time(acc, probe_flops(spec), dtype))


def pass_keys(spec: RunSpec) -> tuple[str, str]:
    """`HostProfile.model_pass_s` keys of the run's forward + backward and optimizer step."""
    from validation.hollow import OPTIMIZER

    sig = model_signature(model_spec(spec.model))
    return (
        model_pass_key(sig, spec.strategy, spec.precision),
        model_pass_key(sig, spec.strategy, OPTIMIZER),
    )


def rates(hw: HardwareProfile, spec: RunSpec, m: Measured) -> dict[str, Any] | None:
    """The run's in-run rates against the profile's (module docstring); None without the
    in-run probes (a run measured before they existed)."""
    if m.inrun_gemm_s is None:
        return None
    gemm_ref = probe_profile_s(hw, spec)
    passes = hw.host.model_pass_s if hw.host is not None else {}
    before = [passes.get(k) for k in pass_keys(spec)]
    return {
        "run": spec.run_id,
        "gemm_measured_s": m.inrun_gemm_s,
        "gemm_profile_s": gemm_ref,
        "gemm_speed": gemm_ref / m.inrun_gemm_s,
        "pass_measured_s": m.inrun_pass_s,
        "pass_before_s": before[0],
        "optimizer_measured_s": m.inrun_optimizer_s,
        "optimizer_before_s": before[1],
        "collectives": [
            row | {"measured_s": m.inrun_collective_s[row["collective"]]}
            for row in _collective_rows(hw, spec)
            if row["collective"] in m.inrun_collective_s
        ],
    }


def _collective_rows(hw: HardwareProfile, spec: RunSpec) -> list[dict[str, Any]]:
    """The in-run collectives as `components` probe rows, with the profile's price."""
    from validation.components import profile_time
    from validation.inrun import collective_sizes

    rows = []
    for name, nbytes in collective_sizes(spec):
        row = {"probe": "collective", "collective": name, "bytes": nbytes,
               "world_size": spec.nproc, "drifted": True}  # fmt: skip
        rows.append(row | {"profile_s": profile_time(hw, row)})
    return rows


def at_rates(hw: HardwareProfile, spec: RunSpec, r: dict[str, Any]) -> HardwareProfile:
    """`hw` with the run's in-run rates `r` (`rates`) in place (module docstring)."""
    dtype, speed = gemm_dtype(spec.precision), r["gemm_speed"]

    def slower(timings: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            dataclasses.replace(t, fwd_s=t.fwd_s / speed, bwd_s=t.bwd_s / speed)
            if t.dtype == dtype
            else t
            for t in timings
        )

    acc = hw.accelerator
    acc = dataclasses.replace(
        acc,
        peak_flops={k: v * speed if k == dtype else v for k, v in acc.peak_flops.items()},
        gemm_timings=slower(acc.gemm_timings),
        attention_timings=slower(acc.attention_timings),
    )
    out = dataclasses.replace(hw, accelerator=acc)
    if r.get("collectives"):  # each fit scaled by in-run / fit at the probed size
        from validation.components import replaced

        out = replaced(out, r["collectives"])
    measured = zip(pass_keys(spec), (r["pass_measured_s"], r["optimizer_measured_s"]), strict=True)
    passes = {k: t for k, t in measured if t is not None}
    return with_passes(out, passes) if passes else out


HOST_KEYS = ("pass_measured_s", "pass_before_s", "optimizer_measured_s", "optimizer_before_s")
IN_RUN_HEADER = [
    "run",
    "GEMM in run",
    "profile's GEMM",
    "GEMM speed",
    "host pass in run",
    "before the runs",
    "optimizer in run",
    "before the runs ",
    "collectives in run / profile",
    "measured step",
    "predicted as calibrated",
    "predicted in place",
]


def in_run_rows(doc: dict[str, Any]) -> list[list[str]]:
    """The report's "In-run component rates" table (`validate.finish` writes `in_run`)."""
    from validation.report import _t

    def err(p: float, m: float) -> str:
        return f"{_t(p)} ({(p / m - 1) * 100:+.1f} %)"

    return [
        [
            r["run"],
            _t(r["gemm_measured_s"]),
            _t(r["gemm_profile_s"]),
            f"{r['gemm_speed']:.2f}x",
            *(_t(r[k]) if r[k] else "–" for k in HOST_KEYS),
            ", ".join(
                f"{c['collective']} {_t(c['measured_s'])} / {_t(c['profile_s'])}"
                for c in r.get("collectives", [])
            )
            or "–",
            _t(r["measured_step_s"]),
            err(r["predicted_as_calibrated_s"], r["measured_step_s"]),
            err(r["predicted_in_place_s"], r["measured_step_s"]),
        ]
        for r in doc.get("in_run", [])
    ]
