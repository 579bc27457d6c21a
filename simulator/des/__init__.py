"""The SimPy discrete-event engine: a training step as processes on devices and links.

`simulate_step` runs one step and returns the closed form's keys plus what only a simulation
sees (contention, stragglers, per-rank timelines, power over time); see docs/simulator.md.
"""

from simulator.des.run import DesResult, simulate_step, simulate_timeline

__all__ = ["DesResult", "simulate_step", "simulate_timeline"]
