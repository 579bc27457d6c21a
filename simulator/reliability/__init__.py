"""The whole run: failures, checkpoints, restarts and goodput (closed form and SimPy).

`rates` holds published interruption rates per component, `checkpoint` the cost of writing
and loading the training state, `goodput` the closed form (Young/Daly) and `simrun` a SimPy
run-level process that samples failures over the whole run.
"""

from simulator.reliability.options import ReliabilityOptions

__all__ = ["ReliabilityOptions"]
