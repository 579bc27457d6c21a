"""Collectives built from transfers: alpha-beta times uncontended, slow-down when sharing,
nccl-tests algbw/busbw."""

from __future__ import annotations

import math

import pytest
from test_des_support import toy_hw

from simulator.costmodel.collectives import bus_factor, collective_time
from simulator.costmodel.network import group_collective_time, group_link
from simulator.des.nccl import measure

SIZES = (1e3, 1e6, 256e6)
GROUPS = ((4, 1), (8, 4), (16, 4), (2, 1))  # (ranks, stride): in a node, across nodes


@pytest.mark.parametrize("kind", ["all_reduce", "all_gather", "reduce_scatter", "broadcast"])
@pytest.mark.parametrize("n,stride", GROUPS)
@pytest.mark.parametrize("size", SIZES)
def test_ring_matches_alpha_beta_on_an_uncontended_route(kind, n, stride, size):
    hw = toy_hw()
    bw, alpha, _ = group_link(hw, n, stride)
    bw, alpha = float(bw), float(alpha)
    steps, factor = {
        "all_reduce": (2 * (n - 1), 2 * (n - 1) / n),
        "all_gather": (n - 1, (n - 1) / n),
        "reduce_scatter": (n - 1, (n - 1) / n),
        "broadcast": (math.ceil(math.log2(n)), 1.0),
    }[kind]
    expected = steps * alpha + size * factor / bw  # nccl-tests PERFORMANCE.md, ring
    m = measure(hw, kind, size, n, stride, algorithm="ring")
    assert m.time_s == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n,stride", GROUPS)
@pytest.mark.parametrize("size", SIZES)
def test_tree_and_auto_match_the_cost_model(n, stride, size):
    hw = toy_hw()
    bw, alpha, _ = (float(x) for x in group_link(hw, n, stride))
    tree = measure(hw, "all_reduce", size, n, stride, algorithm="tree")
    depth = math.ceil(math.log2(n))
    assert tree.time_s == pytest.approx(2 * depth * alpha + 2 * size / bw, rel=1e-9)
    auto = measure(hw, "all_reduce", size, n, stride)  # the cost model's choice
    assert auto.time_s == pytest.approx(
        float(group_collective_time(hw, "all_reduce", size, n, stride)), rel=1e-9
    )


@pytest.mark.parametrize("algorithm", ["ring", "tree"])
def test_step_by_step_equals_coalesced(algorithm):
    hw = toy_hw()
    one = measure(hw, "all_reduce", 64e6, 8, 4, algorithm=algorithm)
    steps = measure(hw, "all_reduce", 64e6, 8, 4, algorithm=algorithm, detailed=True)
    assert steps.time_s == pytest.approx(one.time_s, rel=1e-9)


def test_hierarchical_is_intra_reduce_scatter_inter_all_reduce_intra_all_gather():
    hw = toy_hw()  # 4 per node; 16 ranks, stride 1: 4 per node x 4 nodes
    size = 128e6
    m = measure(hw, "all_reduce", size, 16, 1, algorithm="hierarchical")
    bw_i, a_i, _ = (float(x) for x in group_link(hw, 4, 1))
    bw_o, a_o, _ = (float(x) for x in group_link(hw, 4, 4))  # one GPU per node, all GPUs busy
    intra = 2 * float(collective_time("reduce_scatter", size, 4, bw_i, a_i))
    inter = float(collective_time("all_reduce", size / 4, 4, bw_o, a_o))
    assert m.algorithm == "hierarchical"
    assert m.time_s == pytest.approx(intra + inter, rel=1e-9)


@pytest.mark.parametrize("n,stride", [(4, 1), (8, 4)])
def test_two_collectives_sharing_a_link_each_take_about_twice_as_long(n, stride):
    hw = toy_hw()
    size = 256e6  # bandwidth-dominated
    one = measure(hw, "all_reduce", size, n, stride)
    two = measure(hw, "all_reduce", size, n, stride, concurrent=2)
    assert len(two.times_s) == 2
    for t in two.times_s:
        assert t / one.time_s == pytest.approx(2.0, rel=0.01)
    alone = measure(hw, "all_reduce", size, n, stride, concurrent=2, contention=False)
    assert alone.time_s == pytest.approx(one.time_s)


def test_latency_part_does_not_stretch_under_sharing():
    hw = toy_hw()
    one = measure(hw, "all_gather", 1.0, 4, 1)  # pure latency
    two = measure(hw, "all_gather", 1.0, 4, 1, concurrent=2)
    assert two.time_s == pytest.approx(one.time_s, rel=1e-3)


@pytest.mark.parametrize("kind", ["all_reduce", "all_gather", "reduce_scatter", "broadcast"])
def test_nccl_tests_definitions(kind):
    hw = toy_hw()
    n, size = 4, 1e9
    m = measure(hw, kind, size, n, 1, algorithm="ring")
    assert m.algbw_bytes_per_s == pytest.approx(size / m.time_s)
    assert m.busbw_bytes_per_s == pytest.approx(m.algbw_bytes_per_s * float(bus_factor(kind, n)))
    # a large ring collective's bus bandwidth approaches the link's (nccl-tests' point)
    assert m.busbw_bytes_per_s == pytest.approx(100e9, rel=0.01)


def test_unknown_algorithm_is_rejected():
    with pytest.raises(ValueError, match="algorithm"):
        measure(toy_hw(), "all_gather", 1e6, 4, 1, algorithm="tree")
