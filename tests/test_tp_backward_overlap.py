"""Megatron's asynchronous TP collectives in the backward (Options.overlap_tp_comm_backward):
hidden beside the weight-gradient GEMM in both engines, blocking where a stack lacks them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from analysis.closed_form import Options
from analysis.predict import analytic_arrays
from hwprofiles.catalogue import load_profile
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.parallel import ParallelConfig, Workload
from simulator.stacks import load_stack


def _run(opts: Options):
    hw = load_profile("a100-80gb")
    w = Workload(load_model("gpt3-6.7b"), ParallelConfig(tp=8, global_batch_size=8).resolve(8),
                 2048)  # fmt: skip
    return simulate_step(w, hw, opts, contention=False), analytic_arrays(w, hw, opts)


def test_backward_tp_collectives_hide_and_engines_agree():
    on, off = Options(), replace(Options(), overlap_tp_comm_backward=False)
    des_on, cf_on = _run(on)
    des_off, cf_off = _run(off)
    assert float(cf_on["breakdown/comm_tp"]) < 0.8 * float(cf_off["breakdown/comm_tp"])
    for des, cf in ((des_on, cf_on), (des_off, cf_off)):
        assert des.step_time_s / float(cf["step_time_s"]) == pytest.approx(1.0, abs=0.02)


def test_stacks_without_async_tp_turn_it_off():
    assert load_stack("megatron-2022").options().overlap_tp_comm_backward
    for name in ("megatron-2021", "megatron-deepspeed-2022", "torchtitan-2025"):
        assert not load_stack(name).options().overlap_tp_comm_backward, name
