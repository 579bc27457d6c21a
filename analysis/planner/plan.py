"""`plan`: answer a `PlanRequest`: search, cost, rank, and re-check the best with the SimPy engine.

1. Enumerate the valid layouts of every cluster size (shared by the hardware with the same
   GPUs per node and by every precision) and search them with the closed form.
2. Predict each candidate's best layout with `analysis.predict.predict` (a `StepResult`, the
   seed formulas beside it) and cost the token budget.
3. Mark the time-vs-cost Pareto front and rank: cheapest first among those meeting a
   deadline (and budget); fastest first among those within a budget only; with neither, the
   Pareto front from fastest to cheapest.
4. Re-check the first `recheck` of the ranking with the SimPy engine, when it is installed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from analysis.planner.costs import training_cost, unit_price
from analysis.planner.pareto import pareto_mask
from analysis.planner.request import PlanRequest
from analysis.planner.result import Candidate, PlanResult
from analysis.planner.search import layout_workload, search_candidate, unsupported
from analysis.planner.smallest import smallest_cluster
from analysis.planner.space import Enumeration, enumerate_layouts
from analysis.planner.tco import ownership_cost, unpriced_reason
from analysis.predict import ClosedForms, closed_forms, predict
from hwprofiles.ownership import load_ownership
from hwprofiles.prices import Price
from hwprofiles.profile import HardwareProfile
from simulator.limits import DesTooLarge
from simulator.parallel import Workload

DES_AGREEMENT = (0.8, 1.25)
"""DES / closed-form step-time ratios inside this band count as agreeing (a reporting threshold:
the two engines differ by design in contention and overlap, by tens of percent at most)."""

PlanProgress = Callable[[int, int], None]
"""Called as progress(layouts evaluated so far, layouts in all) during the search, and as
progress(items done, items in all) within the later stages."""

PlanStage = Callable[[str], None]
"""Called with the name of each stage as it starts (for a progress display)."""


def _enumerations(req: PlanRequest) -> dict[tuple[int, int], Enumeration]:
    """Valid layouts per (GPUs per node, GPU count), computed once."""
    out: dict[tuple[int, int], Enumeration] = {}
    for hw in req.hardware:
        for g in req.gpus:
            key = (hw.node.gpus_per_node, g)
            if key not in out:
                out[key] = enumerate_layouts(
                    req.model, g, key[0], req.sequence_length, req.batch, req.space
                )
    return out


def search_all(
    req: PlanRequest,
    prices: Mapping[str, Price] | None = None,
    progress: PlanProgress | None = None,
) -> list[Candidate]:
    """Search every (hardware, precision, GPU count); no costing yet."""
    enums = _enumerations(req)
    total = sum(
        len(enums[(hw.node.gpus_per_node, g)].layouts)
        for hw in req.hardware
        for g in req.gpus
        for p in req.precisions
        if unsupported(hw, g, p) is None
    )
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    out = []
    for hw in req.hardware:
        price = unit_price(hw, prices or {}, fallback=not req.price_class)
        for precision in req.precisions:
            for g in req.gpus:
                found = search_candidate(
                    req.model,
                    hw,
                    g,
                    precision,
                    req.sequence_length,
                    req.batch,
                    enumeration=enums[(hw.node.gpus_per_node, g)],
                    options=req.options,
                    space=req.space,
                    usable_memory_fraction=req.usable_memory_fraction,
                    top_n=req.top_n,
                    progress=advance,
                )
                out.append(Candidate(found, price))
    if progress is not None:
        progress(total, total)
    return out


def _cost_all(req: PlanRequest, cands: list[Candidate]) -> None:
    """`_cost` each candidate, the closed form's evaluations of one hardware's candidates
    together (`closed_forms`: three calls per hardware and precision, not three each)."""
    by_hw: dict[str, list[Candidate]] = {}
    for c in cands:
        by_hw.setdefault(c.hardware, []).append(c)
    for name, group in by_hw.items():
        hw = next(h for h in req.hardware if h.name == name)
        ws = [layout_workload(req.model, c.search.best, c.precision, req.sequence_length)
              for c in group]  # fmt: skip
        for c, w, cf in zip(group, ws, closed_forms(ws, hw, req.options), strict=True):
            _cost(req, c, hw, w, cf)


def _cost(
    req: PlanRequest, c: Candidate, hw: HardwareProfile, w: Workload, closed: ClosedForms
) -> None:
    """Predict the best layout (closed form) and cost the token budget."""
    c.step = predict(w, hw, "analytic", req.options, tokens=req.tokens, closed=closed)
    c.cost = training_cost(
        tokens=req.tokens,
        tokens_per_step=c.step.tokens_per_step,
        step_time_s=c.step.step_time_s,
        gpus=c.gpus,
        energy_per_step_j=c.step.energy_per_step_j,
        price=c.price,
        grid_g_per_kwh=req.grid_g_per_kwh,
        pue=req.pue,
        wall_clock_s=c.step.whole_run.get("time_to_train_s"),
        it_energy_j=c.step.whole_run.get("energy_to_train_it_j"),
    )
    if req.ownership is not None:
        data = req.ownership_data or load_ownership()
        c.owning = True
        c.own_reason = unpriced_reason(hw, data)
        if c.own_reason is None:
            c.own = ownership_cost(
                hw,
                c.gpus,
                c.cost.time_to_train_s,
                it_power_w(c.step),
                req.ownership,
                data,
                c.price.usd_per_gpu_hour,
            )
    if req.deadline_s is not None:
        c.meets_deadline = c.cost.time_to_train_s <= req.deadline_s
    if req.budget_usd is not None:
        c.meets_budget = c.money is not None and c.money <= req.budget_usd


def it_power_w(step) -> float:
    """Whole nodes plus network switches and optics while training, before PUE (W)."""
    levels = step.power
    return levels["node_energy_per_step_j"] / step.step_time_s + levels["power_levels"]["network_w"]


def _money(c: Candidate) -> float:
    return np.inf if c.money is None else c.money


def _rank(req: PlanRequest, cands: list[Candidate]) -> tuple[list[int], int | None]:
    """(ranking, closest when a constraint is given and nothing meets it)."""
    feas = [i for i, c in enumerate(cands) if c.feasible]
    time = {i: cands[i].cost.time_to_train_s for i in feas}  # type: ignore[union-attr]
    constrained = req.deadline_s is not None or req.budget_usd is not None
    if not constrained:
        front = [i for i in feas if cands[i].on_pareto]
        return sorted(front, key=lambda i: (time[i], _money(cands[i]), i)), None
    meets = [
        i
        for i in feas
        if cands[i].meets_deadline is not False and cands[i].meets_budget is not False
    ]
    if req.deadline_s is not None:
        ranking = sorted(meets, key=lambda i: (_money(cands[i]), time[i], i))
    else:
        ranking = sorted(meets, key=lambda i: (time[i], _money(cands[i]), i))
    if ranking or not feas:
        return ranking, None

    def violation(i: int) -> float:
        """The worst relative overshoot of the deadline and budget (1.0 = just meets)."""
        v = 0.0
        if req.deadline_s is not None:
            v = max(v, time[i] / req.deadline_s)
        if req.budget_usd is not None:
            v = max(v, _money(cands[i]) / req.budget_usd)
        return v

    return [], min(feas, key=lambda i: (violation(i), i))


def _recheck(req: PlanRequest, cands: list[Candidate], ranking: list[int]) -> str:
    """Re-run the first `req.recheck` ranked candidates with the SimPy engine."""
    picked = ranking[: req.recheck]
    if not picked:
        return "DES re-check not requested" if req.recheck == 0 else "nothing to re-check"
    skipped = []
    for i in picked:
        c = cands[i]
        hw = next(h for h in req.hardware if h.name == c.hardware)
        w = layout_workload(req.model, c.search.best, c.precision, req.sequence_length)
        try:
            des = predict(w, hw, "des", req.options, tokens=req.tokens)
        except DesTooLarge:  # too many micro-batches to simulate in bounded time
            skipped.append(c.label)
            continue
        c.des_step_time_s = des.step_time_s
        c.des_wall_clock_s = des.time_to_train_s  # goodput included (simulator.reliability)
    note = f"re-checked the first {len(picked)} of the ranking with the SimPy engine"
    if skipped:
        note += f" ({len(skipped)} skipped, above the SimPy engine's size limit: {skipped[0]})"
    checked = [i for i in picked if cands[i].des_step_time_s is not None]
    off = [
        cands[i] for i in checked if not DES_AGREEMENT[0] <= cands[i].des_ratio <= DES_AGREEMENT[1]
    ]
    if off:
        worst = max(off, key=lambda c: abs(math.log(c.des_ratio)))
        note += (
            f"; it disagrees with the closed form by more than "
            f"{DES_AGREEMENT[1] - 1:.0%} on {len(off)} of them (worst: {worst.label}, "
            f"DES/closed form = {worst.des_ratio:.2f}): treat their ranking with caution"
        )
    return note


def plan(
    req: PlanRequest,
    prices: Mapping[str, Price] | None = None,
    progress: PlanProgress | None = None,
    stage: PlanStage | None = None,
) -> PlanResult:
    """Search, cost, rank and re-check; see the module docstring for the rules."""

    def begin(name: str) -> None:
        if stage is not None:
            stage(name)

    begin("searching layouts")
    cands = search_all(req, prices, progress)
    begin("costing the best layouts")
    _cost_all(req, [c for c in cands if c.search.feasible])
    times = [c.cost.time_to_train_s if c.feasible else np.nan for c in cands]  # type: ignore[union-attr]
    money = [_money(c) if c.feasible else np.nan for c in cands]
    for c, on in zip(
        cands, pareto_mask(times, np.where(np.isinf(money), np.nan, money)), strict=True
    ):
        c.on_pareto = bool(on)
    ranking, closest = _rank(req, cands)
    constrained = req.deadline_s is not None or req.budget_usd is not None
    result = PlanResult(
        request=req,
        candidates=cands,
        ranking=ranking,
        recommended=ranking[0] if (ranking and constrained) else None,
        closest=closest,
        layouts_evaluated=sum(c.search.valid for c in cands),
        layouts_priced=sum(c.search.priced for c in cands),
    )
    begin("SimPy re-check")
    result.recheck_note = _recheck(req, cands, ranking)
    result.notes = _notes(req, cands)
    result.price_note = price_note(req, cands)
    if req.deadline_s is not None:
        begin("smallest cluster per hardware")
        top = max(req.gpus)
        todo = [
            (hw, p)
            for hw in req.hardware
            for p in req.precisions
            if unsupported(hw, hw.node.gpus_per_node, p) is None
        ]
        for k, (hw, p) in enumerate(todo):
            result.smallest.append(smallest_cluster(req, hw, p, top))
            if progress is not None:
                progress(k + 1, len(todo))
    return result


def price_note(req: PlanRequest, cands: list[Candidate]) -> str:
    """One line: the rental class and each hardware's price with its provider and date."""
    seen: dict[str, str] = {}
    for c in cands:
        p = c.price
        if p.usd_per_gpu_hour is None:
            seen.setdefault(c.hardware, "no price")
        else:
            who = ", ".join(x for x in (p.provider, p.date) if x)
            seen.setdefault(
                c.hardware, f"${p.usd_per_gpu_hour:,.2f}/GPU-h" + (f" ({who})" if who else "")
            )
    cls = f"{req.price_class} prices" if req.price_class else "prices"
    return f"rent at {cls}: " + "; ".join(f"{k} {v}" for k, v in seen.items())


def _notes(req: PlanRequest, cands: list[Candidate]) -> list[str]:
    notes = []
    classes = {c.price.price_class for c in cands if c.price.price_class}
    if len(classes) > 1:
        notes.append(
            "prices come from different provider classes (" + ", ".join(sorted(classes)) + "); "
            "hyperscaler on-demand and GPU-cloud prices differ several-fold: choose one with "
            "--price-class, or pass your own quotes with --prices"
        )
    own_missing = sorted({c.hardware for c in cands if c.own_reason})
    if own_missing:
        notes.append(
            f"no server price for {', '.join(own_missing)}: owning cost omitted "
            "(add [nodes.<node>] rows to an --ownership file)"
        )
    unpriced = sorted({c.hardware for c in cands if c.price.usd_per_gpu_hour is None})
    if unpriced:
        notes.append(f"no price for {', '.join(unpriced)}: cost and the Pareto front omit it")
    return notes
