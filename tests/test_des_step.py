"""The simulated step: determinism, stragglers, contention, energy, memory, outputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_des_support import toy_hw, toy_model, workload

from analysis.closed_form import Options, evaluate
from analysis.layouts import Layouts
from analysis.predict import predict
from simulator.costmodel.memory import activation_bytes_per_layer
from simulator.des.run import simulate_step, simulate_timeline
from simulator.des.timeline import COLUMNS

OPTS = Options()


def test_same_inputs_and_seed_give_identical_results():
    w = workload(16, tp=2, pp=2, global_batch_size=16)
    kw = dict(seed=7, speed_sigma=0.05, jitter=0.05)
    a, b = simulate_step(w, toy_hw(), OPTS, **kw), simulate_step(w, toy_hw(), OPTS, **kw)
    assert a.rows == b.rows
    assert a.arrays == b.arrays
    assert json.dumps(a.extra, sort_keys=True) == json.dumps(b.extra, sort_keys=True)
    c = simulate_step(w, toy_hw(), OPTS, **(kw | {"seed": 8}))
    assert c.step_time_s != a.step_time_s


def test_variability_is_off_by_default_and_stragglers_cost_time():
    w = workload(16, tp=2, pp=2, global_batch_size=16)
    base = simulate_step(w, toy_hw(), OPTS)
    assert all(r["speed_factor"] == 1.0 for r in base.extra["per_rank"])
    slow = simulate_step(w, toy_hw(), OPTS, seed=1, jitter=0.1)
    assert slow.step_time_s > base.step_time_s  # the max of jitters is > 1 on average


def test_more_devices_mean_slower_stragglers():
    """A synchronous step waits for its slowest device: the expected maximum of N lognormal
    speed factors grows with N (averaged over seeds to make the comparison robust)."""
    hw = toy_hw()

    def mean_slowdown(gpus: int) -> float:
        w = workload(gpus, tp=2, pp=2, global_batch_size=gpus)
        base = simulate_step(w, hw, OPTS).step_time_s
        runs = [simulate_step(w, hw, OPTS, seed=s, speed_sigma=0.05).step_time_s for s in range(6)]
        return float(np.mean(runs)) / base

    small, large = mean_slowdown(8), mean_slowdown(128)
    assert 1.0 < small < large


def test_invalid_variability_is_rejected():
    with pytest.raises(ValueError, match="speed_sigma"):
        simulate_step(workload(4, global_batch_size=4), toy_hw(), OPTS, speed_sigma=-1)


def test_one_groups_streams_share_their_nics_with_or_without_contention():
    # ZeRO-3's gathers and reduce-scatters run on two streams over the same NICs: one data-
    # parallel group, so they share its link even with contention off ("one group, one
    # link"); contention on reports the saturated NICs
    w = workload(16, toy_model(layers=4), zero_stage=3, global_batch_size=32)
    off = simulate_step(w, toy_hw(), OPTS, contention=False)
    on = simulate_step(w, toy_hw(), OPTS, contention=True)
    assert on.step_time_s == pytest.approx(off.step_time_s, rel=0.01)
    assert off.extra["saturated_links"] == []
    assert on.extra["saturated_links"], on.extra["links"]
    assert all("nics" in name for name in on.extra["saturated_links"])


def test_contention_changes_nothing_when_no_link_is_shared():
    w = workload(4, tp=4, global_batch_size=2)  # TP only, inside one node
    a = simulate_step(w, toy_hw(), OPTS, contention=False)
    b = simulate_step(w, toy_hw(), OPTS, contention=True)
    assert b.step_time_s == pytest.approx(a.step_time_s, rel=1e-12)
    assert b.extra["saturated_links"] == []


def test_an_oversubscribed_fabric_slows_data_parallel_traffic():
    w = workload(32, tp=4, global_batch_size=8, micro_batch_size=1)
    full = simulate_step(w, toy_hw(), Options(overlap_grad_reduce=False))
    over = simulate_step(w, toy_hw(oversubscription=4.0), Options(overlap_grad_reduce=False))
    assert over.arrays["comm_total/dp"] == pytest.approx(4 * full.arrays["comm_total/dp"], rel=0.05)


def test_breakdown_sums_to_the_step_and_keys_match_the_closed_form():
    w = workload(16, tp=2, pp=2, global_batch_size=16, zero_stage=1)
    r = simulate_step(w, toy_hw(), OPTS)
    parts = sum(v for k, v in r.arrays.items() if k.startswith("breakdown/"))
    assert parts == pytest.approx(r.step_time_s, rel=1e-9)
    cf = evaluate(w.model, toy_hw(), w.seq_len, Layouts.from_configs([w.parallel]), "bf16", OPTS)
    assert set(r.arrays) == set(cf)


def test_overlapping_the_gradient_reduction_hides_most_of_it():
    w = workload(4, toy_model(hidden=2048), global_batch_size=8, micro_batch_size=2)
    hidden = simulate_step(w, toy_hw(), Options(overlap_grad_reduce=True))
    exposed = simulate_step(w, toy_hw(), Options(overlap_grad_reduce=False))
    assert hidden.arrays["breakdown/comm_dp"] < 0.5 * exposed.arrays["breakdown/comm_dp"]
    assert hidden.step_time_s < exposed.step_time_s


def test_energy_lies_between_idle_and_full_power():
    hw = toy_hw()
    r = simulate_step(workload(16, tp=2, pp=4, global_batch_size=8), hw, OPTS)
    e, t = r.arrays["energy_per_gpu_j"], r.step_time_s
    assert hw.power.idle_w * t < e < hw.power.tdp_w * t
    for rank in r.extra["per_rank"]:
        assert sum(rank["state_s"].values()) == pytest.approx(t, rel=1e-9)
        assert rank["state_s"]["idle"] > 0  # the pipeline bubble


def test_activation_memory_is_the_1f1b_in_flight_count():
    pp, m = 4, 8
    w = workload(4, pp=pp, global_batch_size=m)
    r = simulate_step(w, toy_hw(), OPTS)
    per_layer = float(activation_bytes_per_layer(w.model, 1, w.seq_len))
    first = r.extra["per_rank"][0]
    layers = w.model.num_hidden_layers // pp
    static = r.arrays["memory/weights"] + r.arrays["memory/gradients"]
    static += r.arrays["memory/optimizer"]
    # the first stage holds pp micro-batches of its layers' activations at its peak
    assert first["peak_memory_bytes"] == pytest.approx(static + pp * layers * per_layer)


def test_trace_is_a_chrome_trace_perfetto_opens(tmp_path):
    path = tmp_path / "sub" / "step.json"
    w = workload(8, tp=2, pp=2, global_batch_size=8)
    r = simulate_step(w, toy_hw(), OPTS, trace=str(path))
    data = json.loads(path.read_text())
    assert [p.name for p in path.parent.iterdir()] == ["step.json"]  # no temporary left
    events = data["traceEvents"]
    assert isinstance(events, list) and events
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == len(r.rows)
    for e in complete:
        assert isinstance(e["name"], str) and isinstance(e["pid"], int)
        assert isinstance(e["tid"], int)
        assert e["ts"] >= 0 and e["dur"] >= 0
    assert max(e["ts"] + e["dur"] for e in complete) == pytest.approx(r.step_time_s * 1e6)
    names = {(e["name"], e["pid"]) for e in events if e["ph"] == "M"}
    for rank in {e["pid"] for e in complete}:
        assert ("process_name", rank) in names and ("thread_name", rank) in names
    counters = [e for e in events if e["ph"] == "C"]
    assert counters and all(set(e["args"]) == {"W"} for e in counters)
    assert data["displayTimeUnit"] == "ms"


def test_timeline_frame():
    df = simulate_timeline(workload(8, tp=2, pp=2, global_batch_size=8), toy_hw(), OPTS)
    assert tuple(df.columns) == COLUMNS
    assert (df["duration_s"] >= 0).all()
    assert set(df["stage"]) == {0, 1}
    assert {"compute", "comm_tp", "comm_pp", "comm_dp", "optimizer"} <= set(df["category"])
    # every stage runs every micro-batch forward and backward
    fwd = df[(df["category"] == "compute") & (df["layer"] >= 0)]
    assert fwd.groupby("stage")["microbatch"].nunique().tolist() == [4, 4]  # 8 / (1 * dp 2)


@pytest.mark.parametrize(
    "layout",
    [
        dict(tp=2, pp=2, vpp=2, global_batch_size=8),
        dict(tp=2, sequence_parallel=True, recompute="full", global_batch_size=4),
        dict(cp=2, recompute="selective", global_batch_size=4),
        dict(pp=2, zero_stage=2, global_batch_size=8),
        dict(pp=2, zero_stage=3, global_batch_size=8),
    ],
)
def test_every_feature_runs_and_keeps_its_invariants(layout):
    w = workload(8, **layout)
    r = simulate_step(w, toy_hw(), Options(overlap_tp_comm=True, overlap_p2p=False))
    assert math.isfinite(r.step_time_s) and r.step_time_s > 0
    parts = sum(v for k, v in r.arrays.items() if k.startswith("breakdown/"))
    assert parts == pytest.approx(r.step_time_s, rel=1e-9)
    df = r.timeline()
    assert df["end_s"].max() == pytest.approx(r.step_time_s)


def test_predict_with_the_des_engine_fills_the_json_contract():
    w = workload(16, tp=2, pp=2, global_batch_size=16)
    res = predict(w, toy_hw(), "des", OPTS, seed=3, jitter=0.01)
    d = res.to_dict()
    assert d["engine"] == "des"
    assert d["extra"]["options"]["seed"] == 3
    json.dumps(d, allow_nan=False)
    analytic = predict(w, toy_hw(), "analytic", OPTS)
    assert set(d["breakdown"]) == set(analytic.to_dict()["breakdown"])


def test_placement_is_a_parameter():
    """Megatron's order puts DP inside the node here and PP across nodes; swapping them moves
    the pipeline sends onto NVLink and the gradient all-reduce onto the NICs."""
    w = workload(16, tp=2, pp=2, global_batch_size=16)
    megatron = simulate_step(w, toy_hw(), OPTS)
    swapped = simulate_step(w, toy_hw(), OPTS, placement="tp-cp-pp-dp")
    assert megatron.extra["options"]["placement"] == "tp-cp-dp-pp"
    assert swapped.extra["representative"]["ranks"] == [0, 2]
    assert megatron.extra["representative"]["ranks"] == [0, 8]
    assert swapped.arrays["comm_total/dp"] > megatron.arrays["comm_total/dp"]
    with pytest.raises(ValueError, match="permutation"):
        simulate_step(w, toy_hw(), OPTS, placement="tp-dp-pp")


def test_each_concurrent_collective_slows_compute_by_the_interference():
    """A kernel of 1 s beside one collective (0.2 s of the kernel's time) and then two
    (0.2 s more): progress 1 - k * phi while k collectives run, as the closed form sums
    phi * T over hidden collectives."""
    import simpy

    from simulator.des.device import Device
    from simulator.des.engine import Recorder, Sim

    env = simpy.Environment()
    dev = Device(Sim(env, None, Recorder()), rank=0, stage=0, node=0, interference=0.25)
    done = dev.run_kernel(1.0)

    def comms():
        yield env.timeout(0.2)
        dev.comm(+1)  # one collective from t = 0.2
        yield env.timeout(0.2)
        dev.comm(+1)  # two from t = 0.4
        yield env.timeout(0.2)
        dev.comm(-1)
        dev.comm(-1)  # none from t = 0.6

    env.process(comms())
    env.run(done)
    # work done: 0.2 + 0.2 * 0.75 + 0.2 * 0.5 = 0.45 by t = 0.6; 0.55 left at full speed
    assert env.now == pytest.approx(1.15)
