"""The SimPy cluster scheduler against queueing theory and the policies' own guarantees."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simulator.cluster import ClusterSim, Job, Pool, PoolRun, PoolState, get_policy, summarise

H = 3600.0


def _poisson_jobs(n: int, lam: float, mu: float, gpus: int, seed: int) -> list[Job]:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1 / lam, n))
    s = rng.exponential(1 / mu, n)
    run = {"p": PoolRun(1.0, 700.0)}
    return [Job(i, "a", float(t[i]), gpus, float(s[i]), run, restart_s=0.0) for i in range(n)]


def test_mm1_mean_wait_matches_formula() -> None:
    """One 8-GPU pool, every job takes all of it: an M/M/1 queue, Wq = rho / (mu - lambda)."""
    lam, mu = 0.5 / H, 1.0 / H
    jobs = _poisson_jobs(20000, lam, mu, 8, seed=1)
    sim = ClusterSim([Pool("p", 8, 8)], jobs, get_policy("fifo"), jobs[-1].submit_s + 1e6).run()
    out = summarise(sim)
    wq = (lam / mu) / (mu - lam) / H  # hours
    assert out["totals"]["jobs_finished"] == 20000
    assert out["classes"]["a"]["queueing_delay_h"]["mean"] == pytest.approx(wq, rel=0.08)
    assert out["pools"]["p"]["utilisation"] == pytest.approx(lam / mu, rel=0.05)


def _mixed_jobs(seed: int, n: int = 400) -> list[Job]:
    """Sub-node, one-node and multi-node jobs on two pools of different speed."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(0.4 * H, n))
    sizes = rng.choice([2, 4, 8, 16, 32, 64, 128], n, p=[0.2, 0.2, 0.2, 0.15, 0.1, 0.1, 0.05])
    steps = rng.exponential(3 * H, n)
    jobs = []
    for i in range(n):
        runs = {"fast": PoolRun(1.0, 700.0), "slow": PoolRun(2.5, 400.0)}
        if sizes[i] > 64:
            runs = {"fast": runs["fast"]}
        jobs.append(Job(i, f"c{sizes[i]}", float(t[i]), int(sizes[i]), float(steps[i]), runs))
    return jobs


POOLS = [Pool("fast", 128, 8, nodes_per_leaf=4), Pool("slow", 64, 8, nodes_per_leaf=4)]


@pytest.mark.parametrize(
    ("seed", "placement"),
    [(0, "fastest-free"), (1, "fastest-free"), (2, "fastest-free"), (0, "earliest-finish")],
)
def test_easy_backfill_never_delays_the_head_reservation(seed: int, placement: str) -> None:
    jobs = _mixed_jobs(seed)
    sim = ClusterSim(POOLS, jobs, get_policy("backfill"), 400 * H, 0, placement).run()
    reserved = [r for r in sim.records if r.reservation_s is not None]
    assert len(reserved) > 10
    for r in reserved:
        assert r.first_start_s is not None
        assert r.first_start_s <= r.reservation_s + 1e-6, r.job.id
    # backfilling happened: some job started before one submitted earlier
    starts = [r.first_start_s for r in sorted(sim.records, key=lambda r: r.job.id)]
    assert any(b is not None and a is not None and b < a for a, b in itertools.pairwise(starts))


def test_fifo_starts_jobs_in_submission_order() -> None:
    jobs = _mixed_jobs(3)
    sim = ClusterSim(POOLS, jobs, get_policy("fifo"), 400 * H).run()
    starts = [
        r.first_start_s for r in sorted(sim.records, key=lambda r: (r.job.submit_s, r.job.id))
    ]
    started = [s for s in starts if s is not None]
    assert len(started) > 300
    assert started == sorted(started)
    assert (
        summarise(sim)["totals"]["mean_queueing_delay_h"]
        >= summarise(ClusterSim(POOLS, jobs, get_policy("backfill"), 400 * H).run())["totals"][
            "mean_queueing_delay_h"
        ]
    )


@pytest.mark.parametrize("policy", ["fifo", "backfill", "priority", "gang"])
def test_finished_jobs_computed_exactly_their_steps(policy: str) -> None:
    """Kept compute over all segments = the job's steps, whatever pools and stops it had."""
    jobs = _mixed_jobs(4, n=200)
    flaky = {
        k: PoolRun(v.step_time_s, v.power_w, failure_rate_s=1 / (20 * H))
        for k, v in jobs[0].runs.items()
    }
    jobs = [
        Job(
            j.id,
            j.job_class,
            j.submit_s,
            j.gpus,
            j.steps,
            {k: flaky[k] for k in j.runs} if j.id % 4 == 1 else j.runs,
            priority=j.id % 3,
            preemptible=j.id % 2 == 0,
            checkpoint_interval_s=H,
            restart_s=300.0,
        )
        for j in jobs
    ]
    sim = ClusterSim(POOLS, jobs, get_policy(policy), 300 * H).run()
    done = [r for r in sim.records if r.finish_s is not None]
    assert len(done) > 150
    assert any(s.how == "failed" for r in sim.records for s in r.segments)
    for r in done:
        steps = sum(s.kept_s / r.job.runs[s.pool].step_time_s for s in r.segments)
        assert steps == pytest.approx(r.job.steps, rel=1e-9)
    for state in sim.states.values():  # everything given back at the end, nothing twice
        running = sum(r.placement.gpus for r in sim.running.values() if r.placement is not None)
        assert running == 0 and state.free_gpus == state.pool.gpus


def test_preemption_loses_work_since_the_last_checkpoint() -> None:
    """A 16-GPU low-priority job is preempted at 2.5 h by an 8-GPU high-priority job."""
    run = {"p": PoolRun(1.0, 700.0)}
    low = Job(
        0,
        "low",
        0.0,
        16,
        10 * H,
        run,
        priority=0,
        preemptible=True,
        checkpoint_interval_s=H,
        restart_s=0.1 * H,
    )
    high = Job(1, "high", 2.5 * H, 8, 1 * H, run, priority=5, restart_s=0.0)
    sim = ClusterSim([Pool("p", 16, 8)], [low, high], get_policy("priority"), 100 * H).run()
    a, b = sim.records
    assert b.first_start_s == pytest.approx(2.5 * H)  # no wait for the high-priority job
    first = a.segments[0]
    assert first.how == "preempted"
    assert first.compute_s == pytest.approx(2.4 * H) and first.kept_s == pytest.approx(2 * H)
    # restarts when the 8-GPU job ends (3.5 h), pays 0.1 h, redoes the 8 h left
    assert a.finish_s == pytest.approx(3.5 * H + 0.1 * H + 8 * H)
    # without preemption (backfill) the high-priority job waits for the low one
    sim2 = ClusterSim([Pool("p", 16, 8)], [low, high], get_policy("backfill"), 100 * H).run()
    assert sim2.records[1].first_start_s == pytest.approx(10.1 * H)


def test_gang_time_slicing_shares_the_pool() -> None:
    """Two whole-pool jobs: under gang scheduling the second starts after one quantum."""
    run = {"p": PoolRun(1.0, 700.0)}
    jobs = [Job(i, "a", 0.0, 8, 5 * H, run, restart_s=0.0) for i in range(2)]
    sim = ClusterSim([Pool("p", 8, 8)], jobs, get_policy("gang"), 100 * H).run()
    a, b = sim.records
    assert b.first_start_s == pytest.approx(H)
    assert {s.how for s in a.segments} == {"suspended", "done"}
    assert max(a.finish_s, b.finish_s) == pytest.approx(10 * H)  # no work lost, no restart cost


def test_placement_prefers_one_leaf_and_best_fit() -> None:
    s = PoolState(Pool("p", 64, 8, nodes_per_leaf=4))  # 8 nodes, 2 leaves
    a = s.place(24)
    assert a is not None and a.leaves == 1 and [n for n, _ in a.nodes] == [0, 1, 2]
    s.take(a)
    b = s.place(32)  # one node left in leaf 0, four in leaf 1: leaf 1
    assert b is not None and b.leaves == 1 and [n for n, _ in b.nodes] == [4, 5, 6, 7]
    s.take(b)
    c = s.place(3)  # the partly used node 3? it is free: best fit is the only free node
    assert c is not None and c.nodes == ((3, 3),)
    s.take(c)
    assert s.place(8) is None and s.place(5) is not None and s.place(6) is None
    s.give(b)
    d = s.place(40)  # spans: 4 free in leaf 1, none whole in leaf 0 -> does not fit
    assert d is None


def test_job_larger_than_every_pool_is_refused() -> None:
    run = {"p": PoolRun(1.0, 700.0)}
    with pytest.raises(ValueError, match=r"gpus: 16 > 8, the largest pool"):
        ClusterSim([Pool("p", 8, 8)], [Job(0, "a", 0.0, 16, 1.0, run)], get_policy("fifo"), H)
    with pytest.raises(ValueError, match=r"pool p.gpus: 0 must be an integer >= 1"):
        Pool("p", 0, 8)
    with pytest.raises(ValueError, match=r"policy: 'sjf' is not a policy \(known: fifo"):
        get_policy("sjf")


def test_failure_loses_work_since_the_last_checkpoint() -> None:
    """A job that fails keeps its checkpointed steps, pays its restart and finishes later."""
    run = {"p": PoolRun(1.0, 700.0, failure_rate_s=1 / (4 * H))}
    job = Job(0, "a", 0.0, 8, 20 * H, run, checkpoint_interval_s=H, restart_s=0.1 * H)
    sim = ClusterSim([Pool("p", 8, 8)], [job], get_policy("fifo"), 1000 * H, seed=3).run()
    (r,) = sim.records
    failed = [s for s in r.segments if s.how == "failed"]
    assert failed and r.segments[-1].how == "done"
    for s in failed:
        assert s.kept_s == pytest.approx(H * (s.compute_s // H))
    lost = sum(s.compute_s - s.kept_s for s in r.segments)
    restarts = len(r.segments) * 0.1 * H
    assert r.finish_s == pytest.approx(20 * H + lost + restarts)
    again = ClusterSim([Pool("p", 8, 8)], [job], get_policy("fifo"), 1000 * H, seed=3).run()
    assert again.records[0].finish_s == r.finish_s  # seeded


def test_earliest_finish_waits_for_the_faster_pool() -> None:
    """A job that would take 6 h on the slow pool now waits 0.9 h for the fast one (2 h)."""
    runs = {"fast": PoolRun(1.0, 700.0), "slow": PoolRun(3.0, 400.0)}
    a = Job(0, "a", 0.0, 8, 1 * H, {"fast": runs["fast"]}, restart_s=0.0)
    b = Job(1, "b", 0.1 * H, 8, 2 * H, runs, restart_s=0.0)
    pools = [Pool("fast", 8, 8), Pool("slow", 8, 8)]
    now = ClusterSim(pools, [a, b], get_policy("fifo"), 100 * H).run().records[1]
    assert now.pool == "slow" and now.finish_s == pytest.approx(6.1 * H)
    sim = ClusterSim(pools, [a, b], get_policy("backfill"), 100 * H, 0, "earliest-finish").run()
    wait = sim.records[1]
    assert wait.pool == "fast" and wait.finish_s == pytest.approx(3 * H)
    assert wait.reservation_s == pytest.approx(1 * H)
    with pytest.raises(ValueError, match="placement: 'random' must be one of"):
        ClusterSim(pools, [a], get_policy("fifo"), H, 0, "random")
