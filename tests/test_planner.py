"""The planner's search, costs, Pareto front and ranking (small models, few cluster sizes)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from analysis.closed_form import Options, evaluate
from analysis.layouts import Layouts
from analysis.planner import PlanRequest, gpu_counts_up_to, plan
from analysis.planner.costs import UnitPrice, training_cost, unit_price
from analysis.planner.pareto import pareto_mask
from analysis.planner.search import (
    evaluate_chunked,
    layout_workload,
    search_candidate,
)
from analysis.planner.space import BatchPolicy, SearchSpace, enumerate_layouts
from analysis.predict import predict
from hwprofiles.catalogue import load_profile
from hwprofiles.prices import Price
from simulator.models_catalogue import load_model

SMALL_SPACE = SearchSpace(max_cp=2, max_vpp=2, micro_batches=(1, 2), zero_stages=(0, 1, 3))


@pytest.fixture(scope="module")
def h100():
    return load_profile("h100-sxm")


@pytest.fixture(scope="module")
def a100():
    return load_profile("a100-80gb")


@pytest.fixture(scope="module")
def llama8b():
    return load_model("llama-3-8b")


def _request(model, hws, **kw):
    base = dict(
        model=model,
        tokens=1e11,
        hardware=tuple(hws),
        gpus=(8, 16, 32),
        seq_len=2048,
        global_batch=64,
        space=SMALL_SPACE,
        recheck=0,
    )
    return PlanRequest(**(base | kw))


# ---- search ------------------------------------------------------------------------------
def test_chunked_evaluation_equals_one_call(h100, llama8b):
    e = enumerate_layouts(llama8b, 16, 8, 2048, BatchPolicy(64), SMALL_SPACE)
    whole = evaluate(llama8b, h100, 2048, e.layouts, "bf16")
    parts = evaluate_chunked(llama8b, h100, 2048, e.layouts, "bf16", Options(), chunk=7)
    np.testing.assert_array_equal(parts["step_time_s"], whole["step_time_s"])
    np.testing.assert_array_equal(parts["memory_per_gpu_bytes"], whole["memory_per_gpu_bytes"])


def test_best_layout_is_the_fastest_that_fits_layout_by_layout(h100, llama8b):
    """A plain loop over every layout, one `evaluate` each, picks the same winner."""
    e = enumerate_layouts(llama8b, 16, 8, 2048, BatchPolicy(64), SMALL_SPACE)
    found = search_candidate(llama8b, h100, 16, "bf16", 2048, BatchPolicy(64), e)
    usable = 0.9 * h100.accelerator.memory_bytes
    best, best_tps = None, -1.0
    for i in range(len(e.layouts)):
        one = Layouts.from_arrays(**e.layouts.row(i))
        r = evaluate(llama8b, h100, 2048, one, "bf16")
        tps = one.gbs[0] * 2048 / r["step_time_s"][0]
        if r["memory_per_gpu_bytes"][0] <= usable and tps > best_tps:
            best, best_tps = e.layouts.row(i), tps
    assert found.best is not None
    assert {k: found.best[k] for k in best} == best
    assert found.best["tokens_per_s"] == pytest.approx(best_tps)
    tps = [t["tokens_per_s"] for t in found.top]
    assert tps == sorted(tps, reverse=True)
    assert found.fit <= found.valid <= found.tried


def test_predict_agrees_with_the_search(h100, llama8b):
    found = search_candidate(llama8b, h100, 16, "bf16", 2048, BatchPolicy(64), space=SMALL_SPACE)
    w = layout_workload(llama8b, found.best, "bf16", 2048)
    assert w.num_gpus == 16
    step = predict(w, h100)
    assert step.step_time_s == pytest.approx(found.best["step_time_s"], rel=1e-12)
    assert step.fits_in_memory


def test_no_fit_says_how_much_memory_is_missing(h100):
    model = load_model("llama-3-70b")
    found = search_candidate(model, h100, 8, "bf16", 8192, BatchPolicy(64), space=SMALL_SPACE)
    assert not found.feasible and found.fit == 0 and found.valid > 0
    assert found.reason.startswith("memory:") and "GiB" in found.reason
    assert found.min_memory_bytes > found.usable_memory_bytes


def test_unsupported_precision_and_partial_nodes_are_reasons(a100, llama8b):
    fp8 = search_candidate(llama8b, a100, 16, "fp8", 2048, BatchPolicy(64), space=SMALL_SPACE)
    assert not fp8.feasible and "fp8" in fp8.reason
    odd = search_candidate(llama8b, a100, 12, "bf16", 2048, BatchPolicy(64), space=SMALL_SPACE)
    assert not odd.feasible and odd.reason.startswith("gpus: 12")


# ---- costs and Pareto --------------------------------------------------------------------
def test_training_cost_arithmetic():
    c = training_cost(
        tokens=4e12,
        tokens_per_step=4e6,
        step_time_s=2.0,
        gpus=1000,
        energy_per_step_j=1.8e6,
        price=UnitPrice(2.5, "test"),
        grid_g_per_kwh=400.0,
        pue=1.2,
    )
    assert c.steps == pytest.approx(1e6)
    assert c.time_to_train_s == pytest.approx(2e6)
    assert c.gpu_hours == pytest.approx(1000 * 2e6 / 3600)
    assert c.cost_usd == pytest.approx(c.gpu_hours * 2.5)
    assert c.energy_mwh == pytest.approx(1.8e6 * 1e6 * 1.2 / 3.6e9)  # 600 MWh
    assert c.co2_t == pytest.approx(600 * 1000 * 400 / 1e6)  # 240 t
    with pytest.raises(ValueError, match="pue"):
        training_cost(
            tokens=1,
            tokens_per_step=1,
            step_time_s=1,
            gpus=1,
            energy_per_step_j=1,
            price=UnitPrice(1, ""),
            pue=0.9,
        )


def test_unit_price_prefers_the_table_then_the_profile(h100):
    table = {"h100-sxm": Price(1.5, "2026", "our quote", "Acme", "reserved")}
    assert unit_price(h100, table).usd_per_gpu_hour == 1.5
    assert "our quote" in unit_price(h100, table).source
    own = replace(h100, price_per_gpu_hour_usd=9.0, price_source="profile")
    assert unit_price(own, {}).usd_per_gpu_hour == 9.0
    bare = replace(h100, price_per_gpu_hour_usd=None)
    assert unit_price(bare, {}).usd_per_gpu_hour is None


def test_pareto_front():
    time = [1, 2, 3, 2, 5, np.nan, 1]
    cost = [5, 3, 1, 4, 0.5, 0.1, 5]
    assert pareto_mask(time, cost).tolist() == [True, True, True, False, True, False, False]
    with pytest.raises(ValueError, match="shape"):
        pareto_mask([1, 2], [1])


# ---- plan: ranking, constraints, re-check -------------------------------------------------
def test_plan_ranks_cheapest_meeting_the_deadline(h100, a100, llama8b):
    free = _request(llama8b, [h100, a100])
    r0 = plan(free)
    feas = r0.feasible
    assert feas and all(c.cost.cost_usd for c in feas)
    front = [r0.candidates[i] for i in r0.ranking]
    assert r0.recommended is None and all(c.on_pareto for c in front)
    days = [c.cost.days for c in front]
    assert days == sorted(days)
    deadline = float(np.median([c.cost.time_to_train_s for c in feas]))
    r1 = plan(replace(free, deadline_s=deadline))
    best = r1.candidates[r1.recommended]
    meeting = [c for c in r1.feasible if c.cost.time_to_train_s <= deadline]
    assert best.cost.time_to_train_s <= deadline
    assert best.cost.cost_usd == min(c.cost.cost_usd for c in meeting)
    assert len(r1.ranking) == len(meeting)


def test_budget_only_ranks_fastest_within_it(h100, llama8b):
    r0 = plan(_request(llama8b, [h100]))
    budget = max(c.cost.cost_usd for c in r0.feasible) * 1.01
    r = plan(_request(llama8b, [h100], budget_usd=budget))
    best = r.candidates[r.recommended]
    assert best.cost.time_to_train_s == min(c.cost.time_to_train_s for c in r.feasible)


def test_impossible_deadline_names_the_closest(h100, a100, llama8b):
    r = plan(_request(llama8b, [h100, a100], deadline_s=60.0))
    assert r.ranking == [] and r.recommended is None
    closest = r.candidates[r.closest]
    assert closest.cost.time_to_train_s == min(c.cost.time_to_train_s for c in r.feasible)


def test_recheck_runs_the_des_engine_on_the_ranked_candidates(h100, llama8b):
    pytest.importorskip("simulator.des.run")
    r = plan(_request(llama8b, [h100], recheck=1, gpus=(8, 16), deadline_s=1e9))
    checked = [c for c in r.candidates if c.des_step_time_s is not None]
    assert [r.candidates.index(c) for c in checked] == r.ranking[:1]
    assert checked[0].des_ratio > 0 and r.recheck_note.startswith("re-checked the first 1")


def test_plan_is_deterministic_and_json_ready(h100, llama8b):
    import json

    req = _request(llama8b, [h100], precisions=("bf16", "fp8"))
    a, b = plan(req).to_dict(), plan(req).to_dict()
    assert json.dumps(a) == json.dumps(b)
    assert a["inputs"]["global_batch"]["target_sequences"] == 64
    assert {c["precision"] for c in a["candidates"]} == {"bf16", "fp8"}


def test_progress_counts_the_layouts_evaluated(a100, llama8b):
    seen = []
    req = _request(llama8b, [a100], gpus=(8, 16), precisions=("bf16", "fp8"))  # no fp8 on A100
    r = plan(req, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (r.layouts_evaluated, r.layouts_evaluated)
    assert r.layouts_evaluated > 0
    # only the layouts that could be best are priced in full (`planner.bounds`)
    fitting = sum(c.search.fit for c in r.candidates)
    assert 0 < r.layouts_priced <= fitting
    assert r.to_dict()["layouts_priced"] == r.layouts_priced
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) > 2, "progress is reported while searching, not only at the end"


def test_request_validation_names_the_field(h100, llama8b):
    with pytest.raises(ValueError, match="tokens"):
        _request(llama8b, [h100], tokens=0)
    with pytest.raises(ValueError, match="precision"):
        _request(llama8b, [h100], precisions=("int4",))
    with pytest.raises(ValueError, match="hardware"):
        _request(llama8b, [h100, h100])
    with pytest.raises(ValueError, match="deadline"):
        _request(llama8b, [h100], deadline_s=-1)
    assert gpu_counts_up_to(48) == (1, 2, 4, 8, 16, 32, 48)
