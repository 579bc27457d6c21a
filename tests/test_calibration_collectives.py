"""Real 2-rank gloo collective benchmarks, and peers that die or hang.

Every worker's pid is recorded (by wrapping subprocess.Popen) so the tests can check that no
process and no process group outlives the benchmark.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from hwprofiles.calibration import collectives
from hwprofiles.calibration.collectives import (
    COLLECTIVES,
    CollectiveError,
    Fault,
    GroupConfig,
    bus_factor,
    run_collective_group,
)
from hwprofiles.calibration.timing import Repeats

REPEATS = Repeats(warmup=1, samples=3, min_samples=3, budget_s=0.1, sample_s=0.001)
SIZES = (1024, 64 * 1024)


def config(world_size: int = 2, timeout_s: float = 60.0, fault: Fault | None = None) -> GroupConfig:
    return GroupConfig(
        world_size=world_size,
        backend="gloo",
        device="cpu",
        collectives=COLLECTIVES,
        sizes=SIZES,
        repeats=REPEATS,
        threads_per_rank=1,
        timeout_s=timeout_s,
        fault=fault,
    )


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Pids of the workers the test starts."""
    pids: list[int] = []
    real = subprocess.Popen

    class Recording(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            pids.append(self.pid)

    monkeypatch.setattr(collectives.subprocess, "Popen", Recording)
    return pids


def assert_all_gone(pids: list[int]) -> None:
    assert pids, "no worker was started"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: the pid no longer exists
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # and nothing is left in its process group


def test_two_rank_gloo_collectives(spawned: list[int]) -> None:
    rows = run_collective_group(config())
    assert {r["collective"] for r in rows} == set(COLLECTIVES)
    assert len(rows) == len(COLLECTIVES) * len(SIZES)
    for r in rows:
        assert r["backend"] == "gloo" and r["world_size"] == 2 and r["count"] >= 3
        assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["algbw_bytes_per_s"] == pytest.approx(r["bytes"] / r["median_s"])
        factor = bus_factor(r["collective"], 2)
        assert r["busbw_bytes_per_s"] == pytest.approx(r["algbw_bytes_per_s"] * factor)
    assert len(spawned) == 2
    assert_all_gone(spawned)


def test_one_rank_group_skips_send_recv() -> None:
    rows = run_collective_group(config(world_size=1))
    assert "send_recv" not in {r["collective"] for r in rows}
    assert all(r["busbw_bytes_per_s"] == 0 for r in rows)  # nothing crosses a bus


def test_dead_peer_stops_the_group_with_a_clear_error(spawned: list[int]) -> None:
    with pytest.raises(
        CollectiveError, match=r"world_size=2 \(gloo\): .*rank 1 exited with code 3"
    ):
        run_collective_group(config(fault=Fault("die", rank=1)))
    assert_all_gone(spawned)


@pytest.mark.slow
def test_hung_peer_is_stopped_at_the_timeout(spawned: list[int]) -> None:
    with pytest.raises(CollectiveError, match=r"did not finish within 10 s .*stopped all ranks"):
        run_collective_group(config(timeout_s=10.0, fault=Fault("hang", rank=1)))
    assert_all_gone(spawned)
