"""Collectives built from transfers: alpha-beta times uncontended, slow-down when sharing,
nccl-tests algbw/busbw."""

from __future__ import annotations

import math

import pytest
from test_des_support import toy_hw

from simulator.costmodel.collectives import bus_factor, collective_time, ring_time, tree_time
from simulator.costmodel.network import group_collective_time, group_link
from simulator.des.nccl import build, measure

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


def test_hierarchical_inter_node_all_reduce_is_a_tree_where_the_tree_is_faster():
    hw = toy_hw()  # 32 ranks, stride 1: 4 per node x 8 nodes; a small, latency-bound buffer
    size = 4e3
    m = measure(hw, "all_reduce", size, 32, 1, algorithm="hierarchical")
    bw_i, a_i, _ = (float(x) for x in group_link(hw, 4, 1))
    bw_o, a_o, _ = (float(x) for x in group_link(hw, 8, 4))
    intra = 2 * float(collective_time("reduce_scatter", size, 4, bw_i, a_i))
    tree = float(tree_time("all_reduce", size / 4, 8, bw_o, a_o))
    assert tree < float(ring_time("all_reduce", size / 4, 8, bw_o, a_o))
    assert m.time_s == pytest.approx(intra + tree, rel=1e-9)


@pytest.mark.parametrize(
    "size,algorithm", [(1e6, "tree"), (256e6, "ring")]
)  # 16 ranks on 16 nodes: tree below ~4.4 MB (30 - 8 alphas = 110 us vs 0.125 S / 5 GB/s)
def test_auto_builds_the_algorithm_the_cost_model_picks_with_its_own_bytes(size, algorithm):
    hw = toy_hw()
    n, stride = 16, 4
    bw, alpha, _ = (float(x) for x in group_link(hw, n, stride))
    ring_t, tree_t = (float(f("all_reduce", size, n, bw, alpha)) for f in (ring_time, tree_time))
    assert (tree_t < ring_t) == (algorithm == "tree")
    coll = build(hw, "all_reduce", size, n, stride)
    assert coll.algorithm == algorithm
    (phase,) = coll.phases
    steps = 8 if algorithm == "tree" else 30
    assert phase.latency_s == pytest.approx(steps * alpha, rel=1e-9)
    # across nodes the uncontended time is NCCL's pick (costmodel.nccl: protocols and base
    # latency); the phase moves the rest of it at the route's rate
    t0 = float(group_collective_time(hw, "all_reduce", size, n, stride))
    assert coll.uncontended_s == pytest.approx(t0, rel=1e-9)
    assert phase.nbytes == pytest.approx((t0 - steps * alpha) * bw, rel=1e-6)


def test_a_chosen_tree_contends_with_its_full_bytes():
    """Two tree all-reduces on the same NICs: the latency is paid once each, the 2 S bytes
    share the link (before the fix the tree was labelled ring with clamped bytes)."""
    hw = toy_hw()
    n, stride, size = 16, 4, 1e6
    _bw, alpha, _ = (float(x) for x in group_link(hw, n, stride))
    two = measure(hw, "all_reduce", size, n, stride, concurrent=2)
    assert two.algorithm == "tree"
    # the latency once, the bytes (NCCL's priced time beyond the latency) twice on the link
    t0 = float(group_collective_time(hw, "all_reduce", size, n, stride))
    for t in two.times_s:
        assert t == pytest.approx(8 * alpha + 2 * (t0 - 8 * alpha), rel=1e-6)


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
