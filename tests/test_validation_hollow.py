"""The validation model's framework host time, measured on its hollow twin and priced."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwprofiles.host import HostProfile, model_pass_key
from simulator.costmodel.framework import host_times, model_signature
from validation import hollow
from validation.gpt import GPT
from validation.gptconfig import PRESETS
from validation.guard import recheck
from validation.mapping import model_spec, stack_options

MS = 1e-3
HOST = HostProfile(layer_host_s=0.2 * MS, ddp_tensor_s=0.01 * MS, ddp_step_s=0.1 * MS,
                   fsdp_unit_s=0.5 * MS, fsdp_tensor_s=0.03 * MS)  # fmt: skip


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_hollow_twin_has_the_models_structure_and_nil_widths(name: str) -> None:
    cfg = PRESETS[name]
    twin = hollow.hollow_config(cfg)
    real, small = model_spec(cfg), model_spec(twin)
    assert small.num_hidden_layers == real.num_hidden_layers
    assert small.num_attention_heads == real.num_attention_heads
    assert small.num_param_tensors() == real.num_param_tensors()
    assert len(list(GPT(twin).parameters())) == real.num_param_tensors()
    assert small.hidden_size == real.num_attention_heads * hollow.HOLLOW_HEAD_DIM
    assert small.num_params() * 10 < real.num_params()


def test_a_measured_pass_replaces_the_generic_terms_for_its_model_only() -> None:
    spec = model_spec(PRESETS["tiny"])
    opts = stack_options("cpu")
    sig = model_signature(spec)
    passes = {
        model_pass_key(sig, "ddp", "fp32"): 2.0 * MS,
        model_pass_key(sig, "fsdp", "bf16"): 5.0 * MS,
    }
    host = HostProfile(**{**HOST.__dict__, "model_pass_s": passes})
    zero = np.array([0, 3])
    _, generic = host_times(HOST, spec, 2, zero, 2, opts, "fp32")
    _, fp32 = host_times(host, spec, 2, zero, 2, opts, "fp32")
    _, bf16 = host_times(host, spec, 2, zero, 2, opts, "bf16")
    # per micro-batch: DDP fp32 measured, FSDP fp32 not (generic); bf16 the other way round
    assert fp32[0] == pytest.approx(2 * 2.0 * MS) and fp32[1] == pytest.approx(generic[1])
    assert bf16[1] == pytest.approx(2 * 5.0 * MS) and bf16[0] == pytest.approx(generic[0])
    # a pipeline stage holding one of the two layers is not the measured model
    _, stage = host_times(host, spec, 1, zero, 2, opts, "fp32")
    _, stage_generic = host_times(HOST, spec, 1, zero, 2, opts, "fp32")
    assert np.allclose(stage, stage_generic)
    # another model of another structure keeps the generic terms
    other = model_spec(PRESETS["small"])
    _, o = host_times(host, other, other.num_hidden_layers, zero, 1, opts, "fp32")
    _, og = host_times(HOST, other, other.num_hidden_layers, zero, 1, opts, "fp32")
    assert np.allclose(o, og)


def test_passes_are_timed_round_robin_and_keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hollow, "ROUNDS", 3)
    monkeypatch.setattr(hollow, "STEPS", 2)
    monkeypatch.setattr(hollow, "WARMUP", 1)
    ticks = itertools.count()
    # a fake clock: every reading advances 1 ms, so each sample lasts 1 ms over 2 steps
    got = hollow.measure_passes(PRESETS["tiny"], ("ddp", "fsdp"), ("fp32", "bf16"),
                                timer=lambda: next(ticks) * MS)  # fmt: skip
    sig = model_signature(model_spec(PRESETS["tiny"]))
    assert set(got) == {
        model_pass_key(sig, s, p) for s in ("ddp", "fsdp") for p in ("fp32", "bf16", "optimizer")
    }
    assert all(v == pytest.approx(0.5 * MS) for v in got.values())


def test_rows_compare_with_the_generic_terms_and_survive_a_recheck() -> None:
    key = model_pass_key("tiny/L2/T28", "fsdp", "bf16")
    rows = hollow.rows({key: 4.0 * MS}, {key: 2.0 * MS})
    (row,) = rows
    assert row["probe"] == "framework" and row["dtype"] == "bf16" and not row["drifted"]
    assert row["speed"] == pytest.approx(0.5)
    from hwprofiles.catalogue import load_profile

    assert recheck(load_profile("h100-sxm"), rows) == rows  # kept as measured, never repriced
    hw = hollow.with_passes(load_profile("h100-sxm"), {key: 4.0 * MS})
    assert hw.host is not None and hw.host.model_pass("tiny/L2/T28", "fsdp", "bf16") == 4.0 * MS


def test_a_measured_optimizer_step_replaces_the_per_tensor_figure() -> None:
    spec = model_spec(PRESETS["tiny"])
    opts = stack_options("cpu")
    sig = model_signature(spec)
    step = {model_pass_key(sig, "fsdp", "optimizer"): 7.0 * MS}
    host = HostProfile(optimizer_tensor_s=0.04 * MS, model_pass_s=step)
    opt, _ = host_times(host, spec, 2, np.array([0, 3]), 4, opts, "fp32")
    # DDP keeps the per-tensor figure; FSDP's measured step is per step (not per micro-batch)
    assert opt[0] == pytest.approx(spec.num_param_tensors() * 0.04 * MS)
    assert opt[1] == pytest.approx(7.0 * MS)
