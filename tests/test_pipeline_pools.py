"""Pipeline stages on different pools (H100 + A100): both engines, cross-pool link, split."""

from __future__ import annotations

import pytest

from analysis.pipeline_pools import balance_split, stages_step
from analysis.predict import analytic_arrays
from hwprofiles.catalogue import load_profile
from hwprofiles.errors import UserError
from simulator.costmodel.crosspool import (
    PoolLink,
    cross_rate,
    default_uplink,
    nic_share_per_gpu,
    uplink_limited,
)
from simulator.des.pools import simulate_stages
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload

H100, A100 = load_profile("h100-sxm"), load_profile("a100-80gb")
UP = default_uplink([(H100, 256), (A100, 256)])


@pytest.fixture(scope="module")
def w() -> Workload:
    p = ParallelConfig(
        tp=8, pp=4, micro_batch_size=1, global_batch_size=256, zero_stage=1, recompute="selective"
    )
    return Workload(load_model("llama-3-70b"), p.resolve(512), 4096)


def test_one_pool_reproduces_both_engines(w: Workload) -> None:
    cf = stages_step(w, [H100] * 4, w.split, UP)["step_time_s"]
    assert cf == pytest.approx(analytic_arrays(w, H100, Options())["step_time_s"], rel=1e-9)
    des = simulate_stages(w, [H100] * 4, w.split, UP, Options(), contention=False)
    assert des.step_time_s == pytest.approx(
        simulate_step(w, H100, Options(), contention=False).step_time_s, rel=1e-12
    )


@pytest.mark.parametrize("order", [(H100, H100, A100, A100), (A100, A100, H100, H100)])
def test_stages_over_pools_agree_and_lie_between(w: Workload, order) -> None:
    split = balance_split(w, order)
    fast = [i for i, hw in enumerate(order) if hw is H100]
    slow = [i for i, hw in enumerate(order) if hw is A100]
    assert min(split[i] for i in fast) > 2 * max(split[i] for i in slow)  # layers ~ speed
    cf = stages_step(w, order, split, UP)
    des = simulate_stages(w, order, split, UP, Options(), contention=False)
    assert des.step_time_s == pytest.approx(cf["step_time_s"], rel=0.03)
    lo_cf = analytic_arrays(w, H100, Options())["step_time_s"]
    hi_cf = analytic_arrays(w, A100, Options())["step_time_s"]
    assert lo_cf < cf["step_time_s"] < hi_cf
    lo = simulate_step(w, H100, Options(), contention=False).step_time_s
    hi = simulate_step(w, A100, Options(), contention=False).step_time_s
    assert lo < des.step_time_s < hi
    assert all(s["fits_in_memory"] for s in cf["stages"])
    assert cf["cross_pool"]["boundaries"] == [1]
    assert [s["hardware"] for s in des.extra["stages"]] == [hw.name for hw in order]


def test_cross_pool_send_takes_the_slower_nic_and_the_uplink() -> None:
    wide = PoolLink(1e18, "test")
    rate, lat = cross_rate(H100, A100, 128, wide)
    assert rate == pytest.approx(nic_share_per_gpu(A100)) and rate < nic_share_per_gpu(H100)
    assert lat == max(H100.node.scale_out.latency_s, A100.node.scale_out.latency_s)
    narrow = PoolLink(1e11, "test")  # 100 GB/s shared by 128 senders
    assert cross_rate(H100, A100, 128, narrow)[0] == pytest.approx(1e11 / 128)
    assert uplink_limited(H100, A100, 128, narrow) and not uplink_limited(H100, A100, 128, wide)
    with pytest.raises(UserError, match="pool_uplink"):
        PoolLink(0.0, "bad")


def test_a_narrower_uplink_slows_the_step_in_both_engines(w: Workload) -> None:
    order = (H100, H100, A100, A100)
    split = balance_split(w, order)
    narrow = PoolLink(UP.bandwidth_bytes_per_s / 20, "test")
    a, b = stages_step(w, order, split, UP), stages_step(w, order, split, narrow)
    assert b["step_time_s"] > a["step_time_s"]
    assert b["cross_pool"]["busy_share"] > a["cross_pool"]["busy_share"]
    da = simulate_stages(w, order, split, UP, Options(), contention=False).step_time_s
    db = simulate_stages(w, order, split, narrow, Options(), contention=False).step_time_s
    assert db > da


def test_bad_stage_plans_are_refused(w: Workload) -> None:
    with pytest.raises(UserError, match="split"):
        stages_step(w, [H100] * 4, (20, 20, 20, 19), UP)
    with pytest.raises(UserError, match="stages"):
        stages_step(w, [H100] * 3, (30, 30, 20), UP)
