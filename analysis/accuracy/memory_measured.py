"""llmcap's prediction for a "measured here" memory row (`validation.memprobe` wrote it).

The row's case carries the setup in llmcap's terms (the model's `ModelSpec` fields, the
run's `Options`, ZeRO stage, micro-batch, sequence length, precision), so the closed-form
engine prices exactly what ran; `analysis` does not import `validation`.
"""

from __future__ import annotations

from typing import Any

from simulator.model import ModelSpec
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload

PROFILE = "a100-80gb"
"""Any profile: memory per device does not depend on the accelerator's speeds."""


def measured_workload(case: dict[str, Any]) -> tuple[Workload, Options]:
    n = int(case.get("nproc", 1))  # data parallel ranks, one micro-batch each
    par = ParallelConfig(
        dp=n, zero_stage=case["zero"], micro_batch_size=case["micro_batch"],
        global_batch_size=case["micro_batch"] * n, precision=case["precision"],
        recompute="none",
    ).resolve(n)  # fmt: skip
    return Workload(ModelSpec(**case["spec"]), par, seq_len=case["seq_len"]), Options(
        **case["options"]
    )


def predict_measured(case: dict[str, Any]) -> float:
    """Bytes per device the closed-form engine predicts for the row's setup: the step's peak
    (`memory_per_gpu_bytes`), or what llmcap holds between steps (case quantity "between
    steps"): the weights as stored and the optimizer states, plus torch DDP's buckets
    (`memory.stack_extra_bytes`; autocast's weight cache lives inside the step only)."""
    from analysis.predict import analytic_arrays
    from hwprofiles.catalogue import load_profile

    w, opts = measured_workload(case)
    out = analytic_arrays(w, load_profile(PROFILE), opts)
    if case.get("quantity", "peak") == "peak":
        return float(out["memory_per_gpu_bytes"])
    from simulator.costmodel.memory import param_state_bytes, stack_extra_bytes, zero_shards

    p = w.model.num_params()
    wb, gb, _ = param_state_bytes(w.parallel.precision, opts)
    wb = wb / zero_shards(w.parallel.zero_stage, w.parallel.dp)[0]
    _cache, buckets = stack_extra_bytes(p, gb, w.parallel.zero_stage, w.parallel.precision, opts)
    return p * wb + float(out["memory/optimizer"]) + float(buckets)
