"""The planner: search every parallel layout of every hardware candidate and cluster size,
cost the token budget, and rank the candidates (see docs/planner.md)."""

from analysis.planner.plan import plan
from analysis.planner.request import PlanRequest, gpu_counts_up_to
from analysis.planner.result import Candidate, PlanResult

__all__ = ["Candidate", "PlanRequest", "PlanResult", "gpu_counts_up_to", "plan"]
