"""simulator: workload specs, the transformer cost model and the SimPy discrete-event engine."""

from simulator.model import ModelSpec
from simulator.models_catalogue import list_models, load_model, model_info
from simulator.parallel import ParallelConfig, Workload

__all__ = ["ModelSpec", "ParallelConfig", "Workload", "list_models", "load_model", "model_info"]
