"""Shared-cluster questions: a job mix on pools of GPUs, scheduled in SimPy (`simulator.cluster`),
with each job priced by llmcap's own step model (see docs/cluster.md)."""

from analysis.cluster.mix import JobClass, JobMix, parse_mix, read_mix
from analysis.cluster.pools import PoolSpec, parse_pools
from analysis.cluster.run import ClusterConfig, simulate_cluster
from analysis.cluster.steps import StepModel

__all__ = [
    "ClusterConfig",
    "JobClass",
    "JobMix",
    "PoolSpec",
    "StepModel",
    "parse_mix",
    "parse_pools",
    "read_mix",
    "simulate_cluster",
]
