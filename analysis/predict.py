"""`predict`: one workload on one hardware profile -> a `StepResult`, from either engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from analysis.closed_form import Options, evaluate
from analysis.energy_levels import run_levels, step_levels
from analysis.layouts import Layouts
from analysis.seed import document_predictions
from hwprofiles.errors import UserError
from hwprofiles.host import under_load
from hwprofiles.power_levels import compute_power_model
from hwprofiles.precision import PRECISIONS
from hwprofiles.profile import HardwareProfile
from simulator.costmodel.flops import model_flops_per_token, recompute_flops_per_token
from simulator.engine_step import EngineStep
from simulator.model import ModelSpec
from simulator.parallel import ParallelConfig, Workload
from simulator.reliability.options import ReliabilityOptions
from simulator.reliability.run import whole_run
from simulator.result import StepResult

MIXED_PRECISIONS = tuple(k for k, p in PRECISIONS.items() if p.autocast or p.quantised)
"""Precisions whose energy the seed document compares with the same step in fp32."""
ENGINES = ("analytic", "des")
_DEFAULTS = {f.name: f.default for f in fields(ModelSpec)}
OPTIONAL_ARCH_FIELDS = frozenset(list(_DEFAULTS)[list(_DEFAULTS).index("head_dim") :])
"""ModelSpec fields for decoupled heads, MoE and MLA: shown in `inputs` only when set."""


def _one_gpu(p: ParallelConfig) -> ParallelConfig:
    """The same global batch on one GPU: no communication, no memory limit."""
    return ParallelConfig(
        micro_batch_size=p.micro_batch_size,
        global_batch_size=p.global_batch_size,
        precision=p.precision,
        recompute="none",
        dp=1,
    ).resolve(1)


def analytic_arrays(w: Workload, hw: HardwareProfile, opts: Options) -> dict[str, float]:
    r = evaluate(
        w.model, hw, w.seq_len, Layouts.from_configs([w.parallel]), w.parallel.precision, opts
    )
    return {k: float(v[0]) for k, v in r.items()}


def _loaded(hw: HardwareProfile, busy: int, precision: str) -> HardwareProfile:
    """`hw` as a step in `precision` runs on it with `busy` devices of one host computing
    (CPU ranks slow each other down, `under_load`), drawing its compute power by dtype
    (hwprofiles/data/power.toml: the board draws less than TDP while computing)."""
    hw = under_load(hw, busy, precision)
    return replace(hw, power=compute_power_model(hw, precision))


def _evaluate(model, hw, seq_len, configs, precision, opts) -> dict[str, np.ndarray]:
    return evaluate(model, hw, seq_len, Layouts.from_configs(configs), precision, opts)


@dataclass(frozen=True)
class ClosedForms:
    """The closed form's evaluations behind one `predict`."""

    step: dict[str, float]
    """The step (`evaluate`'s keys, one layout), on the hardware under load."""
    single_gpu_step_time_s: float
    """The same global batch on one GPU (s): the seed document's speed-up reference."""
    energy_fp32_j: float | None
    """The same step in fp32, all GPUs (J): the seed document's energy comparison (mixed
    precisions, on hardware with an fp32 peak)."""


def closed_forms(
    workloads: Sequence[Workload],
    hardware: HardwareProfile,
    options: Options | None = None,
    devices_busy: int | None = None,
) -> list[ClosedForms]:
    """`ClosedForms` of each workload on `hardware`, as `predict` computes them; workloads of
    one model, sequence length, precision and load are evaluated together. `evaluate` costs
    about the same for one layout as for sixteen (9-10 ms of CPU, Llama-3-70B on H100,
    2026-12-03), so the planner costs all its candidates on one hardware in three calls,
    not three each."""
    opts = options or Options()
    groups: dict[tuple[int, int, str, int], list[int]] = {}
    for i, w in enumerate(workloads):
        busy = devices_busy or min(hardware.node.gpus_per_node, w.num_gpus)
        groups.setdefault((id(w.model), w.seq_len, w.parallel.precision, busy), []).append(i)
    at: dict[int, ClosedForms] = {}
    for (_, seq, precision, busy), idx in groups.items():
        ws = [workloads[i] for i in idx]
        model, pars = ws[0].model, [w.parallel for w in ws]
        step = _evaluate(model, _loaded(hardware, busy, precision), seq, pars, precision, opts)
        one = [_one_gpu(p) for p in pars]
        t1 = _evaluate(model, hardware, seq, one, precision, opts)["step_time_s"]
        e32 = None
        if precision in MIXED_PRECISIONS and "fp32" in hardware.accelerator.peak_flops:
            fp32 = [replace(p, precision="fp32") for p in pars]
            hw32 = _loaded(hardware, busy, "fp32")
            e32 = _evaluate(model, hw32, seq, fp32, "fp32", opts)["energy_per_gpu_j"]
        for j, i in enumerate(idx):
            at[i] = ClosedForms(
                {k: float(v[j]) for k, v in step.items()},
                float(t1[j]),
                None if e32 is None else float(e32[j]) * workloads[i].num_gpus,
            )
    return [at[i] for i in range(len(workloads))]


def predict(
    workload: Workload,
    hardware: HardwareProfile,
    engine: str = "analytic",
    options: Options | None = None,
    tokens: float | None = None,
    devices_busy: int | None = None,
    reliability: ReliabilityOptions | None = None,
    closed: ClosedForms | None = None,
    **engine_options: Any,
) -> StepResult:
    """Predict one training step of `workload` on `hardware`.

    `engine` is "analytic" (closed form) or "des" (SimPy discrete-event simulation; extra
    `engine_options` such as `seed`, `jitter`, `contention` go to it). `tokens` sets the
    training budget for `time_to_train_s`. `devices_busy` is how many devices of one host
    compute at once (default: GPUs per node, or all GPUs if fewer); it matters only for
    profiles whose host has measured contention (`hwprofiles.host`: CPU ranks sharing a
    machine). With `tokens`,
    `reliability` sets failures, checkpoints and restarts of the whole run (closed form; the
    SimPy engine also samples the run over seeds for P10/P50/P90). `closed`: this
    workload's `closed_forms` on `hardware`, where already computed (the planner's batch).
    """
    if engine not in ENGINES:
        raise UserError(f"engine: {engine!r} must be one of {ENGINES}")
    opts = options or Options()
    w, p, model = workload, workload.parallel, workload.model
    check_ep_domain(p, hardware, opts)
    # devices of one node that compute at once (CPU ranks on one host slow each other down)
    alone = hardware
    busy = devices_busy or min(hardware.node.gpus_per_node, w.num_gpus)
    hardware = _loaded(alone, busy, p.precision)
    cf = closed or closed_forms([w], alone, opts, devices_busy)[0]
    extra: dict[str, Any] = {}
    if engine == "des":
        from simulator.des.run import simulate_step

        des = simulate_step(w, hardware, opts, **engine_options)
        r, extra = des.step, des.extra
    else:
        r = EngineStep.from_arrays(cf.step)
    tokens_step = w.tokens_per_step
    mf = model_flops_per_token(model, w.seq_len) * tokens_step
    hf = mf + recompute_flops_per_token(model, w.seq_len, p.recompute) * tokens_step
    n = w.num_gpus
    t1, e_fp32 = cf.single_gpu_step_time_s, cf.energy_fp32_j
    energy = r.energy_per_gpu_j * n
    extra["comm_bytes_per_gpu"] = dict(r.comm_bytes)
    res = StepResult(
        engine=engine,
        step_time_s=r.step_time_s,
        tokens_per_step=tokens_step,
        num_gpus=n,
        model_flops_per_step=mf,
        hardware_flops_per_step=hf,
        peak_flops_per_gpu=alone.accelerator.peak(p.precision),
        comm_exposed_s=r.comm_exposed_s,
        memory_per_gpu_bytes=r.memory_per_gpu_bytes,
        memory_capacity_bytes=hardware.accelerator.memory_bytes,
        energy_per_step_j=energy,
        breakdown=dict(r.breakdown),
        memory_breakdown=dict(r.memory),
        comm_breakdown=dict(r.comm_total),
        single_gpu_step_time_s=t1,
        tokens_to_train=tokens,
        inputs=_inputs(w, hardware, opts),
        provenance=_provenance(hardware, engine),
        extra=extra,
    )
    res.document = document_predictions(
        n_params=model.num_params(),
        num_gpus=n,
        model_parallel=p.model_parallel,
        data_parallel=p.dp,
        tokens_per_step=tokens_step,
        single_gpu_step_time_s=t1,
        energy_per_step_j=energy,
        precision=p.precision,
        energy_fp32_j=e_fp32,
    )
    res.document["speedup_llmcap"] = t1 / res.step_time_s
    if e_fp32 is not None:
        d = res.document
        d["energy_per_token_j"] = {
            "fp32_llmcap": e_fp32 / tokens_step,
            "seed_literal": d["energy_mixed_literal_j"] / tokens_step,
            "seed_intended": d["energy_mixed_intended_j"] / tokens_step,
            p.precision + "_llmcap": energy / tokens_step,
        }
        d["compute_power_w"] = {
            "fp32": float(_loaded(alone, busy, "fp32").power.power(1.0)),
            p.precision: float(hardware.power.power(1.0)),
        }
    res.power = step_levels(res, hardware, (reliability or ReliabilityOptions()).pue)
    if tokens is not None:
        rel = reliability or ReliabilityOptions()
        if engine == "des":
            rel = replace(rel, seed=int(engine_options.get("seed", 0)))
        res.whole_run = whole_run(
            work_s=res.time_to_train_ideal_s or 0.0,
            step_time_s=res.step_time_s,
            n_params=model.num_params(),
            precision=p.precision,
            zero_stage=p.zero_stage,
            dp=p.dp,
            num_gpus=n,
            gpus_per_node=hardware.node.gpus_per_node,
            nics_per_node=hardware.node.nics_per_node,
            options=rel,
            sample=engine == "des",
        )
        res.whole_run.update(run_levels(res, hardware, res.power))
    if not res.fits_in_memory:
        over = res.memory_per_gpu_bytes - res.memory_capacity_bytes
        res.notes.append(
            f"does not fit: needs {res.memory_per_gpu_bytes / 2**30:.1f} GiB per GPU, "
            f"{over / 2**30:.1f} GiB more than the {res.memory_capacity_bytes / 2**30:.1f} GiB "
            "available"
        )
    return res


def check_ep_domain(p: ParallelConfig, hw: HardwareProfile, opts: Options) -> None:
    """With `Options.moe_ep_on_scale_up`, the EP group must fit one NVLink domain."""
    span, gpn = p.ep * p.expert_tp, hw.node.gpus_per_node
    if opts.moe_ep_on_scale_up and span > gpn:
        raise UserError(
            "ep",
            p.ep,
            f"ep*etp = {p.ep}*{p.expert_tp} = {span} GPUs exceed the NVLink domain of {gpn} "
            f"GPUs ({hw.node.name}); drop --ep-on-nvlink or use a larger domain (NVL72: 72)",
        )


def _inputs(w: Workload, hw: HardwareProfile, opts: Options) -> dict[str, Any]:
    m = w.model
    spec = {
        k: v
        for k, v in asdict(m).items()
        if k != "source" and not (k in OPTIONAL_ARCH_FIELDS and v == _DEFAULTS[k])
    }
    if m.is_moe:
        spec["active_params"] = m.active_params()
    return {
        "model": spec | {"num_params": m.num_params()},
        "parallel": _parallel_inputs(w),
        "seq_len": w.seq_len,
        "gpus": w.num_gpus,
        "hardware": {
            "name": hw.name,
            "accelerator": hw.accelerator.name,
            "node": hw.node.name,
            "gpus_per_node": hw.node.gpus_per_node,
            "scale_up": hw.node.scale_up.name,
            "scale_out": hw.node.scale_out.name,
            "nics_per_node": hw.node.nics_per_node,
            "topology": hw.fabric.topology,
            "oversubscription": hw.fabric.oversubscription,
        },
        "options": {k: v for k, v in asdict(opts).items() if m.is_moe or not k.startswith("moe_")},
    }


def _parallel_inputs(w: Workload) -> dict[str, Any]:
    """The layout as given; the pins and the per-stage layers only where the split is uneven
    or pinned (even splits keep their documents unchanged); the expert degrees only for a
    mixture-of-experts model."""
    out = asdict(w.parallel) | {"num_microbatches": w.parallel.num_microbatches}
    for k in ("first_stage_layers", "last_stage_layers"):
        if out[k] is None:
            del out[k]
    if len(set(w.split)) > 1:
        out["stage_layers"] = list(w.stage_layer_counts)
        if w.parallel.vpp > 1:
            out["chunk_layers"] = list(w.split)
    if w.model.is_moe:
        out |= {"etp": w.parallel.expert_tp, "expert_dp": w.parallel.expert_dp}
    else:
        out.pop("ep"), out.pop("etp")
    return out


def _provenance(hw: HardwareProfile, engine: str) -> dict[str, Any]:
    pv = hw.provenance
    return {
        "engine": engine,
        "hardware_kind": pv.kind,
        "hardware_date": pv.date,
        "measured": list(pv.measured),
        "modelled": "step structure, overlap and power states are modelled; "
        + (
            "efficiencies and links measured by calibration"
            if pv.kind == "calibrated"
            else "peaks and links are datasheet values, efficiencies datasheet-derived"
        ),
    }


__all__ = ["ENGINES", "ClosedForms", "Options", "closed_forms", "predict"]
