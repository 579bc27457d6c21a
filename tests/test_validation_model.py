"""The validation GPT is what llmcap's cost model thinks it is: parameters, FLOPs, mapping."""

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hwprofiles.catalogue import load_profile
from simulator.costmodel.ops import head_ops, layer_ops
from validation.gpt import GPT, synthetic_batches
from validation.gptconfig import PRESETS, GPTConfig, load_config
from validation.mapping import (
    TCP_PAYLOAD_PER_FRAME,
    cpu_comm_interference,
    hardware_for_run,
    model_spec,
    stack_options,
    workload,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_parameter_count_matches_model_spec(name):
    cfg = PRESETS[name]
    with torch.device("meta"):  # shapes only: gpt2-small would take 0.5 GB for nothing
        model = GPT(cfg)
    assert sum(p.numel() for p in model.parameters()) == model_spec(cfg).num_params()
    # and as many tensors as the optimizer's per-tensor host time is priced for
    assert len(list(model.parameters())) == model_spec(cfg).num_param_tensors()


def test_gemm_flops_match_the_cost_model():
    """torch's FLOP counter sees every GEMM of forward + backward; the cost model's matmul
    ops (x3 for fwd + bwd) must add up to exactly that. SDPA on CPU is not counted by torch,
    so attention/core is left out on both sides."""
    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    model = GPT(cfg)
    x, y = synthetic_batches(cfg, 1, seed=0)[0]
    with FlopCounterMode(display=False) as counter:
        model(x, y).backward()
    spec, b, s = model_spec(cfg), cfg.micro_batch_size, cfg.seq_len
    layer = sum(op.fwd_flops for op in layer_ops(spec, b, s) if op.kind == "matmul")
    head = sum(op.fwd_flops for op in head_ops(spec, b, s) if op.kind == "matmul")
    assert counter.get_total_flops() == 3 * (cfg.num_hidden_layers * layer + head)


def test_forward_gives_finite_loss_near_log_vocab():
    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    loss = GPT(cfg)(*synthetic_batches(cfg, 1, seed=1)[0])
    # random tokens and small init: loss ~ ln(V)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(512.0)).item(), rel=0.05)


def test_synthetic_batches_are_seeded():
    cfg = PRESETS["tiny"]
    a, b, c = (synthetic_batches(cfg, 2, seed=s) for s in (3, 3, 4))
    assert torch.equal(a[1][0], b[1][0])
    assert not torch.equal(a[1][0], c[1][0])
    assert torch.equal(a[0][0][:, 1:], a[0][1][:, :-1])  # targets are inputs shifted by one


def test_load_config_from_json(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "vocab_size": 100,
                "seq_len": 16,
            }
        )
    )
    cfg = load_config(str(path))
    assert cfg.name == "mine" and cfg.ffn_size == 128


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"hidden_size": 32}, "mine.json"),
        (
            {
                "hidden_size": 30,
                "num_hidden_layers": 1,
                "num_attention_heads": 4,
                "vocab_size": 10,
                "seq_len": 8,
            },
            "not divisible",
        ),
        ({"hidden_sise": 32}, "unknown key"),
    ],
)
def test_load_config_rejects_bad_files(tmp_path, content, match):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=match):
        load_config(str(path))


def test_unknown_model_name_lists_presets():
    with pytest.raises(ValueError, match="tiny"):
        load_config("huge")


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match=r"model\.seq_len: 0"):
        GPTConfig("x", 64, 1, 4, 10, 0)


def test_workload_mapping():
    cfg = PRESETS["small"]
    w = workload(cfg, 2, "fsdp", "bf16")
    assert w.parallel.dp == 2 and w.parallel.zero_stage == 3
    assert w.parallel.global_batch_size == 2 * cfg.micro_batch_size
    assert w.tokens_per_step == 2 * cfg.micro_batch_size * cfg.seq_len
    assert workload(cfg, 1, "ddp", "fp32").parallel.zero_stage == 0
    with pytest.raises(ValueError, match="strategy"):
        workload(cfg, 1, "zero2", "fp32")


def test_hardware_for_a_rate_limited_link():
    base = load_profile("cpu")
    hw = hardware_for_run(base, 2, 25e6)
    assert hw.node.gpus_per_node == 1 and hw.collectives == ()
    assert hw.node.scale_out.bandwidth_bytes_per_s == 25e6
    assert hw.node.scale_out.effective_bandwidth == pytest.approx(25e6 * TCP_PAYLOAD_PER_FRAME)
    assert hw.node.scale_out.latency_s == base.node.scale_up.latency_s
    assert hardware_for_run(base, 2, None).node.gpus_per_node >= 2


def test_cpu_comm_interference_is_the_collectives_share_of_a_busy_core():
    base = load_profile("cpu")
    base = base.with_gpus_per_node(2)  # two single-thread ranks fill the host's two cores
    loopback = base.node.scale_up.bandwidth_bytes_per_s
    # over loopback gloo is CPU-bound: a collective takes a whole core from its rank
    assert cpu_comm_interference(base, 2, None) == 1.0
    # behind a slow link the host's cores move the bytes at the link's pace
    phi = cpu_comm_interference(base, 2, loopback / 10)
    assert phi == pytest.approx(TCP_PAYLOAD_PER_FRAME / 10)
    assert cpu_comm_interference(base, 2, loopback * 10) == 1.0
    # a spare core runs gloo beside the ranks; one rank has no collectives
    assert cpu_comm_interference(base.with_gpus_per_node(4), 2, None) == 0.0
    assert cpu_comm_interference(base, 1, None) == 0.0
    # the engines get it through the stack's options; the GPU estimate stays otherwise
    assert stack_options("cpu", 0.25).comm_interference == 0.25
    assert stack_options("cpu").comm_interference == stack_options("cuda").comm_interference
    assert stack_options("cpu").host_overheads and not stack_options("cuda").host_overheads
