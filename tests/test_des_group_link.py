"""Rule "one group, one link": without contention, collectives of one rank's parallel group on
two streams share that group's link (their bytes take the sum of their times), while
collectives of different groups still run alone (docs/simulator.md)."""

from __future__ import annotations

import pytest
import simpy

from simulator.des.collectives import Collective, Phase
from simulator.des.engine import Job, Recorder, Sim, Stream
from simulator.des.topology import Route

RATE = 1e9  # bytes/s
LAT = 1e-3  # s


def _coll(nbytes: float) -> Collective:
    route = Route(path=(), rate=RATE, latency_s=LAT, nodes=2)
    return Collective("all_gather", nbytes, 8, (Phase(LAT, nbytes, route),))


def _two_streams(group_a, group_b) -> list[float]:
    env = simpy.Environment()
    sim = Sim(env, None, Recorder())
    a, b = Stream(sim, 0, "gather"), Stream(sim, 0, "reduce")
    ends = [a.submit(Job(_coll(1e6), "g", "comm_zero3", group=group_a)),
            b.submit(Job(_coll(3e6), "r", "comm_zero3", group=group_b))]  # fmt: skip
    env.run()
    return [sim.rec.rows[e.value].end for e in ends]


def test_one_group_shares_its_link():
    g, r = _two_streams((0, "dp"), (0, "dp"))
    # both at half rate until the gather's 1 MB are through (2 ms), then the rest alone;
    # the latency terms run side by side, outside the link
    assert g == pytest.approx(LAT + 2e-3)
    assert r == pytest.approx(LAT + 4e-3)


def test_different_groups_stay_alone_without_contention():
    g, r = _two_streams((0, "dp"), (0, "tp"))
    assert g == pytest.approx(LAT + 1e-3)
    assert r == pytest.approx(LAT + 3e-3)
