"""A shared GPU cluster simulated in SimPy: pools, a job mix, placement and scheduling policies.

The scheduler takes each job's step time per pool from outside (the step model lives in
`analysis.cluster.steps`), so this package depends on nothing above `simulator`.
"""

from simulator.cluster.jobs import Job, Pool, PoolRun
from simulator.cluster.metrics import job_rows, summarise
from simulator.cluster.placement import Placement, PoolState
from simulator.cluster.policy import POLICIES, Policy, get_policy
from simulator.cluster.scheduler import ClusterSim, JobRecord, Segment

__all__ = [
    "POLICIES",
    "ClusterSim",
    "Job",
    "JobRecord",
    "Placement",
    "Policy",
    "Pool",
    "PoolRun",
    "PoolState",
    "Segment",
    "get_policy",
    "job_rows",
    "summarise",
]
