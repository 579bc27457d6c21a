"""What would change the answer: the recommendation re-derived under other rental price
classes, other utilisations (when owning) and other deadlines, from the candidates already
costed (no new search; the step of each candidate does not depend on prices or deadlines)."""

from __future__ import annotations

from collections.abc import Callable

from analysis.planner.result import Candidate, PlanResult
from hwprofiles.prices import PRICE_CLASSES, load_price_rows


def _pick(
    cands: list[Candidate], money: Callable[[Candidate], float | None], deadline_s: float | None
) -> Candidate | None:
    """Cheapest meeting the deadline (fastest when there is none), among priced candidates."""
    ok = [
        c
        for c in cands
        if money(c) is not None and (deadline_s is None or c.cost.time_to_train_s <= deadline_s)  # type: ignore[union-attr]
    ]
    if not ok:
        return None
    if deadline_s is None:
        return min(ok, key=lambda c: (c.cost.time_to_train_s, money(c)))  # type: ignore[union-attr]
    return min(ok, key=lambda c: (money(c), c.cost.time_to_train_s))  # type: ignore[union-attr]


def _name(c: Candidate | None) -> str:
    return "nothing qualifies" if c is None else c.label


def by_price_class(result: PlanResult) -> list[str]:
    """Renting at each catalogue price class: who would be recommended."""
    q = result.request
    rows = load_price_rows()
    out = []
    for cls in PRICE_CLASSES:
        if cls == "quote":
            continue
        price = {h.name: rows.get(h.accelerator.name, {}).get(cls) for h in q.hardware}
        missing = sorted(k for k, v in price.items() if v is None)

        def money(c: Candidate, price=price) -> float | None:
            p = price.get(c.hardware)
            return None if p is None else c.cost.gpu_hours * p.usd_per_gpu_hour  # type: ignore[union-attr]

        pick = _pick(result.feasible, money, q.deadline_s)
        cost = "" if pick is None else f" at ${money(pick):,.0f} to rent"
        gap = f" (no {cls} price for {', '.join(missing)})" if missing else ""
        mark = " (this report)" if cls == q.price_class else ""
        out.append(f"renting at {cls} prices{mark}: {_name(pick)}{cost}{gap}")
    return out


def by_utilisation(result: PlanResult, levels=(0.3, 0.5, 0.9, 1.0)) -> list[str]:
    """Owning at other utilisations: the fixed share of a run scales as 1 / utilisation."""
    q = result.request
    if q.ownership is None:
        return []
    u0 = q.ownership.utilisation
    out = []
    for u in levels:

        def money(c: Candidate, u=u) -> float | None:
            o = c.own
            return None if o is None else o.run_fixed_usd * u0 / u + o.run_power_usd

        pick = _pick(result.feasible, money, q.deadline_s)
        cost = "" if pick is None else f" at ${money(pick):,.0f} for the run"
        be = ""
        if pick is not None and pick.own and pick.own.break_even_utilisation is not None:
            cheaper = u >= pick.own.break_even_utilisation
            be = "; owning beats renting it" if cheaper else "; renting it is cheaper"
        out.append(f"owning at {u:.0%} utilisation: {_name(pick)}{cost}{be}")
    return out


def by_deadline(result: PlanResult, factors=(0.5, 0.75, 1.5, 2.0)) -> list[str]:
    """Other deadlines: who would be the cheapest meeting them."""
    q = result.request
    if q.deadline_s is None:
        return []
    out = []
    for f in factors:
        d = q.deadline_s * f
        pick = _pick(result.feasible, lambda c: c.money, d)
        cost = "" if pick is None else f" (${pick.money:,.0f}, {pick.cost.days:,.1f} days)"  # type: ignore[union-attr]
        out.append(f"deadline {d / 86400:g} days: {_name(pick)}{cost}")
    return out


def what_would_change(result: PlanResult) -> list[str]:
    """Every sentence, price classes first."""
    return by_price_class(result) + by_utilisation(result) + by_deadline(result)
