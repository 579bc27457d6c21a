"""Each job's step time and power on each pool, from llmcap's own planner search (cached).

For a (model, pool hardware, GPU count, sequence length, batch, precision) the planner's search
(`analysis.planner.search.search_candidate`, closed form) finds the fastest layout that fits in
memory; its tokens per second and its energy per step give the job's `PoolRun`. A cluster has
few distinct keys (job classes x sizes x pools), so a 30-day mix of thousands of jobs costs a
few dozen searches.

A job's "step" in the scheduler is a fixed number of tokens (its class's target batch), so the
same job can be priced on pools whose best layouts round the global batch differently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.planner.search import layout_workload, search_candidate
from analysis.planner.space import BatchPolicy
from analysis.predict import analytic_arrays
from hwprofiles.profile import HardwareProfile
from simulator.cluster.jobs import PoolRun
from simulator.model import ModelSpec
from simulator.models_catalogue import load_model
from simulator.options import Options


@dataclass
class StepModel:
    """Memoised `PoolRun`s; `why` keeps the reason a key has no feasible layout."""

    options: Options = field(default_factory=Options)
    cache: dict[tuple, PoolRun | None] = field(default_factory=dict)
    why: dict[tuple, str] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)

    def model(self, name: str) -> ModelSpec:
        if name not in self.models:
            self.models[name] = load_model(name)
        return self.models[name]

    @staticmethod
    def batch(seq_len: int, global_batch: int | None) -> BatchPolicy:
        return BatchPolicy.default(seq_len) if global_batch is None else BatchPolicy(global_batch)

    def run(
        self,
        model: str,
        hw: HardwareProfile,
        gpus: int,
        seq_len: int,
        global_batch: int | None,
        precision: str,
    ) -> PoolRun | None:
        """How a job runs on `gpus` GPUs of `hw`; None when no layout fits (see `why`)."""
        key = (model, hw.name, gpus, seq_len, global_batch, precision)
        if key in self.cache:
            return self.cache[key]
        spec = self.model(model)
        policy = self.batch(seq_len, global_batch)
        c = search_candidate(spec, hw, gpus, precision, seq_len, policy, options=self.options)
        if c.best is None:
            self.cache[key] = None
            self.why[key] = c.reason or "no feasible layout"
            return None
        row = c.best
        w = layout_workload(spec, row, precision, seq_len)
        energy_per_gpu = analytic_arrays(w, hw, self.options)["energy_per_gpu_j"]
        step_tokens = policy.target_sequences * seq_len
        run = PoolRun(
            step_time_s=step_tokens / row["tokens_per_s"],
            power_w=energy_per_gpu / row["step_time_s"],
            layout=(
                f"tp{row['tp']} pp{row['pp']} vpp{row['vpp']} cp{row['cp']} dp{row['dp']} "
                f"mb{row['mb']} gbs{row['gbs']} zero{row['zero']}"
            ),
        )
        self.cache[key] = run
        return run
