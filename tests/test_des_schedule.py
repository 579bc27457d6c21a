"""Pipeline schedules: 1F1B and Megatron's interleaved 1F1B."""

from __future__ import annotations

import pytest

from simulator.plan.schedule import interleaved, one_f_one_b, schedule


@pytest.mark.parametrize("pp,m", [(1, 4), (4, 8), (4, 2), (8, 96)])
def test_1f1b_runs_each_pass_once_forward_first(pp, m):
    for rank in range(pp):
        order = one_f_one_b(pp, m, rank)
        assert sorted(order) == sorted(
            [("F", 0, i) for i in range(m)] + [("B", 0, i) for i in range(m)]
        )
        pos = {p: i for i, p in enumerate(order)}
        assert all(pos[("F", 0, i)] < pos[("B", 0, i)] for i in range(m))


def test_1f1b_warmup_and_in_flight_bound():
    pp, m = 4, 8
    for rank in range(pp):
        order = one_f_one_b(pp, m, rank)
        warm = next(i for i, p in enumerate(order) if p[0] == "B")
        assert warm == min(pp - rank, m)  # pp - rank - 1 warm-up forwards, then one more F
        in_flight = peak = 0
        for kind, _c, _mb in order:
            in_flight += 1 if kind == "F" else -1
            peak = max(peak, in_flight)
        assert peak == min(pp - rank, m)  # 1F1B's memory bound (Narayanan et al. 2021)


def test_interleaved_matches_megatron_order_for_a_small_case():
    # pp=2, vpp=2, m=4, rank 0: warm-up (2-0-1)*2 + (2-1)*2 = 4 chunk-forwards
    order = interleaved(2, 2, 4, 0)
    assert order[:4] == [("F", 0, 0), ("F", 0, 1), ("F", 1, 0), ("F", 1, 1)]
    assert order[4:6] == [("F", 0, 2), ("B", 1, 0)]
    assert len(order) == 2 * 4 * 2
    assert order[-1] == ("B", 0, 3)


@pytest.mark.parametrize("pp,vpp,m", [(2, 2, 4), (4, 2, 8), (4, 3, 4), (2, 5, 6)])
def test_interleaved_covers_every_chunk_and_microbatch(pp, vpp, m):
    for rank in range(pp):
        order = interleaved(pp, vpp, m, rank)
        want = [(k, c, i) for k in "FB" for c in range(vpp) for i in range(m)]
        assert sorted(order) == sorted(want)
        pos = {p: i for i, p in enumerate(order)}
        assert all(pos[("F", c, i)] < pos[("B", c, i)] for c in range(vpp) for i in range(m))


def test_interleaved_needs_a_multiple_of_pp():
    with pytest.raises(ValueError, match="multiple of pp"):
        interleaved(4, 2, 6, 0)


def test_schedule_dispatches_on_vpp():
    assert schedule(4, 1, 8, 1) == one_f_one_b(4, 8, 1)
    assert schedule(4, 2, 8, 1) == interleaved(4, 2, 8, 1)
