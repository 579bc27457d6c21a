"""The closed form's step from its pipeline terms: the one place where the pipeline's bubble,
its exposed sends and each rank's gradient reduction enter the step and its breakdown.

The pipeline is priced three ways (`analysis.closed_form.evaluate`): by the `bubble` rule, by
the pass recursion (`simulator.plan.makespan`, interleaving with uneven chunks) or, for the
planner's first pass, by a lower bound of the recursion (`makespan.bound`). Everything else
in the step (`Fixed`) does not depend on which, so a few layouts can be re-priced by the
recursion and the step composed again (`compose`) without pricing the rest anew: the
planner's branch and bound (`analysis.planner.bounds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from analysis.pipeline_passes import PassTimes
from simulator.plan import rules


class Pipe(NamedTuple):
    """The pipeline's terms per layout (s)."""

    bubble: np.ndarray
    """Fill and drain (before ZeRO-3's stretch and the drain's slowdown, `compose`)."""
    p2p: np.ndarray
    """Exposed pipeline sends."""
    grad_exp: np.ndarray
    """Exposed data-parallel gradient reduction (ZeRO-0/1/2)."""
    grad_slow: np.ndarray
    """Compute slowed by that reduction beside it."""

    def merged(self, other: Pipe, where: np.ndarray) -> Pipe:
        """`other`'s terms on the layouts `where`, this one's elsewhere."""
        return Pipe(*(np.where(where, a, b) for a, b in zip(other, self, strict=True)))


def by_recursion(
    rule: Pipe,
    passes: PassTimes,
    where: np.ndarray,
    own_dp: np.ndarray,
    m_last: np.ndarray,
    t_p2p: np.ndarray,
    blocking: bool,
    lower: bool,
) -> Pipe:
    """The pipeline's terms from `passes` (`pipeline_passes.pass_times`) on the layouts
    `where`, `rule`'s elsewhere; `own_dp`: the layouts whose ranks each reduce their own
    gradients (`rules.reduction_per_rank`); `m_last`: the busiest rank's compute and exposed
    TP/CP time over all micro-batches. `lower`: `passes` is a lower bound; the bubble is
    then left unclipped, so that the step stays at most the recursion's (bubble + sends +
    slowdown + reduction >= end - m_last + (reduced - end), whatever the sends)."""
    p2p = np.where(where, passes.sends * t_p2p, rule.p2p) if blocking else rule.p2p
    own = where & own_dp
    grad_slow = np.where(own, passes.slow, rule.grad_slow)
    grad_exp = np.where(own, passes.reduced - passes.end, rule.grad_exp)
    pipe = passes.end - m_last - p2p - passes.slow
    bubble = np.where(where, pipe if lower else np.maximum(pipe, 0.0), rule.bubble)
    return Pipe(bubble, p2p, grad_exp, grad_slow)


@dataclass(frozen=True)
class Fixed:
    """What the pipeline's terms do not change, per layout (s unless said)."""

    z3: np.ndarray
    """bool: ZeRO-3 layouts (their gradients reduce per unit, not beside the drain)."""
    last: np.ndarray
    """The busiest rank's micro-batch without ZeRO-3 (`rules.zero3_bubble`)."""
    z3_waits: np.ndarray
    z3_slow_mb: np.ndarray
    z3_exposed: np.ndarray
    """ZeRO-3's exposed gathers and reduce-scatters outside the fill and drain."""
    ag_exposed: np.ndarray
    ag_slow: np.ndarray
    """ZeRO-1/2's parameter gathers: exposed, and the compute they slow."""
    compute: np.ndarray
    """All micro-batches' compute, ZeRO-3's slowdown aside."""
    z3_slow: np.ndarray
    drain: np.ndarray
    """The drain's slowdown by the other stages' reductions (`rules.drain_slowdown`)."""
    before: tuple
    """comm_tp, comm_cp, comm_ep (added before the bubble, as the step always was)."""
    after: tuple
    """copies, hooks, optimizer."""


def compose(pipe: Pipe, f: Fixed) -> dict[str, np.ndarray]:
    """The step and the breakdown parts the pipeline's terms enter (`step_time_s`, and
    ``compute``, ``pipeline_bubble``, ``comm_pp``, ``comm_zero3``, ``comm_dp``)."""
    # every stage's passes wait for their ZeRO-3 gathers: the fill and drain stretch
    fd_waits, fd_slow = rules.zero3_bubble(pipe.bubble, f.last, f.z3_waits, f.z3_slow_mb)
    z3_exposed = f.z3_exposed + np.where(f.z3, fd_waits, 0.0)  # on the path: comm_zero3
    bubble = pipe.bubble + np.where(f.z3, fd_slow, 0.0)  # the other stages' slowed passes
    compute = f.compute + np.where(f.z3, 0.0, pipe.grad_slow + f.ag_slow) + f.z3_slow
    # the drain walks through every stage's last backward, each slowed by its own stage's
    # gradient reduction beside it: the other stages' slowdowns lengthen the bubble
    bubble = bubble + f.drain
    dp_exposed = np.where(f.z3, 0.0, pipe.grad_exp + f.ag_exposed)
    step = compute
    for part in (*f.before, bubble, pipe.p2p, z3_exposed, dp_exposed, *f.after):
        step = step + part
    return {
        "step_time_s": step,
        "compute": compute,
        "pipeline_bubble": bubble,
        "comm_pp": pipe.p2p,
        "comm_zero3": z3_exposed,
        "comm_dp": dp_exposed,
    }
