"""`Candidate` and `PlanResult`: what the planner found, as flat rows and a JSON document.

One candidate is one (hardware, GPU count, precision). Its best layout's step is a
`simulator.result.StepResult` from `analysis.predict.predict` (the `llmcap simulate` contract),
so the planner, the reports and `llmcap simulate` agree number for number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from analysis.planner.costs import SECONDS_PER_DAY, TrainingCost, UnitPrice
from analysis.planner.request import PlanRequest
from analysis.planner.search import CandidateSearch
from analysis.planner.smallest import Smallest
from analysis.planner.tco import OwnershipCost
from simulator.parallel import RECOMPUTE_MODES
from simulator.result import StepResult, round_sig

BREAKDOWN_KEYS = (
    "compute",
    "comm_tp",
    "comm_cp",
    "comm_pp",
    "comm_dp",
    "comm_zero3",
    "pipeline_bubble",
    "copies",
    "hooks",
    "optimizer",
)
"""Parts of a step in `StepResult.breakdown` (closed form), in report order."""


def layout_text(b: dict[str, int]) -> str:
    """One line per layout, e.g. "tp8 pp4 vpp5 dp32 mb1 gbs512 zero1 sp rc-selective"."""
    parts = [f"tp{b['tp']}", f"pp{b['pp']}"]
    if b["vpp"] > 1:
        parts.append(f"vpp{b['vpp']}")
    if b["cp"] > 1:
        parts.append(f"cp{b['cp']}")
    parts += [f"dp{b['dp']}", f"mb{b['mb']}", f"gbs{b['gbs']}"]
    if b.get("ep", 1) > 1:
        parts.append(f"ep{b['ep']}" + (f" etp{b['etp']}" if b.get("etp", 1) > 1 else ""))
    if b["zero"]:
        parts.append(f"zero{b['zero']}")
    if b["sp"]:
        parts.append("sp")
    if b["recompute"]:
        parts.append(f"rc-{RECOMPUTE_MODES[b['recompute']]}")
    return " ".join(parts)


@dataclass
class Candidate:
    """One (hardware, GPU count, precision): its best layout, step, totals and standing."""

    search: CandidateSearch
    price: UnitPrice
    step: StepResult | None = None
    """The best layout predicted by the closed form (None when nothing is feasible)."""
    cost: TrainingCost | None = None
    on_pareto: bool = False
    meets_deadline: bool | None = None
    meets_budget: bool | None = None
    des_step_time_s: float | None = None
    """The SimPy engine's step time for the same layout, when re-checked."""
    des_wall_clock_s: float | None = None
    """The SimPy engine's time to train with failures, checkpoints and restarts, when
    re-checked."""
    owning: bool = False
    """Costed as owned (`plan --own`): `money` is then the owner's cost of the run."""
    own: OwnershipCost | None = None
    own_reason: str | None = None
    """Why owning could not be costed (no server price)."""

    @property
    def money(self) -> float | None:
        """The cost the ranking uses: the owner's cost of the run, or the rental cost."""
        if self.owning:
            return None if self.own is None else self.own.run_usd
        return None if self.cost is None else self.cost.cost_usd

    @property
    def usd_per_mtok(self) -> float | None:
        """US dollars per million training tokens (of `money`)."""
        m = self.money
        return None if m is None or self.cost is None else m / self.cost.tokens * 1e6

    @property
    def hardware(self) -> str:
        return self.search.hardware

    @property
    def gpus(self) -> int:
        return self.search.gpus

    @property
    def precision(self) -> str:
        return self.search.precision

    @property
    def feasible(self) -> bool:
        return self.step is not None and self.cost is not None

    @property
    def label(self) -> str:
        return f"{self.hardware} x {self.gpus} {self.precision}"

    @property
    def layout_text(self) -> str:
        """Megatron-style one-liner of the best layout (see `layout_text`)."""
        return "" if self.search.best is None else layout_text(self.search.best)

    @property
    def des_ratio(self) -> float:
        """SimPy step time / closed-form step time (NaN when not re-checked)."""
        if self.des_step_time_s is None or self.step is None:
            return math.nan
        return self.des_step_time_s / self.step.step_time_s

    def des_time_to_train_s(self) -> float | None:
        if self.des_wall_clock_s is not None:
            return self.des_wall_clock_s
        if self.des_step_time_s is None or self.cost is None:
            return None
        return self.cost.steps * self.des_step_time_s

    def seed_time_to_train_s(self) -> float | None:
        """Time to train if the seed's linear speed-up m*k held (ideal single-GPU time / m*k)."""
        if self.step is None or self.cost is None:
            return None
        linear = self.step.document.get("step_time_s_linear")
        if linear is None:
            return None
        return self.cost.steps * linear

    def row(self) -> dict[str, Any]:
        """A flat record (CSV row); report units in the names (days, MWh, t, USD, GiB)."""
        s, c, b = self.search, self.cost, self.search.best or {}
        r: dict[str, Any] = {
            "hardware": s.hardware,
            "gpus": s.gpus,
            "precision": s.precision,
            "feasible": self.feasible,
            "reason": s.reason or "",
            "layouts_tried": s.tried,
            "layouts_valid": s.valid,
            "layouts_fit": s.fit,
            "layout": self.layout_text,
        }
        for k in ("tp", "pp", "vpp", "cp", "dp", "mb", "gbs", "zero", "sp"):
            r[k] = b.get(k)
        r["recompute"] = RECOMPUTE_MODES[b["recompute"]] if b else None
        st = self.step
        r |= {
            "step_time_s": st.step_time_s if st else None,
            "tokens_per_s": st.tokens_per_s if st else None,
            "mfu": st.mfu if st else None,
            "hfu": st.hfu if st else None,
            "memory_per_gpu_gib": st.memory_per_gpu_bytes / 2**30 if st else None,
            "time_to_train_days": c.days if c else None,
            "gpu_hours": c.gpu_hours if c else None,
            "usd_per_gpu_hour": self.price.usd_per_gpu_hour,
            "cost_usd": c.cost_usd if c else None,
            "energy_mwh": c.energy_mwh if c else None,
            "co2_t": c.co2_t if c else None,
            "on_pareto": self.on_pareto,
            "usd_per_mtok": self.usd_per_mtok,
            "owned": self.owning,
            "capex_usd": self.own.capex_usd if self.own else None,
            "own_run_usd": self.own.run_usd if self.own else None,
            "rent_usd": c.cost_usd if c else None,
            "break_even_utilisation": (
                self.own.to_dict()["break_even_utilisation"] if self.own else None
            ),
            "payback_years": self.own.payback_years if self.own else None,
            "meets_deadline": self.meets_deadline,
            "meets_budget": self.meets_budget,
        }
        for k in BREAKDOWN_KEYS:
            r[f"breakdown_{k}_s"] = st.breakdown.get(k) if st else None
        seed_t = self.seed_time_to_train_s()
        r["seed_speedup_m_times_k"] = st.document.get("speedup_m_times_k") if st else None
        r["llmcap_speedup"] = st.document.get("speedup_llmcap") if st else None
        r["seed_time_to_train_days"] = seed_t / SECONDS_PER_DAY if seed_t else None
        r["des_step_time_s"] = self.des_step_time_s
        des_t = self.des_time_to_train_s()
        r["des_time_to_train_days"] = des_t / SECONDS_PER_DAY if des_t else None
        return round_sig(r)

    def to_dict(self) -> dict[str, Any]:
        d = self.row()
        d["rejected"] = dict(self.search.rejected)
        d["top_layouts"] = round_sig(self.search.top)
        d["price_source"] = self.price.source
        d["ownership"] = round_sig(self.own.to_dict()) if self.own else None
        d["ownership_note"] = self.own_reason
        d["step"] = self.step.to_dict() if self.step else None
        return d


@dataclass
class PlanResult:
    """Every candidate, the Pareto front, the ranking and what was re-checked."""

    request: PlanRequest
    candidates: list[Candidate]
    ranking: list[int] = field(default_factory=list)
    """Candidate indices, best first: those meeting the constraints (cheapest first under a
    deadline, fastest first under a budget only); with no constraint, the Pareto front by time."""
    recommended: int | None = None
    """The first of `ranking` when a deadline or budget was given."""
    closest: int | None = None
    """When a constraint was given and nothing meets it: the candidate that comes closest."""
    layouts_evaluated: int = 0
    """Valid layouts searched (memory and a floor under the step of each)."""
    layouts_priced: int = 0
    """Of those, the layouts whose step was priced in full (`planner.bounds`)."""
    recheck_note: str = ""
    notes: list[str] = field(default_factory=list)
    smallest: list[Smallest] = field(default_factory=list)
    """With a deadline: the fewest GPUs of each (hardware, precision) that meet it."""
    price_note: str = ""
    """Which rental prices were used (class, each with provider and date)."""

    @property
    def feasible(self) -> list[Candidate]:
        return [c for c in self.candidates if c.feasible]

    def rows(self) -> list[dict[str, Any]]:
        return [c.row() for c in self.candidates]

    def inputs(self) -> dict[str, Any]:
        """The question as asked, JSON-ready (SI units, names as in `PlanRequest`)."""
        q = self.request
        return round_sig(
            {
                "model": q.model.name,
                "model_params": q.model.num_params(),
                "tokens": q.tokens,
                "hardware": [h.name for h in q.hardware],
                "hardware_provenance": {
                    h.name: {
                        "kind": h.provenance.kind,
                        "date": h.provenance.date,
                        "measured": list(h.provenance.measured),
                    }
                    for h in q.hardware
                },
                "gpus": list(q.gpus),
                "precisions": list(q.precisions),
                "seq_len": q.sequence_length,
                "seq_len_source": q.sequence_length_source,
                "global_batch": {
                    "target_sequences": q.batch.target_sequences,
                    "tolerance": q.batch.tolerance,
                    "source": q.batch.source,
                },
                "deadline_s": q.deadline_s,
                "budget_usd": q.budget_usd,
                "grid_g_per_kwh": q.grid_g_per_kwh,
                "pue": q.pue,
                "price_class": q.price_class,
                "ownership": (
                    None
                    if q.ownership is None
                    else {k: v for k, v in asdict(q.ownership).items() if k != "sources"}
                ),
                "usable_memory_fraction": q.usable_memory_fraction,
                "options": asdict(q.options),
                "space": asdict(q.space),
            }
        )

    def summary(self, index: int | None) -> dict[str, Any] | None:
        """A candidate named and costed in full (None for None): what `recommended` points at."""
        if index is None:
            return None
        c = self.candidates[index]
        t = c.cost
        return round_sig(
            {
                "index": index,
                "label": c.label,
                "hardware": c.hardware,
                "gpus": c.gpus,
                "precision": c.precision,
                "layout": c.layout_text,
                "time_to_train_days": t.days if t else None,
                "cost_usd": c.money,
                "owned": c.owning,
                "capex_usd": c.own.capex_usd if c.own else None,
                "rent_usd": t.cost_usd if t else None,
                "usd_per_mtok": c.usd_per_mtok,
                "usd_per_gpu_hour": c.price.usd_per_gpu_hour,
                "price_source": c.price.source,
                "energy_mwh": t.energy_mwh if t else None,
                "co2_t": t.co2_t if t else None,
                "mfu": c.step.mfu if c.step else None,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of `llmcap plan --json` (rounded, key order fixed)."""
        return {
            "inputs": self.inputs(),
            "layouts_evaluated": self.layouts_evaluated,
            "layouts_priced": self.layouts_priced,
            "recommended": self.recommended,
            "recommendation": self.summary(self.recommended),
            "closest_candidate": self.summary(self.closest),
            "closest": self.closest,
            "ranking": list(self.ranking),
            "recheck": self.recheck_note,
            "notes": list(self.notes),
            "prices_used": self.price_note,
            "smallest_meeting_deadline": [round_sig(asdict(s)) for s in self.smallest],
            "candidates": [c.to_dict() for c in self.candidates],
        }
