"""The memory model against published memory rows, and its stack-aware conventions."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from analysis.accuracy.memory_check import UNITS, memory_comparisons, memory_rows
from analysis.cli.main import app
from simulator.costmodel.memory import param_state_bytes, state_bytes
from simulator.model import ModelSpec
from simulator.options import Options
from simulator.stacks import load_stack


def test_every_row_has_a_source_a_unit_and_a_kind():
    rows = memory_rows()
    assert len(rows) >= 20
    for r in rows:
        assert r["source"].strip(), r["id"]
        assert r["unit"] in UNITS, r["id"]
        assert r["kind"] in ("analytic", "measured"), r["id"]
        assert r["value"] > 0, r["id"]
    assert len({r["id"] for r in rows}) == len(rows)


def test_analytic_rows_agree_with_their_publications():
    """Analytic rows are shape bookkeeping: llmcap must reproduce each within 2% (the
    publications' own rounding)."""
    for c in memory_comparisons():
        if c["kind"] == "analytic":
            assert abs(c["error"]) < 0.02, (c["id"], c["published"], c["llmcap"])


def _per_param(stack: str | Options, precision: str, zero: int, dp: int) -> float:
    m = ModelSpec(name="t", hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                  vocab_size=1000, intermediate_size=1024, max_position_embeddings=64)  # fmt: skip
    opts = stack if isinstance(stack, Options) else load_stack(stack).options()
    st = state_bytes(m, 1, 1, dp, zero, precision, opts=opts)
    return float(st["weights"] + st["gradients"] + st["optimizer"]) / m.num_params()


@pytest.mark.parametrize(
    ("stack", "precision", "zero", "expected"),
    [
        # DeepSpeed: 16-bit gradients (ZeRO paper Sec. 3.1): 2 + 2 + 12/d
        ("deepspeed-2021", "fp16", 1, 2 + 2 + 12 / 8),
        ("deepspeed-2021", "fp16", 2, 2 + 14 / 8),
        # Megatron-Core: fp32 gradient buffer, distributed optimizer = ZeRO-1: 6 + 12/d
        ("megatron-core-2024", "bf16", 1, 6 + 12 / 8),
        # Megatron-LM 2021 fp16 optimizer: fp16 buffer + fp32 grad copy: 4 + 16/d
        ("megatron-2021", "fp16", 1, 4 + 16 / 8),
        ("megatron-2021", "fp16", 0, 20),
        # Transformer Engine caches two fp8 copies of each weight across micro-batches
        ("megatron-core-2024", "fp8", 1, 6 + 12 / 8 + 2 * 1.0),
        ("megatron-core-2024", "mxfp8", 0, 18 + 2 * (1 + 1 / 32)),
        ("megatron-core-2024", "fp8", 3, 18 / 8),  # ZeRO-3 gathers per unit: no cache
        ("torchtitan-2025", "fp8", 1, 6 + 12 / 8),  # torchao casts every forward
    ],
)
def test_states_per_parameter_follow_the_stack(stack, precision, zero, expected):
    assert _per_param(stack, precision, zero, 8) == pytest.approx(expected)


def test_torch_ddp_autocast_keeps_fp32_weights_a_cast_cache_and_bucket_copies():
    from validation.mapping import stack_options

    # fp32 weights 4 + autocast's bf16 cache 2, fp32 grads 4 + DDP buckets 4, Adam moments 8
    assert _per_param(stack_options(), "bf16", 0, 2) == pytest.approx(4 + 2 + 4 + 4 + 8)
    # the buckets are DDP's (ZeRO-0); FSDP full-shard keeps neither extra
    assert _per_param(stack_options(), "bf16", 3, 2) == pytest.approx(16 / 2)
    assert param_state_bytes("bf16") == (2.0, 4.0, 12.0)  # without a stack: Megatron-Core's


def test_accuracy_memory_prints_every_row_as_json():
    r = CliRunner().invoke(app, ["accuracy", "--memory", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)["memory"]
    assert len(doc["rows"]) == len(memory_rows())
    assert set(doc["summary"]) >= {"model states", "bytes per parameter", "activations"}
    assert all("error" in row and row["source"] for row in doc["rows"])


@pytest.mark.parametrize(
    ("stack", "gbs"),
    [("deepspeed-2021", 8), ("megatron-2021", 8), ("torch-ddp-amp", 8), ("torch-ddp-amp", 4)],
)
def test_both_engines_hold_the_same_stack_aware_memory(stack, gbs):
    from analysis.predict import analytic_arrays
    from hwprofiles.catalogue import load_profile
    from simulator.des.run import simulate_step
    from simulator.models_catalogue import load_model
    from simulator.parallel import ParallelConfig, Workload
    from validation.mapping import stack_options

    opts = stack_options() if stack == "torch-ddp-amp" else load_stack(stack).options()
    prec = "bf16" if "amp" in stack else "fp16"
    par = ParallelConfig(global_batch_size=gbs, precision=prec).resolve(4)
    w = Workload(load_model("gpt3-1.3b"), par, 1024)
    hw = load_profile("a100-80gb")
    cf = analytic_arrays(w, hw, opts)
    des = simulate_step(w, hw, opts, contention=False)
    assert float(des.arrays["memory/gradients"]) == pytest.approx(float(cf["memory/gradients"]))
    assert float(des.arrays["memory/weights"]) == pytest.approx(float(cf["memory/weights"]))
    assert float(des.arrays["memory/optimizer"]) == pytest.approx(float(cf["memory/optimizer"]))
    assert des.arrays["memory_per_gpu_bytes"] == pytest.approx(float(cf["memory_per_gpu_bytes"]))


def test_torch_frees_gradients_and_holds_three_logits_at_the_loss_backward():
    from simulator.costmodel.memory import gradients_at_peak, loss_head_bytes

    torch_opts = Options(persistent_grads=False, fused_cross_entropy=False)
    assert loss_head_bytes(10.0, Options()) == 10.0
    assert loss_head_bytes(10.0, torch_opts) == 30.0
    # persistent buffers: all of them; torch, one micro-batch: only beyond the activations
    assert gradients_at_peak(50.0, 20.0, 100.0, True, Options()) == 50.0
    assert float(gradients_at_peak(50.0, 20.0, 100.0, True, torch_opts)) == 20.0
    assert float(gradients_at_peak(150.0, 20.0, 100.0, True, torch_opts)) == 20.0 + 30.0
    assert float(gradients_at_peak(50.0, 20.0, 100.0, False, torch_opts)) == 50.0


def test_accuracy_memory_prints_a_table_and_the_group_medians():
    r = CliRunner().invoke(app, ["accuracy", "--memory"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "median |error| by group" in r.output
    assert "measured here" in r.output and "ZeRO-F1-base" in r.output
