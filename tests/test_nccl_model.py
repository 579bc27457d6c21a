"""NCCL's algorithms as llmcap prices them (costmodel.nccl, costmodel.nvls): NVLink SHARP inside
H100/H200 nodes, protocol latencies from NCCL's tuning model, trees across nodes, the published
component rows, and the same function in both engines."""

from __future__ import annotations

import statistics

import pytest

from analysis.accuracy.collectives import (
    by_size_band,
    by_source,
    collective_comparisons,
    harness_overheads,
    load_collective_rows,
)
from hwprofiles.catalogue import load_profile
from simulator.costmodel.collectives import busbw
from simulator.costmodel.nccl import ALGORITHMS
from simulator.costmodel.network import group_collective_time
from simulator.costmodel.nvls import NVLS_EFFICIENCY
from simulator.des.nccl import measure

GIB = 2**30


def _busbw(hw, kind: str, size: float, n: int, stride: int = 1) -> float:
    return busbw(kind, size, float(group_collective_time(hw, kind, size, n, stride)), n)


def test_nvls_all_reduce_moves_fewer_bytes_than_a_ring():
    """8x H200, 16 GiB: NVLS carries size x (1 + 1/8) per link direction against a ring's
    2 x 7/8, at NCCL's NVLS efficiency (0.85 on Hopper): busbw above the NVLink rate."""
    hw = load_profile("h200")
    link = hw.node.scale_up.effective_bandwidth
    got = _busbw(hw, "all_reduce", 16 * GIB, 8)
    expected = 1.75 * link * NVLS_EFFICIENCY["nvlink4"] / 1.125
    assert got == pytest.approx(expected, rel=0.01)
    assert got > hw.node.scale_up.bandwidth_bytes_per_s  # above 450 GB/s: in-switch reduction


def test_no_nvls_before_hopper():
    hw = load_profile("a100-80gb")  # NVLink3 NVSwitch: no multicast
    got = _busbw(hw, "all_reduce", 16 * GIB, 8)
    assert got == pytest.approx(hw.node.scale_up.effective_bandwidth, rel=0.01)


def test_all_gather_inside_a_node_is_link_bound_even_with_nvls():
    hw = load_profile("h100-sxm")
    got = _busbw(hw, "all_gather", 16 * GIB, 8)
    assert got == pytest.approx(hw.node.scale_up.effective_bandwidth, rel=0.01)


def test_tiny_all_reduce_pays_nccls_ring_ll_latency():
    """8 B on 8 NVLink GPUs: baseLat[Ring][LL] 6.6 us + 14 steps x hwLat[NVLINK][Ring][LL]
    0.6 us (tuning.cc v2.27.7); the tree's LL is 6.8 + 2 x 7 x 0.6, just slower."""
    hw = load_profile("h100-sxm")
    t = float(group_collective_time(hw, "all_reduce", 8.0, 8, 1))
    assert t == pytest.approx(6.6e-6 + 14 * 0.6e-6, rel=0.01)


def test_two_node_tree_carries_the_buffer_once_per_nic_direction():
    """16 H100 on 2 nodes, 8 GiB: NVLS-tree/tree put the buffer once through the node's NICs
    (the ring twice x 15/16), so busbw ~ 2 x 15/16 x NIC total where the NICs are the
    bottleneck (8 x 200 Gb/s, as GCP's A3 Mega)."""
    hw = load_profile("h100-sxm", scale_out="roce-200")
    nic_total = hw.node.scale_out_bytes_per_s
    got = _busbw(hw, "all_reduce", 8 * GIB, 16)
    assert got == pytest.approx(2 * 15 / 16 * nic_total, rel=0.02)
    many = _busbw(hw, "all_reduce", 8 * GIB, 64)  # 8 nodes: twice per direction, as a ring
    assert many < got


def test_latency_grows_with_ring_length_at_scale():
    hw = load_profile("h100-sxm")
    small = [float(group_collective_time(hw, "all_reduce", 1e6, n, 8)) for n in (64, 1024)]
    assert small[1] > small[0]


def test_both_engines_price_a_collective_with_the_same_function():
    hw = load_profile("h200")
    for size, n, stride in ((1e6, 8, 1), (16 * GIB, 8, 1), (64e6, 32, 1), (1e9, 64, 8)):
        m = measure(hw, "all_reduce", size, n, stride, contention=False)
        assert m.time_s == pytest.approx(
            float(group_collective_time(hw, "all_reduce", size, n, stride)), rel=1e-9
        )


def test_every_component_row_has_a_source_and_a_unit():
    rows = load_collective_rows()
    assert len(rows) >= 30
    assert {r["collective"] for r in rows} >= {"all_reduce", "all_gather", "all_to_all"}
    for r in rows:
        assert r["source"] and r["unit"] in ("busbw GB/s", "time us"), r["id"]
        assert r["role"] in ("check", "floor") and float(r["size_bytes"]) > 0
    assert set(harness_overheads(rows).values()) and all(
        0 <= v < 200e-6 for v in harness_overheads(rows).values()
    )


def test_collective_component_median_within_ten_percent():
    comps = collective_comparisons()
    assert statistics.median(abs(c["error"]) for c in comps) <= 0.10
    assert len(by_source(comps)) >= 3


def test_disabling_nvls_falls_back_to_the_ring():
    """NCCL_NVLS_ENABLE=0 on 8x H200 (stas00: 367.6 GB/s busbw at 16 GiB): the ring's busbw
    is the link's effective rate."""
    hw = load_profile("h200")
    no = frozenset(ALGORITHMS - {"nvls", "nvls_tree"})
    t = float(group_collective_time(hw, "all_reduce", 16 * GIB, 8, 1, no))
    assert busbw("all_reduce", 16 * GIB, t, 8) == pytest.approx(
        hw.node.scale_up.effective_bandwidth, rel=0.01
    )
    assert t > float(group_collective_time(hw, "all_reduce", 16 * GIB, 8, 1))


def test_size_bands_cover_every_scored_row():
    comps = collective_comparisons()
    bands = by_size_band(comps)
    assert sum(b["rows"] for b in bands.values()) == len(comps)
    assert bands[">= 256 MiB"]["median"] <= 0.05  # the plateau: link physics + NVLS


@pytest.mark.parametrize(
    "size,chunk", [(4 * 2**20, 16384), (16 * 2**20, 32768), (512 * 2**20, 65536), (GIB, 131072)]
)
def test_nvls_chunk_follows_nccls_rule(size, chunk):
    """enqueue.cc v2.27.7 on 8 GPUs x 16 channels (128 concurrent chunks): 128 KiB from 1 GiB
    (64 loops), 64 KiB from 64 MiB (8 loops), 32 KiB from 8 MiB (2 loops), else 16 KiB."""
    from simulator.costmodel.nvls import nvls_chunk

    assert float(nvls_chunk(size, 128, 1, tree=False)) == chunk


def test_nvls_pipeline_fill_slows_mid_size_buffers_most():
    """The fill and drain of the 3-stage NVLS pipeline: ~2 loops of 8 MiB at 64 KiB chunks,
    a large share of a 64 MiB all-reduce and a negligible one of 16 GiB."""
    hw = load_profile("h200")
    link = hw.node.scale_up.effective_bandwidth * NVLS_EFFICIENCY["nvlink4"] / 1.125
    for size, share in ((64 * 2**20, 0.15), (16 * GIB, 0.005)):
        t = float(group_collective_time(hw, "all_reduce", size, 8, 1))
        bare = 25e-6 + size / link
        assert (t - bare) / t == pytest.approx(share, abs=0.05 if share > 0.01 else 0.005)


def test_nccl_runs_the_algorithm_its_tuner_prefers_not_the_fastest():
    """2 nodes x 8 A100, 4 HDR NICs each (nccl #1048: 86 GB/s busbw at 4 GiB): NCCL's tuner
    prices the tree at half its bus bandwidth and runs the ring, whose busbw is the NIC total,
    although a 2-node tree would put the buffer through the NICs only once."""
    hw = load_profile("a100-80gb", scale_out="hdr", nics_per_node=4)
    got = _busbw(hw, "all_reduce", 4 * GIB, 16)
    assert got == pytest.approx(hw.node.scale_out_bytes_per_s, rel=0.02)
    tree_only = frozenset({"tree"})  # the ring is always kept; the tree alone would be ~2x
    t_tree = float(group_collective_time(hw, "all_reduce", 4 * GIB, 16, 1, tree_only))
    assert busbw("all_reduce", 4 * GIB, t_tree, 16) == pytest.approx(got, rel=0.01)
