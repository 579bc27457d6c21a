"""Closed-form step model: physics that must hold, whatever the efficiencies are."""

import dataclasses

import numpy as np
import pytest

from analysis.closed_form import Options, evaluate
from analysis.layouts import Layouts
from analysis.predict import predict
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload
from simulator.plan.rules import beside


def run(model="llama-3-8b", hw="h100-sxm", gpus=8, seq=4096, opts=None, **par):
    m = load_model(model)
    p = ParallelConfig(**par).resolve(gpus)
    return predict(Workload(m, p, seq), load_profile(hw), options=opts)


def test_breakdown_sums_to_step_time():
    r = run(tp=2, pp=2, global_batch_size=32, micro_batch_size=2)
    assert sum(r.breakdown.values()) == pytest.approx(r.step_time_s, rel=1e-9)
    assert r.breakdown["pipeline_bubble"] > 0
    assert r.breakdown["comm_tp"] > 0


def test_pipeline_bubble_matches_formula():
    """Bubble = (pp - 1) / (m * vpp) of the ideal pipeline time (Narayanan et al. 2021);
    with overlapped sends the interleaved ring's extra 2 pp (vpp - 1) sends join it
    (`rules.ring_sends`); blocking sends are comm_pp, so the chunk passes alone remain."""
    r1 = run(pp=4, global_batch_size=8, gpus=4)
    r2 = run(pp=4, vpp=2, global_batch_size=8, gpus=4)
    blocking = Options(overlap_p2p=False)
    r2b = run(pp=4, vpp=2, global_batch_size=8, gpus=4, opts=blocking)
    r1b = run(pp=4, global_batch_size=8, gpus=4, opts=blocking)
    assert r2b.breakdown["pipeline_bubble"] == pytest.approx(r1b.breakdown["pipeline_bubble"] / 2)
    assert r2.breakdown["pipeline_bubble"] > r1.breakdown["pipeline_bubble"] / 2  # + the ring
    m = 8
    ratio = r1.breakdown["pipeline_bubble"] / r1.breakdown["compute"]
    # (pp-1)/m of an average stage; compute is the last stage's, which also runs the head
    assert 0.7 * 3 / m < ratio <= 3 / m


def test_more_data_parallel_gpus_shorten_the_step_but_not_linearly():
    base = run(gpus=8, global_batch_size=256, micro_batch_size=2, hw="a100-80gb")
    big = run(gpus=64, global_batch_size=256, micro_batch_size=2, hw="a100-80gb")
    speedup = base.step_time_s / big.step_time_s
    assert 1 < speedup < 8  # 8x the GPUs, less than 8x faster
    assert big.comm_fraction >= base.comm_fraction


def test_slower_network_exposes_more_dp_communication():
    fast = run(gpus=64, global_batch_size=64, hw="a100-80gb", zero_stage=0)
    m = load_model("llama-3-8b")
    p = ParallelConfig(global_batch_size=64).resolve(64)
    slow_hw = load_profile("a100-80gb", scale_out="ethernet-25", nics_per_node=1)
    slow = predict(Workload(m, p, 4096), slow_hw)
    assert slow.breakdown["comm_dp"] > 5 * fast.breakdown["comm_dp"]


def test_overlap_hides_only_what_fits_and_costs_interference():
    assert beside(1.0, 3.0, 0.0) == (0.0, 0.0)
    assert beside(3.0, 1.0, 0.0) == pytest.approx((2.0, 0.0))
    # hidden: the kernel is slowed by 0.2 of the collective's time, nothing exposed
    assert beside(1.0, 3.0, 0.2) == pytest.approx((0.0, 0.2))
    # longer than the slowed kernel (1 / 0.8 s): the rest is exposed
    assert beside(3.0, 1.0, 0.2) == pytest.approx((3.0 - 1.25, 0.25))
    no = run(gpus=16, global_batch_size=16, opts=Options(overlap_grad_reduce=False))
    yes = run(gpus=16, global_batch_size=16)
    assert yes.breakdown["comm_dp"] < no.breakdown["comm_dp"]


def test_zero3_reduces_memory_and_adds_gathers():
    z0 = run(gpus=8, global_batch_size=8, zero_stage=0)
    z3 = run(gpus=8, global_batch_size=8, zero_stage=3)
    assert z3.memory_per_gpu_bytes < z0.memory_per_gpu_bytes / 2
    assert z3.comm_breakdown["zero3"] > 0 and z0.comm_breakdown["zero3"] == 0


def test_zero3_collectives_are_priced_unit_by_unit():
    """Every FSDP unit (each layer, the embedding, the head) pays its collectives' latency:
    the total is the sum of per-unit alpha-beta times, not one collective of all bytes."""
    from simulator.costmodel.network import group_collective_time

    hw = load_profile("h100-sxm")
    m = load_model("llama-3-8b")
    z3 = run(gpus=8, global_batch_size=8, zero_stage=3)
    layer = m.layer_params()
    emb = m.num_params() - m.num_hidden_layers * layer - m.lm_head_params()

    def unit(p):
        ag = group_collective_time(hw, "all_gather", p * 2, 8, 1)
        return 2 * ag + group_collective_time(hw, "reduce_scatter", p * 4, 8, 1)

    want = m.num_hidden_layers * unit(layer) + unit(emb) + unit(m.lm_head_params())
    assert z3.comm_breakdown["zero3"] == pytest.approx(float(want), rel=1e-9)
    whole = unit(m.num_params())
    assert z3.comm_breakdown["zero3"] > whole  # each unit's latency on top


def test_framework_copies_follow_the_options():
    """torch DDP's bucket copies and FSDP2's copy-in/out are memory traffic when asked for,
    absent by default (Megatron) and with one rank."""
    from simulator.costmodel.framework import copy_bytes

    base = run(gpus=8, global_batch_size=8)
    ddp = run(gpus=8, global_batch_size=8, opts=Options(grad_bucket_copies=True))
    assert base.breakdown["copies"] == 0.0
    assert ddp.breakdown["copies"] > 0
    assert ddp.step_time_s == pytest.approx(base.step_time_s + ddp.breakdown["copies"])
    o = Options(grad_bucket_copies=True, zero3_copies=True)
    # DDP: into the bucket and back, read + write, whatever the world size (existing buffers)
    assert copy_bytes(100.0, 1, 0, 1, 2, 4, o) == (pytest.approx(2 * 2 * 4 * 100), 0.0)
    assert copy_bytes(100.0, 2, 0, 1, 2, 4, o)[0] == pytest.approx(2 * 2 * 4 * 100)
    # ZeRO-3, per micro-batch: 2 gathers (shard in, full out) + reduce-scatter (in, shard
    # out), all into fresh buffers; one rank skips the shard copy-in
    per_mb = 2 * (2 * 100 / 4 + 2 * 100) + 4 * 100 * (1 + 1 / 4)
    assert copy_bytes(100.0, 4, 3, 3, 2, 4, o) == (0.0, pytest.approx(2 * 3 * per_mb))
    one = 2 * (2 * 100) + 4 * 100 * 2
    assert copy_bytes(100.0, 1, 3, 1, 2, 4, o)[1] == pytest.approx(2 * one)
    assert copy_bytes(100.0, 4, 1, 3, 2, 4, o) == (0.0, 0.0)  # ZeRO-1/2: Megatron buffers


def test_fresh_copies_use_the_measured_fresh_rate():
    from hwprofiles.host import HostProfile
    from simulator.costmodel.framework import copies_time
    from simulator.costmodel.timing import copy_time

    acc = load_profile("h100-sxm").accelerator
    hbm = acc.memory_bandwidth_bytes_per_s * acc.memory_efficiency
    assert copies_time(acc, (0.0, 1e9), None) == pytest.approx(1e9 / hbm)  # caching allocator
    cpu = dataclasses.replace(acc, copy_bytes_per_s=20e9)
    host = HostProfile(fresh_copy_bytes_per_s=4e9)
    assert copy_time(cpu, 1e9) == pytest.approx(0.05)
    assert copies_time(cpu, (1e9, 0.0), host) == pytest.approx(0.05)
    assert copies_time(cpu, (0.0, 1e9), host) == pytest.approx(0.25)
    assert copies_time(cpu, (0.0, 1e9), HostProfile()) == pytest.approx(0.05)


def test_recompute_trades_time_for_memory():
    none = run(gpus=8, global_batch_size=8, recompute="none")
    full = run(gpus=8, global_batch_size=8, recompute="full")
    assert full.step_time_s > none.step_time_s
    assert full.memory_breakdown["activations"] < none.memory_breakdown["activations"] / 4
    assert full.hfu > full.mfu and none.hfu == pytest.approx(none.mfu)


def test_bf16_faster_than_fp32_and_energy_lower():
    bf = run(gpus=8, global_batch_size=8, precision="bf16")
    fp = run(gpus=8, global_batch_size=8, precision="fp32")
    assert fp.step_time_s > 3 * bf.step_time_s
    assert fp.energy_per_step_j > bf.energy_per_step_j


def test_vectorised_equals_one_by_one():
    m = load_model("llama-3-8b")
    hw = load_profile("h100-sxm")
    cfgs = [
        ParallelConfig(tp=t, pp=p, global_batch_size=64, micro_batch_size=1, zero_stage=z).resolve(
            64
        )
        for t in (1, 2, 8)
        for p in (1, 2, 4)
        for z in (0, 1, 3)
    ]
    many = evaluate(m, hw, 4096, Layouts.from_configs(cfgs), "bf16")["step_time_s"]
    one = [evaluate(m, hw, 4096, Layouts.from_configs([c]), "bf16")["step_time_s"][0] for c in cfgs]
    np.testing.assert_allclose(many, one, rtol=1e-12)


def test_fp8_needs_a_device_with_fp8():
    with pytest.raises(ValueError, match="precision: 'fp8' not supported by a100-80gb"):
        run(hw="a100-80gb", precision="fp8", global_batch_size=8)


def test_calibrated_collective_fit_is_used():
    """A profile with a measured fit for (all_reduce, 2) uses it for a 2-rank DP group."""
    from hwprofiles.profile import CollectiveFit

    hw = load_profile("cpu")
    slow = dataclasses.replace(hw, collectives=(CollectiveFit("all_reduce", 2, 1e-3, 1e-6),))
    m = load_model("gpt3-125m")
    w = Workload(m, ParallelConfig(global_batch_size=2, precision="fp32").resolve(2), 512)
    t_fit = predict(w, slow, options=Options(overlap_grad_reduce=False)).breakdown["comm_dp"]
    grads = m.num_params() * 4
    # in Megatron-Core's buckets (40 M parameters each), each paying the fit's alpha
    buckets = np.ceil(grads / Options().bucket_size(2))
    assert t_fit == pytest.approx(buckets * 1e-3 + grads * 1e-6, rel=1e-6)
