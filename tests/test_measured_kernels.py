"""Kernels priced from a workload's own measurements: fused attention timed at its shape, and
autocast's dtype casts at the measured cast rate (issue 5: the bf16 CPU step)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analysis.closed_form import Options
from analysis.predict import predict
from hwprofiles.calibration.plan import AttentionShape
from hwprofiles.catalogue import load_profile
from hwprofiles.host import HostProfile, under_load
from hwprofiles.profile import AttentionTiming
from simulator.costmodel.ops import layer_ops
from simulator.costmodel.stack import amp_cast_op, amp_head_cast_op, stack_head_ops
from simulator.costmodel.timing import cast_time, memory_time, op_times
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload

ENGINES = ("analytic", "des")
MODEL = load_model("gpt3-125m")  # 12 heads of 64
FWD_S, BWD_S = 3e-3, 7e-3


def _core(b, s=256, tp=1, cp=1):
    ops = layer_ops(MODEL, b, s, tp=tp, cp=cp, attention="flash")
    return next(o for o in ops if o.name == "attention/core")


def _acc(timings=(), **kw):
    return dataclasses.replace(
        load_profile("h100-sxm").accelerator, attention_timings=tuple(timings), **kw
    )


def _timing(dtype="bf16", batch=2, heads=12, seq=256, fwd=FWD_S, bwd=BWD_S):
    return AttentionTiming(dtype, batch, heads, seq, 64, True, fwd, bwd)


def test_a_timed_shape_is_priced_as_measured_and_others_from_the_curve() -> None:
    acc = _acc([_timing()])
    assert op_times(acc, _core(2), "bf16") == (FWD_S, BWD_S)
    curve = op_times(_acc(), _core(2), "bf16")
    assert curve != (FWD_S, BWD_S)
    # another batch, another dtype, or a sequence split by context parallelism: the curve
    assert op_times(acc, _core(4), "bf16") == op_times(_acc(), _core(4), "bf16")
    assert op_times(acc, _core(2), "fp16") == op_times(_acc(), _core(2), "fp16")
    assert _core(2, cp=2).sdpa_shape is None
    # tensor parallelism splits the heads: 12 / 2 = 6 heads is another shape
    assert _core(2, tp=2).sdpa_shape[1] == 6
    assert op_times(acc, _core(2, tp=2), "bf16") == op_times(_acc(), _core(2, tp=2), "bf16")


def test_an_array_of_layouts_mixes_measured_and_curve_times() -> None:
    acc = _acc([_timing()])
    fwd, bwd = op_times(acc, _core(np.array([2, 4])), "bf16")
    curve_fwd, curve_bwd = op_times(_acc(), _core(4), "bf16")
    assert fwd[0] == FWD_S and bwd[0] == BWD_S
    assert fwd[1] == pytest.approx(curve_fwd) and bwd[1] == pytest.approx(curve_bwd)


def test_host_contention_slows_measured_attention_by_its_dtype_factor() -> None:
    hw = load_profile("h100-sxm")
    hw = dataclasses.replace(
        hw,
        accelerator=_acc([_timing(), _timing("fp32")]),
        host=HostProfile(contention={"bf16": 0.5, "fp32": 0.8}),
    )
    busy = under_load(hw, 2, "bf16").accelerator
    assert busy.measured_attention("bf16", 2, 12, 256, 64).fwd_s == pytest.approx(FWD_S / 0.5)
    assert busy.measured_attention("fp32", 2, 12, 256, 64).bwd_s == pytest.approx(BWD_S / 0.8)
    alone = under_load(hw, 1, "bf16").accelerator
    assert alone.attention_timings == hw.accelerator.attention_timings


def test_casts_run_at_the_cast_rate_where_measured() -> None:
    op = amp_cast_op(MODEL, 1024, 1)
    assert op.kind == "cast"
    plain = _acc()
    assert op_times(plain, op, "bf16")[0] == pytest.approx(memory_time(plain, op.fwd_bytes))
    fast = _acc(cast_bytes_per_s=5e9)
    assert op_times(fast, op, "bf16")[0] == pytest.approx(op.fwd_bytes / 5e9)
    assert cast_time(fast, 1e9) == pytest.approx(0.2)


def test_head_casts_cover_the_logits_weight_and_the_logits() -> None:
    op = amp_head_cast_op(MODEL, 2048, 2)
    v, h = MODEL.vocab_size, MODEL.hidden_size
    # 4 bytes read + 2 written (or back) per element of the weight shard and of the logits
    assert op.fwd_bytes == pytest.approx(6 * (v * h / 2 + 2048 * v / 2))
    assert op.bwd_bytes == op.fwd_bytes
    names = lambda prec, opts: [o.name for o in stack_head_ops(MODEL, 2, 1024, 2, 1, prec, opts)]  # noqa: E731
    on = Options(amp_casts=True)
    assert "head/amp_cast" in names("bf16", on)
    assert "head/amp_cast" not in names("fp32", on)
    assert "head/amp_cast" not in names("bf16", Options())


def test_both_engines_add_the_autocast_casts() -> None:
    hw = load_profile("h100-sxm")
    par = ParallelConfig(dp=1, micro_batch_size=2, global_batch_size=2, precision="bf16")
    w = Workload(MODEL, par.resolve(1), seq_len=256)
    on, off = Options(amp_casts=True), Options()
    layer = sum(op_times(hw.accelerator, amp_cast_op(MODEL, 512, 1), "bf16"))
    head = sum(op_times(hw.accelerator, amp_head_cast_op(MODEL, 512, 1), "bf16"))
    expected = MODEL.num_hidden_layers * layer + head
    for e in ENGINES:
        added = (
            predict(w, hw, engine=e, options=on).step_time_s
            - predict(w, hw, engine=e, options=off).step_time_s
        )
        assert added == pytest.approx(expected, rel=0.02), e


def test_attention_shapes_parse_or_name_the_rule() -> None:
    assert AttentionShape.parse("4x4x128x64") == AttentionShape(4, 4, 128, 64)
    assert AttentionShape.parse(" 4X4x128x64 ").label() == "4x4x128x64"
    for bad in ("4x4x128", "4x4x128x", "ax4x128x64", "4x0x128x64"):
        with pytest.raises(ValueError, match="attention shape"):
            AttentionShape.parse(bad)
