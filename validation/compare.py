"""Measured against predicted: llmcap's engines and the seed document's formulas, per metric.

Every comparison is ``{run, metric, measured, predicted, engine, error}`` with
``error = predicted / measured - 1``. Ratios name their denominator run in `baseline`:

- ``step_time_s``: median step time of `run`;
- ``speedup``: throughput of `run` (N ranks) over the 1-rank run of the same strategy and
  precision; weak scaling, so measured = N * t(1) / t(N); seed: ``m × k`` with m = N
  data-parallel replicas and k = 1 sub-model (as `analysis.seed.document_predictions` reads
  it);
- ``comm_fraction``: exposed communication over step time, predicted by the method that
  measured it (`validation.measure`): DDP with `no_sync`, so the prediction is what `no_sync`
  removes (exposed collectives and bucket copies); otherwise ``1 − t(1 rank) / t(N ranks)``
  against the 1-rank run of the same strategy and precision (its `baseline`), measured and
  predicted alike;
- ``bf16_fp32_time_ratio``: step time of the bf16 `run` over its fp32 twin;
- ``energy_ratio``: energy per step of the bf16 `run` over its fp32 twin, where both were
  metered; seed: ``E × P/L`` read literally (P = 32, L = 16: ×2) and as intended (×L/P = ½).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hwprofiles.profile import HardwareProfile
from simulator.result import StepResult
from validation.inplace import probe_flops, probe_profile_s
from validation.linkcal import LinkFit
from validation.mapping import cpu_comm_interference, hardware_for_run, stack_options, workload
from validation.measure import Measured
from validation.spec import RunSpec

ENGINES = ("analytic", "des")
METRICS = ("step_time_s", "speedup", "comm_fraction", "bf16_fp32_time_ratio", "energy_ratio")
TARGET_ABS_ERROR = 0.10
"""Issue 5's target: median |error| of step time, and speed-up and communication share under
a rate-limited link, within 10 %."""
FP32_BITS, BF16_BITS = 32, 16  # P and L of the seed's mixed-precision formula

Predictor = Callable[..., StepResult]
"""``predict(workload, hardware, engine, options=...) -> StepResult``
(`analysis.predict.predict`)."""


@dataclass(frozen=True)
class Comparison:
    """One measured figure beside one prediction of it."""

    run: str
    metric: str
    measured: float
    predicted: float
    engine: str
    baseline: str | None = None

    @property
    def error(self) -> float:
        """predicted / measured - 1 (dimensionless)."""
        return self.predicted / self.measured - 1.0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "run": self.run,
            "metric": self.metric,
            "measured": self.measured,
            "predicted": self.predicted,
            "engine": self.engine,
            "error": self.error,
        }
        if self.baseline is not None:
            d["baseline"] = self.baseline
        return d


def default_predictor() -> Predictor:
    from analysis.predict import predict

    return predict


def predict_runs(
    specs: list[RunSpec],
    hardware: HardwareProfile,
    engines: tuple[str, ...] = ENGINES,
    predictor: Predictor | None = None,
    link_fits: Sequence[LinkFit] = (),
    per_run: dict[str, HardwareProfile] | None = None,
) -> tuple[dict[tuple[str, str], StepResult], list[str]]:
    """Predict every run with every engine: ``{(run id, engine): StepResult}`` and notes
    on engines that could not predict (an engine that fails once is not tried again).
    `link_fits`: collectives measured through the runs' rate-limited links (`linkcal`);
    `per_run`: a run's own profile (`validation.inplace.at_rates`) in place of `hardware`."""
    predictor = predictor or default_predictor()
    out: dict[tuple[str, str], StepResult] = {}
    notes: list[str] = []
    for engine in engines:
        for spec in specs:
            w = workload(spec.model, spec.nproc, spec.strategy, spec.precision)
            fits = [
                f.collective_fit()
                for f in link_fits
                if f.link_bytes_per_s == spec.link_bytes_per_s and f.collective != "none"
            ]
            own = (per_run or {}).get(spec.run_id, hardware)
            hw = hardware_for_run(own, spec.nproc, spec.link_bytes_per_s, fits)
            phi = None
            if spec.device == "cpu":
                phi = cpu_comm_interference(hardware, spec.nproc, spec.link_bytes_per_s)
            try:
                # every rank shares this one host, whatever the network between them
                out[(spec.run_id, engine)] = predictor(
                    w, hw, engine, options=stack_options(spec.device, phi), devices_busy=spec.nproc
                )
            except (ValueError, ImportError, NotImplementedError) as exc:
                notes.append(f"engine {engine}: no prediction ({type(exc).__name__}: {exc})")
                break
    return out, notes


@dataclass(frozen=True)
class Figures:
    """The per-run figures the metrics are made of, measured or predicted (s, J)."""

    step_time_s: float
    comm_fraction: float | None
    energy_j: float | None

    @classmethod
    def of_measured(cls, m: Measured) -> Figures:
        return cls(m.step.median_s, m.comm_fraction, m.energy_per_step_j)

    @classmethod
    def of_predicted(cls, r: StepResult) -> Figures:
        """The communication share is what DDP's `no_sync` removes: the exposed collectives
        and the bucket copies around them (`Options.grad_bucket_copies`)."""
        removed = r.comm_exposed_s + r.breakdown.get("copies", 0.0)
        return cls(r.step_time_s, removed / r.step_time_s, r.energy_per_step_j)


def one_rank(spec: RunSpec) -> RunSpec:
    """The 1-rank run of the same strategy and precision (on the host, no fault)."""
    return spec.with_(nproc=1, link_bytes_per_s=None, fault=None)


def baseline(metric: str, spec: RunSpec) -> tuple[bool, RunSpec | None]:
    """Whether `metric` applies to `spec`, and the run it is relative to (if any)."""
    if metric == "step_time_s":
        return True, None
    if metric == "comm_fraction":  # measured with no_sync, else against the 1-rank run
        return spec.nproc > 1, None if spec.measures_comm_by_no_sync else one_rank(spec)
    if metric == "speedup":
        return spec.nproc > 1, one_rank(spec)
    # bf16_fp32_time_ratio, energy_ratio
    return spec.precision == "bf16", spec.with_(precision="fp32")


def derive(metric: str, spec: RunSpec, run: Figures, base: Figures | None) -> float | None:
    """The value of `metric` from a run's figures and its baseline's (None: not available)."""
    if metric == "step_time_s":
        return run.step_time_s
    if metric == "comm_fraction":
        if base is None:
            return run.comm_fraction
        return max(0.0, 1.0 - base.step_time_s / run.step_time_s)
    if base is None:  # every other metric is relative to a baseline run
        return None
    if metric == "speedup":
        return spec.nproc * base.step_time_s / run.step_time_s
    if metric == "bf16_fp32_time_ratio":
        return run.step_time_s / base.step_time_s
    if run.energy_j is None or base.energy_j is None or base.energy_j <= 0:
        return None
    return run.energy_j / base.energy_j


def seed_values(metric: str, spec: RunSpec) -> list[tuple[str, float]]:
    """The seed document's prediction of `metric`, as (engine label, value)."""
    from analysis import seed

    if metric == "speedup":
        return [("seed", seed.speedup_linear(spec.nproc, 1))]
    if metric == "energy_ratio":
        return [
            ("seed-literal", seed.energy_mixed_literal(1.0, FP32_BITS, BF16_BITS)),
            ("seed-intended", seed.energy_mixed_intended(1.0, FP32_BITS, BF16_BITS)),
        ]
    return []


def compare(
    runs: dict[str, tuple[RunSpec, Measured]],
    predictions: dict[tuple[str, str], StepResult],
    engines: tuple[str, ...] = ENGINES,
) -> list[Comparison]:
    """All comparisons the measurements allow, ordered by metric, run, engine."""
    out: list[Comparison] = []
    for metric in METRICS:
        for rid, (spec, m) in sorted(runs.items()):
            applies, base_spec = baseline(metric, spec)
            base = base_spec.run_id if base_spec is not None else None
            if not applies or (base is not None and base not in runs):
                continue
            base_m = Figures.of_measured(runs[base][1]) if base is not None else None
            measured = derive(metric, spec, Figures.of_measured(m), base_m)
            if measured is None or measured <= 0:
                continue
            for engine in engines:
                if (rid, engine) not in predictions or (
                    base is not None and (base, engine) not in predictions
                ):
                    continue
                base_p = Figures.of_predicted(predictions[(base, engine)]) if base else None
                pred = derive(
                    metric, spec, Figures.of_predicted(predictions[(rid, engine)]), base_p
                )
                if pred is not None:
                    out.append(Comparison(rid, metric, measured, pred, engine, base))
            for label, value in seed_values(metric, spec):
                out.append(Comparison(rid, metric, measured, value, label, base))
    return out


def summarise(comparisons: list[Comparison], rate_limited: set[str]) -> list[dict[str, Any]]:
    """Median and max |error| per metric and engine, over all runs and over the runs that
    crossed a rate-limited link; `meets_target` against `TARGET_ABS_ERROR` (median)."""
    rows: list[dict[str, Any]] = []
    groups: dict[tuple[str, str, str], list[float]] = {}
    for c in comparisons:
        groups.setdefault((c.metric, c.engine, "all runs"), []).append(abs(c.error))
        if c.run in rate_limited:
            groups.setdefault((c.metric, c.engine, "rate-limited link"), []).append(abs(c.error))
    order = {m: i for i, m in enumerate(METRICS)}
    for (metric, engine, scope), errs in sorted(
        groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])
    ):
        med = statistics.median(errs)
        rows.append(
            {
                "metric": metric,
                "engine": engine,
                "scope": scope,
                "count": len(errs),
                "median_abs_error": med,
                "max_abs_error": max(errs),
                "meets_target": med <= TARGET_ABS_ERROR,
            }
        )
    return rows


def speed_probes(
    runs: dict[str, tuple[RunSpec, Measured]], hardware: HardwareProfile
) -> list[dict[str, Any]]:
    """The machine's speed during each run against the calibration's: the probe GEMMs
    (`worker.probe_gemm`: MLP up and down) as the profile prices them with the run's ranks
    busy (its measured figure for the layers, else its curve), over their
    measured time (1.0 = as calibrated, 0.8 = the machine ran 20 % slower), overall and per
    round. A step-time error that follows this ratio is the machine's drift, not the model's.
    """
    out = []
    for rid, (spec, m) in sorted(runs.items()):
        if m.probe_gemm_s is None:
            continue
        predicted = probe_profile_s(hardware, spec)
        out.append(
            {
                "run": rid,
                "probe_flops": probe_flops(spec),
                "measured_s": m.probe_gemm_s,
                "predicted_s": predicted,
                "speed": predicted / m.probe_gemm_s,
                "speed_by_round": [predicted / t for t in m.probe_round_s],
            }
        )
    return out


def diagnostics(
    runs: dict[str, tuple[RunSpec, Measured]],
    predictions: dict[tuple[str, str], StepResult],
    engines: tuple[str, ...] = ENGINES,
) -> list[dict[str, Any]]:
    """Where a multi-rank DDP run's error comes from, split into its two causes.

    - `contention`: median no_sync step of N ranks over the 1-rank step (1.0 = the ranks are
      the independent devices the models assume; more = they share cores, caches, memory
      bandwidth);
    - `exposed_comm_s`: median sync minus no_sync step, i.e. the communication time the step
      waits for, beside each engine's `comm_exposed_s`, free of the compute part.
    """
    out = []
    for rid, (spec, m) in sorted(runs.items()):
        if m.pair_sync_s is None or m.pair_no_sync_s is None:
            continue
        one = runs.get(one_rank(spec).run_id)
        row: dict[str, Any] = {
            "run": rid,
            "contention": m.pair_no_sync_s / one[1].step.median_s if one else None,
            "exposed_comm_s": m.pair_sync_s - m.pair_no_sync_s,
            "predicted_exposed_comm_s": {
                e: predictions[(rid, e)].comm_exposed_s for e in engines if (rid, e) in predictions
            },
        }
        out.append(row)
    return out
