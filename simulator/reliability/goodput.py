"""Expected wall-clock time of a whole run with failures and checkpoints: the closed form.

The run needs W seconds of training (steps x step time). It is cut into pieces of tau seconds
of work, each followed by a checkpoint that blocks training for d seconds (the last piece needs
none). Failures arrive as a Poisson process of rate lam = 1/M (M = job MTBF) while training or
checkpointing; each costs X seconds of restart (detection, relaunch, load, warm-up) and the
work since the last checkpoint. With memoryless failures each piece is independent and takes

    E[T(L)] = (exp(lam L) - 1) (M + X),   L = tau + d,

in expectation (the number of failed attempts is geometric with mean exp(lam L) - 1, and a
failed attempt lasts M on average, truncated: Daly 2006, 'A higher order estimate of the
optimum checkpoint interval for restart dumps', FGCS 22, eq. 13 with failures during restart
neglected). The optimal tau minimises E[T(tau + d)] / tau; to first order it is Young's
sqrt(2 d M) (Young 1974, CACM 17(9)).

Asynchronous checkpoints block only for the snapshot; a checkpoint counts once its background
write of w seconds is done, so a failure within w after a snapshot loses one piece more. Its
expected extra loss per failure is about tau * w / L ~ w, added to X (an approximation the
SimPy run checks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RunPlan:
    """The run's constants (seconds; rate in 1/s)."""

    work_s: float
    rate_per_s: float
    block_s: float
    write_s: float
    restart_s: float
    async_checkpoint: bool = False

    @property
    def mtbf_s(self) -> float:
        return 1.0 / self.rate_per_s

    @property
    def failure_cost_s(self) -> float:
        """X: restart plus, when asynchronous, the expected extra rollback."""
        return self.restart_s + (self.write_s if self.async_checkpoint else 0.0)

    def min_work_per_piece_s(self) -> float:
        """Asynchronous: the background write must finish before the next snapshot."""
        return self.write_s if self.async_checkpoint else 0.0


def pieces(work_s: float, tau: float) -> tuple[int, float]:
    """(checkpointed pieces of tau, last piece's work) for `work_s` of training."""
    n = max(math.ceil(work_s / tau - 1e-12), 1)
    return n - 1, work_s - (n - 1) * tau


def _expm1(x: float) -> float:
    """exp(x) - 1, or inf past the float range (a piece far longer than the MTBF)."""
    return math.expm1(x) if x < 700.0 else math.inf


def _log_expm1(x: float) -> float:
    """log(exp(x) - 1) without overflow, x > 0."""
    return x + math.log1p(-math.exp(-x)) if x > 30.0 else math.log(math.expm1(x))


def _piece(L: float, lam: float, X: float) -> tuple[float, float]:
    """(expected time, expected failures) to get L seconds through without a failure."""
    f = _expm1(lam * L)
    return f * (1.0 / lam + X), f


def expected(plan: RunPlan, tau: float) -> dict[str, float]:
    """Expected totals of the run with `tau` seconds of work between checkpoints."""
    lam, X, d = plan.rate_per_s, plan.failure_cost_s, plan.block_s
    n_ck, last = pieces(plan.work_s, tau)
    t_full, f_full = _piece(tau + d, lam, X)
    t_last, f_last = _piece(last, lam, X)
    total = n_ck * t_full + t_last
    fails = n_ck * f_full + f_last
    ckpt = n_ck * d
    restart = fails * plan.restart_s
    return {
        "time_s": total,
        "interruptions": fails,
        "checkpoints": float(n_ck),
        "checkpoint_s": ckpt,
        "restart_s": restart,
        "lost_work_s": max(total - plan.work_s - ckpt - restart, 0.0),
    }


def optimal_tau(plan: RunPlan) -> float:
    """Work between checkpoints that minimises the expected time (golden section on log tau)."""
    lo_bound = max(plan.min_work_per_piece_s(), 1e-3)
    if plan.work_s <= lo_bound:
        return plan.work_s
    lam, X, d = plan.rate_per_s, plan.failure_cost_s, plan.block_s

    def cost(log_tau: float) -> float:
        """log of the expected time per second of work (log space: no overflow)."""
        return _log_expm1(lam * (math.exp(log_tau) + d)) + math.log(1.0 / lam + X) - log_tau

    a, b = math.log(lo_bound), math.log(plan.work_s)
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, e = b - g * (b - a), a + g * (b - a)
    fc, fe = cost(c), cost(e)
    for _ in range(200):
        if fc < fe:
            b, e, fe = e, c, fc
            c = b - g * (b - a)
            fc = cost(c)
        else:
            a, c, fc = c, e, fe
            e = a + g * (b - a)
            fe = cost(e)
        if b - a < 1e-9:
            break
    tau = math.exp((a + b) / 2.0)
    # checkpointing more often than once per run must beat not checkpointing at all
    if expected(plan, plan.work_s)["time_s"] <= expected(plan, tau)["time_s"]:
        return plan.work_s
    return tau


def young_tau(plan: RunPlan) -> float:
    """Young's first-order optimum sqrt(2 d M) (for reference beside the exact one)."""
    return math.sqrt(2.0 * plan.block_s * plan.mtbf_s)
