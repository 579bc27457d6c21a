"""Fair sharing on links (processor sharing, weighted max-min) and the route weights."""

from __future__ import annotations

import math

import pytest
import simpy
from test_des_support import toy_hw

from simulator.des.link import Link, Network
from simulator.des.topology import Cluster, Placement


def run_flows(specs, link_bw=100.0):
    """Start flows (start_s, path, bytes, cap) on fresh links; their finish times."""
    env = simpy.Environment()
    net = Network(env)
    ends: dict[int, float] = {}

    def flow(i, start, path, nbytes, cap):
        yield env.timeout(start)
        yield net.transfer(path, nbytes, cap=cap)
        ends[i] = env.now

    for i, (start, path, nbytes, cap) in enumerate(specs):
        env.process(flow(i, start, path, nbytes, cap))
    env.run()
    return ends, net


def test_one_flow_runs_at_link_bandwidth():
    a = Link("a", 100.0)
    ends, _ = run_flows([(0.0, [(a, "tx", 1.0)], 500.0, math.inf)])
    assert ends[0] == pytest.approx(5.0)


def test_two_flows_share_equally_then_the_survivor_speeds_up():
    a = Link("a", 100.0)
    ends, _ = run_flows(
        [(0.0, [(a, "tx", 1.0)], 100.0, math.inf), (0.0, [(a, "tx", 1.0)], 300.0, math.inf)]
    )
    # both at 50 until the small one ends at 2 s (100 B); the big one has 200 B left at 100
    assert ends[0] == pytest.approx(2.0)
    assert ends[1] == pytest.approx(4.0)


def test_directions_are_independent():
    a = Link("a", 100.0)
    ends, _ = run_flows(
        [(0.0, [(a, "tx", 1.0)], 100.0, math.inf), (0.0, [(a, "rx", 1.0)], 100.0, math.inf)]
    )
    assert ends[0] == pytest.approx(1.0) and ends[1] == pytest.approx(1.0)


def test_a_weighted_flow_stands_for_several():
    a = Link("a", 100.0)
    # weight 3: three identical flows -> each gets 25 when a fourth (weight 1) shares
    ends, _ = run_flows(
        [(0.0, [(a, "tx", 3.0)], 100.0, math.inf), (0.0, [(a, "tx", 1.0)], 100.0, math.inf)]
    )
    assert ends[0] == pytest.approx(4.0) and ends[1] == pytest.approx(4.0)


def test_max_min_gives_the_leftover_to_the_unconstrained_flow():
    a, b = Link("a", 100.0), Link("b", 30.0)
    # flow 0 crosses a and b (bottleneck b: 30); flow 1 only a: it gets 100 - 30 = 70
    ends, _ = run_flows(
        [
            (0.0, [(a, "tx", 1.0), (b, "tx", 1.0)], 300.0, math.inf),
            (0.0, [(a, "tx", 1.0)], 700.0, math.inf),
        ]
    )
    assert ends[0] == pytest.approx(10.0)
    assert ends[1] == pytest.approx(10.0)


def test_rate_cap_is_respected_and_leaves_room():
    a = Link("a", 100.0)
    ends, _ = run_flows(
        [(0.0, [(a, "tx", 1.0)], 100.0, 20.0), (0.0, [(a, "tx", 1.0)], 400.0, math.inf)]
    )
    assert ends[0] == pytest.approx(5.0)
    assert ends[1] == pytest.approx(5.0)


def test_late_arrival_slows_the_first_flow():
    a = Link("a", 100.0)
    ends, net = run_flows(
        [(0.0, [(a, "tx", 1.0)], 200.0, math.inf), (1.0, [(a, "tx", 1.0)], 50.0, math.inf)]
    )
    # 0-1 s: flow 0 alone (100 B); 1-2 s: both at 50 (flow 1 done); then 50 B at 100
    assert ends[1] == pytest.approx(2.0)
    assert ends[0] == pytest.approx(2.5)
    st = a.stats["tx"]
    assert st.bytes == pytest.approx(250.0)
    assert st.shared_s == pytest.approx(1.0)
    assert st.saturated_s == pytest.approx(1.0)
    report = net.link_report(2.5)
    assert report[0]["utilisation"] == pytest.approx(1.0)


def test_invalid_link_bandwidth_is_rejected():
    with pytest.raises(ValueError, match="bandwidth"):
        Link("bad", 0.0)


def test_megatron_placement_and_strides():
    pl = Placement((8, 1, 4, 2))  # tp 8, cp 1, dp 4, pp 2
    assert pl.stride("tp") == 1 and pl.stride("dp") == 8 and pl.stride("pp") == 32
    assert pl.rank(tp=3, dp=2, pp=1) == 3 + 16 + 32
    other = Placement.parse((8, 1, 4, 2), "tp-pp-dp-cp")
    assert other.stride("pp") == 8 and other.stride("dp") == 16
    with pytest.raises(ValueError, match="permutation"):
        Placement((1, 1, 1, 1), ("tp", "dp"))


def test_route_rates_are_the_closed_form_group_bandwidths():
    hw = toy_hw()  # 4 GPUs per node, 2 NICs of 10 GB/s
    cl = Cluster(hw, Placement((4, 1, 8, 1)))
    tp = cl.group_route(0, "tp")
    dp = cl.group_route(0, "dp")
    assert tp.nodes == 1 and tp.rate == pytest.approx(100e9)
    # 4 DP groups per node share its 20 GB/s: 5 GB/s each; the route carries weight 4
    assert dp.nodes == 8 and dp.rate == pytest.approx(5e9)
    assert {w for _l, _d, w in dp.path} == {4.0}


def test_oversubscribed_fat_tree_adds_the_uplink_and_rail_aligned_groups_skip_it():
    fat = Cluster(toy_hw(oversubscription=2.0), Placement((4, 1, 8, 1)))
    rail = Cluster(toy_hw(oversubscription=2.0, topology="rail-optimized"), Placement((4, 1, 8, 1)))
    names = {link.name for link, _d, _w in fat.group_route(0, "dp").path}
    assert any("uplink" in n for n in names)
    assert not any("uplink" in link.name for link, _d, _w in rail.group_route(0, "dp").path)
