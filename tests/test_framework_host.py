"""The framework's host time: measured per tensor and per FSDP2 unit, priced by both engines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analysis.closed_form import Options
from analysis.predict import predict
from hwprofiles.calibration.framework import host_overheads
from hwprofiles.catalogue import load_profile
from hwprofiles.host import HostProfile
from simulator.costmodel.framework import host_times
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload

MS = 1e-3
ENGINES = ("analytic", "des")


def _row(bench: str, variant: str, items: int, median_s: float) -> dict[str, object]:
    return {"bench": bench, "variant": variant, "items": items, "median_s": median_s,
            "seconds_per_item": median_s / items}  # fmt: skip


def test_host_overheads_separate_unit_and_tensor_costs() -> None:
    # 8 units of 2 tensors cost 8 * (0.5 + 2 * 0.1) ms over plain; of 8 tensors 8 * (0.5 + 0.8)
    rows = [
        _row("optimizer", "plain", 32, 32 * 0.04 * MS),
        _row("optimizer", "dtensor", 32, 32 * 0.2 * MS),
        _row("fsdp_unit_2t", "plain", 8, 8 * 0.1 * MS),
        _row("fsdp_unit_2t", "fsdp", 8, 8 * (0.1 + 0.5 + 0.2) * MS),
        _row("fsdp_unit_8t", "plain", 8, 8 * 0.3 * MS),
        _row("fsdp_unit_8t", "fsdp", 8, 8 * (0.3 + 0.5 + 0.8) * MS),
    ]
    got = host_overheads(rows)
    assert got["optimizer_tensor_s"] == pytest.approx(0.04 * MS)
    assert got["dtensor_optimizer_tensor_s"] == pytest.approx(0.2 * MS)
    assert got["fsdp_tensor_s"] == pytest.approx(0.1 * MS)
    assert got["fsdp_unit_s"] == pytest.approx(0.5 * MS)
    # FSDP measured faster than plain (noise) prices nothing rather than a negative time
    rows[3] = _row("fsdp_unit_2t", "fsdp", 8, 8 * 0.05 * MS)
    rows[5] = _row("fsdp_unit_8t", "fsdp", 8, 8 * 0.2 * MS)
    got = host_overheads(rows)
    assert got["fsdp_unit_s"] == 0.0 and got["fsdp_tensor_s"] == 0.0


def test_param_tensor_counts_follow_the_module_layout() -> None:
    llama = load_model("llama-2-7b")  # q, k, v, o, gate, up, down, 2 RMSNorms; untied head
    assert llama.layer_tensors() == 9
    assert llama.num_param_tensors() == 32 * 9 + 1 + 1 + 1  # embed, final norm, lm_head
    gpt = dataclasses.replace(load_model("gpt3-125m"), fused_qkv=True)  # GPT-2 layout
    assert gpt.layer_tensors() == 12  # 2 LayerNorms x 2, qkv + proj, fc + proj, with biases
    assert gpt.num_param_tensors() == 12 * 12 + 2 + 2  # wte, wpe, ln_f (tied head)
    assert dataclasses.replace(gpt, fused_qkv=False).layer_tensors() == 16


HOST = HostProfile(
    optimizer_tensor_s=40e-6,
    dtensor_optimizer_tensor_s=200e-6,
    fsdp_unit_s=500e-6,
    fsdp_tensor_s=100e-6,
)


def test_host_times_price_only_what_is_measured_and_switched_on() -> None:
    model = dataclasses.replace(load_model("gpt3-125m"), fused_qkv=True)
    tensors = model.num_param_tensors()
    off = host_times(HOST, model, 12, np.array([0, 3]), 1, Options())
    assert np.all(off[0] == 0) and np.all(off[1] == 0)
    on = Options(host_overheads=True, zero3_copies=True)  # torch FSDP2 for ZeRO-3
    opt, hooks = host_times(HOST, model, 12, np.array([0, 3]), 2, on)
    assert opt == pytest.approx([tensors * 40e-6, tensors * 200e-6])
    # hooks: ZeRO-3 only, per micro-batch, (12 layers + root) units and every tensor
    assert hooks == pytest.approx([0.0, 2 * (13 * 500e-6 + tensors * 100e-6)])
    # flat-parameter FSDP1: no DTensors, no FSDP2 hooks, the plain per-tensor time
    opt, hooks = host_times(HOST, model, 12, 3, 1, Options(host_overheads=True))
    assert opt == pytest.approx(tensors * 40e-6) and hooks == 0
    # a host that measured none of it prices nothing, nor does a datasheet profile (no host)
    for none in (HostProfile(), None):
        opt, hooks = host_times(none, model, 12, np.array([3]), 1, on)
        assert np.all(opt == 0) and np.all(hooks == 0)
    # a pipeline stage holds its own layers' tensors (plus the embedding's, conservatively)
    opt_half, _ = host_times(HOST, model, 6, 0, 1, on)
    assert opt_half == pytest.approx((tensors - 6 * 12) * 40e-6)


@pytest.mark.parametrize("zero", [0, 3])
def test_both_engines_add_the_host_time(zero: int) -> None:
    model = dataclasses.replace(load_model("gpt3-125m"), fused_qkv=True)
    hw = load_profile("h100-sxm")
    hw = dataclasses.replace(hw, host=HOST)
    par = ParallelConfig(dp=2, zero_stage=zero, micro_batch_size=1, global_batch_size=2)
    w = Workload(model, par.resolve(2), seq_len=256)
    base = {e: predict(w, hw, engine=e, options=Options(zero3_copies=True)) for e in ENGINES}
    opts = Options(host_overheads=True, zero3_copies=True)
    more = {e: predict(w, hw, engine=e, options=opts) for e in ENGINES}
    opt, hooks = host_times(hw.host, model, 12, zero, 1, opts)
    for e in base:
        added = more[e].step_time_s - base[e].step_time_s
        assert added == pytest.approx(float(opt + hooks), rel=0.02), e
        assert more[e].breakdown["hooks"] == pytest.approx(float(hooks), rel=0.02, abs=1e-12)


def test_ddp_hooks_are_a_line_in_tensors_and_priced_per_backward() -> None:
    # DDP over 16, 32, 64 tensors: 0.2 ms per step + 8 us per tensor over the same unwrapped
    rows = []
    for n in (1, 2, 4):
        tensors = 16 * n
        rows.append(_row(f"ddp_unit_{2 * n}t", "plain", tensors, n * 0.4 * MS))
        rows.append(
            _row(f"ddp_unit_{2 * n}t", "ddp", tensors, n * 0.4 * MS + 0.2 * MS + tensors * 8e-6)
        )
    got = host_overheads(rows)
    assert got["ddp_tensor_s"] == pytest.approx(8e-6)
    assert got["ddp_step_s"] == pytest.approx(0.2 * MS)
    model = dataclasses.replace(load_model("gpt3-125m"), fused_qkv=True)
    tensors = model.num_param_tensors()
    host = dataclasses.replace(HOST, ddp_tensor_s=8e-6, ddp_step_s=0.2 * MS)
    on = Options(host_overheads=True, zero3_copies=True, grad_bucket_copies=True)
    _, hooks = host_times(host, model, 12, np.array([0, 3]), 2, on)
    # torch DDP (ZeRO-0 with its bucket copies): per micro-batch, every tensor + the fixed part
    assert hooks[0] == pytest.approx(2 * (tensors * 8e-6 + 0.2 * MS))
    assert hooks[1] == pytest.approx(2 * (13 * 500e-6 + tensors * 100e-6))  # FSDP2 unchanged
    # a stack without DDP's buckets (not torch DDP) runs no DDP hooks
    _, hooks = host_times(host, model, 12, 0, 1, Options(host_overheads=True))
    assert hooks == 0
    # both engines add it
    hw = dataclasses.replace(load_profile("h100-sxm"), host=host)
    par = ParallelConfig(dp=2, zero_stage=0, micro_batch_size=1, global_batch_size=2)
    w = Workload(model, par.resolve(2), seq_len=256)
    for e in ENGINES:
        r = predict(w, hw, engine=e, options=on)
        assert r.breakdown["hooks"] == pytest.approx(tensors * 8e-6 + 0.2 * MS, rel=0.02), e


def test_a_layers_non_gemm_dispatch_is_measured_and_priced_per_layer() -> None:
    rows = [_row("layer", "full", 1, 0.7 * MS), _row("layer", "matmuls", 1, 0.45 * MS)]
    assert host_overheads(rows)["layer_host_s"] == pytest.approx(0.25 * MS)
    rows[0] = _row("layer", "full", 1, 0.4 * MS)  # noise: never a negative time
    assert host_overheads(rows)["layer_host_s"] == 0.0
    model = dataclasses.replace(load_model("gpt3-125m"), fused_qkv=True)
    host = HostProfile(layer_host_s=0.25 * MS)
    on = Options(host_overheads=True)
    # every stack, per micro-batch, the stage's layers (6 of a pipeline stage)
    _, hooks = host_times(host, model, 6, np.array([0, 3]), 2, on)
    assert hooks == pytest.approx([2 * 6 * 0.25 * MS] * 2)
    _, hooks = host_times(host, model, 6, 0, 2, Options())
    assert hooks == 0
