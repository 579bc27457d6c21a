"""The planner's batched closed-form evaluations (`predict.closed_forms`) give each workload
what evaluating it alone gives, and `predict` with them what it gives without."""

from __future__ import annotations

from analysis.predict import closed_forms, predict
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload


def _workloads() -> list[Workload]:
    model = load_model("llama-3-8b")
    out = []
    for tp, pp, vpp, precision in [
        (1, 1, 1, "bf16"),
        (2, 4, 1, "fp8"),
        (4, 2, 1, "bf16"),
        (2, 4, 3, "bf16"),  # interleaved, uneven chunks: 32 layers on 12 virtual stages
        (8, 1, 1, "fp32"),
    ]:
        p = ParallelConfig(
            tp=tp, pp=pp, vpp=vpp, micro_batch_size=1, global_batch_size=256, precision=precision
        ).resolve(64)
        out.append(Workload(model, p, seq_len=4096))
    return out


def test_batched_closed_forms_equal_one_at_a_time() -> None:
    hw = load_profile("h100-sxm")
    ws = _workloads()
    together = closed_forms(ws, hw)
    alone = [closed_forms([w], hw)[0] for w in ws]
    assert together == alone
    # the seed document's fp32 energy only for mixed precisions
    assert [c.energy_fp32_j is None for c in together] == [False, False, False, False, True]


def test_predict_with_batched_closed_forms_is_predict() -> None:
    hw = load_profile("h100-sxm")
    ws = _workloads()
    for w, cf in zip(ws, closed_forms(ws, hw), strict=True):
        assert predict(w, hw, tokens=1e12, closed=cf) == predict(w, hw, tokens=1e12)
