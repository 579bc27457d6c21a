"""A SimPy run-level process: failures sampled over the whole run, checkpoints, restarts.

Two processes share one clock. The trainer works through the run's pieces (tau seconds of
work, then a checkpoint that blocks for d seconds); between failures its progress is
deterministic, so it waits in one timeout until either the run ends or the failure process
interrupts it. On an interrupt it rolls back to the last checkpoint that is on storage (sync:
the last completed one; async: the last whose background write has finished), restarts for
X seconds and goes on. The failure process draws the time to the next failure (exponential of
mean M, or Weibull of the same mean) and starts again once the trainer is back, as the closed
form assumes (failures during a restart are absorbed by it). Repeated over seeds, the run
gives the distribution of time to train.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from simulator.reliability.goodput import RunPlan, pieces


class _Run:
    def __init__(self, plan: RunPlan, tau: float, rng: np.random.Generator, shape: float | None):
        self.plan, self.tau, self.rng, self.shape = plan, tau, rng, shape
        self.env = simpy.Environment()
        self.ready = self.env.event()
        self.done = False
        self.failures = 0
        self.trainer = self.env.process(self._train())
        self.env.process(self._fail())

    def _gap(self) -> float:
        m = self.plan.mtbf_s
        if self.shape is None or self.shape == 1.0:
            return float(self.rng.exponential(m))
        scale = m / math.gamma(1.0 + 1.0 / self.shape)  # Weibull of mean m
        return float(scale * self.rng.weibull(self.shape))

    def _committed(self, elapsed: float, n_ck: int) -> int:
        """Checkpoints of this attempt that are on storage `elapsed` s after it started."""
        period = self.tau + self.plan.block_s
        lag = self.plan.write_s if self.plan.async_checkpoint else 0.0
        k = math.floor((elapsed - lag) / period) if elapsed >= lag else 0
        return max(0, min(k, n_ck))

    def _train(self):
        p, env = self.plan, self.env
        done_work = 0.0
        while True:
            n_ck, last = pieces(p.work_s - done_work, self.tau)
            span = n_ck * (self.tau + p.block_s) + last
            start = env.now
            try:
                yield env.timeout(span)
                self.done = True
                return
            except simpy.Interrupt:
                self.failures += 1
                done_work += self._committed(env.now - start, n_ck) * self.tau
                yield env.timeout(p.restart_s)
                ev, self.ready = self.ready, env.event()
                ev.succeed()

    def _fail(self):
        env = self.env
        while True:
            yield env.timeout(self._gap())
            if self.done or not self.trainer.is_alive:
                return
            self.trainer.interrupt()
            yield self.ready


def simulate_runs(
    plan: RunPlan, tau: float, seeds: int, seed: int = 0, weibull_shape: float | None = None
) -> dict[str, object]:
    """Time to train over `seeds` sampled runs: mean, P10/P50/P90 and mean interruptions."""
    times, fails = [], []
    for i in range(seeds):
        run = _Run(plan, tau, np.random.default_rng([seed, i]), weibull_shape)
        run.env.run(until=run.trainer)
        times.append(run.env.now)
        fails.append(run.failures)
    t = np.array(times)
    p10, p50, p90 = np.percentile(t, [10, 50, 90])
    return {
        "mean_s": float(t.mean()),
        "p10_s": float(p10),
        "p50_s": float(p50),
        "p90_s": float(p90),
        "interruptions_mean": float(np.mean(fails)),
        "runs": seeds,
    }
