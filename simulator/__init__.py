"""simulator: workload specs, the transformer cost model and the SimPy discrete-event engine."""

from simulator.model import ModelSpec
from simulator.parallel import ParallelConfig, Workload

__all__ = ["ModelSpec", "ParallelConfig", "Workload"]
