"""A run priced at the component rates measured inside it (`validation.inrun`).

The profile prices a run at the rates the calibration measured; the in-run probes say what
the same components ran at between the run's own steps. `rates` sets the two side by side:

    gemm_speed  = profile's seconds for the probe GEMM (ranks busy) / in-run seconds
    host_factor = in-run bare hollow step / the same step timed before the runs

and `at_rates` puts the GEMM rate in place: the run's compute dtype's GEMM and attention
times over `gemm_speed` (its measured rows and its peak, so the curve too). Attention follows
the GEMM probe: on a CPU its kernels are matrix products (a stated approximation, not
measured). The host factor is reported, not used (`validation.inrun`: scaling the host times
by it made three chains worse). Memory-bound kernels, casts, copies, collectives and the
model's host times keep the figures of the profile and of the pre-run probes.
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
    in-run probes (a run measured before they existed)."""
    if m.inrun_gemm_s is None:
        return None
    gemm_ref = probe_profile_s(hw, spec)
    ref = hw.host.model_pass_s.get(bare_key(spec)) if hw.host is not None else None
    host = m.inrun_host_s
    return {
        "run": spec.run_id,
        "gemm_measured_s": m.inrun_gemm_s,
        "gemm_profile_s": gemm_ref,
        "gemm_speed": gemm_ref / m.inrun_gemm_s,
        "host_measured_s": host,
        "host_before_s": ref,
        "host_factor": host / ref if host is not None and ref else None,
    }


def at_rates(hw: HardwareProfile, spec: RunSpec, r: dict[str, Any]) -> HardwareProfile:
    """`hw` with the run's in-run GEMM rate (`rates`) in place (module docstring)."""
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
    return dataclasses.replace(hw, accelerator=acc)


IN_RUN_HEADER = [
    "run",
    "GEMM in run",
    "profile's GEMM",
    "GEMM speed",
    "host step in run",
    "before the runs",
    "host factor (not priced)",
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
            _t(r["host_measured_s"]) if r["host_measured_s"] else "–",
            _t(r["host_before_s"]) if r["host_before_s"] else "–",
            "–" if r["host_factor"] is None else f"{r['host_factor']:.2f}x",
            _t(r["measured_step_s"]),
            err(r["predicted_as_calibrated_s"], r["measured_step_s"]),
            err(r["predicted_in_place_s"], r["measured_step_s"]),
        ]
        for r in doc.get("in_run", [])
    ]
