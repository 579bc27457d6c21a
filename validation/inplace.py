"""A run priced at the component rates measured inside it (`validation.inrun`).

The profile prices a run at the rates the calibration measured; the in-run probes say what
the same components ran at between the run's own steps. `rates` sets the two side by side:

    gemm_speed  = profile's seconds for the probe GEMM (ranks busy) / in-run seconds
    host_factor = in-run bare hollow step / the same step timed before the runs

and `at_rates` puts them in place: the run's compute dtype's GEMM and attention times over
`gemm_speed` (its measured rows and its peak, so the curve too), the model's host times
(`HostProfile.model_pass_s`, the wrapped hollow model's forward + backward and optimizer
step, measured before the runs) times `host_factor`. Memory-bound kernels, casts, copies and
collectives keep the profile's rates (the pre-run probes check them). Attention follows the
GEMM probe: on a CPU its kernels are matrix products (a stated approximation, not measured).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hwprofiles.host import model_pass_key, under_load
from hwprofiles.profile import HardwareProfile
from simulator.costmodel.framework import model_signature
from simulator.costmodel.timing import compute_time, gemm_dtype
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


def bare_key(spec: RunSpec) -> str:
    """`HostProfile.model_pass_s` key of the bare hollow step timed before the runs."""
    from validation.hollow import BARE

    return model_pass_key(model_signature(model_spec(spec.model)), BARE, spec.precision)


def rates(hw: HardwareProfile, spec: RunSpec, m: Measured) -> dict[str, Any] | None:
    """The run's in-run rates against the profile's (module docstring); None without the
    in-run probes or the bare step's reference."""
    ref = hw.host.model_pass_s.get(bare_key(spec)) if hw.host is not None else None
    if m.inrun_gemm_s is None or m.inrun_host_s is None or not ref:
        return None
    gemm_ref = probe_profile_s(hw, spec)
    return {
        "run": spec.run_id,
        "gemm_measured_s": m.inrun_gemm_s,
        "gemm_profile_s": gemm_ref,
        "gemm_speed": gemm_ref / m.inrun_gemm_s,
        "gemm_settled_speed": gemm_ref / m.inrun_gemm_settled_s if m.inrun_gemm_settled_s else None,
        "host_measured_s": m.inrun_host_s,
        "host_before_s": ref,
        "host_factor": m.inrun_host_s / ref,
    }


def at_rates(hw: HardwareProfile, spec: RunSpec, r: dict[str, Any]) -> HardwareProfile:
    """`hw` with the run's in-run rates `r` (`rates`) in place (module docstring)."""
    dtype, speed, factor = gemm_dtype(spec.precision), r["gemm_speed"], r["host_factor"]
    acc = hw.accelerator

    def slower(timings: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            dataclasses.replace(t, fwd_s=t.fwd_s / speed, bwd_s=t.bwd_s / speed)
            if t.dtype == dtype
            else t
            for t in timings
        )

    acc = dataclasses.replace(
        acc,
        peak_flops={k: v * speed if k == dtype else v for k, v in acc.peak_flops.items()},
        gemm_timings=slower(acc.gemm_timings),
        attention_timings=slower(acc.attention_timings),
    )
    host = hw.host
    if host is not None:
        sig = model_signature(model_spec(spec.model)) + "|"
        passes = {
            k: v * factor if k.startswith(sig) and k != bare_key(spec) else v
            for k, v in host.model_pass_s.items()
        }
        host = dataclasses.replace(host, model_pass_s=passes)
    return dataclasses.replace(hw, accelerator=acc, host=host)


IN_RUN_HEADER = [
    "run",
    "GEMM in run (as met)",
    "profile's GEMM",
    "GEMM speed",
    "settled",
    "host step in run",
    "before the runs",
    "host factor",
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
            "–" if r.get("gemm_settled_speed") is None else f"{r['gemm_settled_speed']:.2f}x",
            _t(r["host_measured_s"]),
            _t(r["host_before_s"]),
            f"{r['host_factor']:.2f}x",
            _t(r["measured_step_s"]),
            err(r["predicted_as_calibrated_s"], r["measured_step_s"]),
            err(r["predicted_in_place_s"], r["measured_step_s"]),
        ]
        for r in doc.get("in_run", [])
    ]
