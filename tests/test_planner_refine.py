"""The planner re-prices interleaved layouts with uneven chunks by the pass recursion
(`analysis.planner.search.refine`): the rows it reports carry the recursion's price, and the
window finds the best layout that re-pricing every one would."""

from __future__ import annotations

import numpy as np
import pytest

import analysis.planner.search as search
from analysis.closed_form import Options, evaluate
from analysis.layouts import Layouts
from analysis.pipeline_passes import uneven_chunks
from analysis.planner.space import BatchPolicy, enumerate_layouts
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model

SEQ = 4096


@pytest.fixture(scope="module")
def case():
    model, hw = load_model("llama-2-13b"), load_profile("h100-sxm")
    batch = BatchPolicy.default(SEQ)
    return model, hw, batch, enumerate_layouts(model, 256, hw.node.gpus_per_node, SEQ, batch)


def _search(case, low, monkeypatch, top_n=5):
    model, hw, batch, e = case
    monkeypatch.setattr(search, "RULE_LOW", low)
    return search.search_candidate(model, hw, 256, "bf16", SEQ, batch, enumeration=e, top_n=top_n)


def test_reported_rows_carry_the_recursions_price(case, monkeypatch):
    model, hw, _, e = case
    out = _search(case, search.RULE_LOW, monkeypatch, top_n=20)
    rows = Layouts.from_arrays(**{k: np.array([r[k] for r in out.top]) for k in e.layouts.row(0)})
    assert uneven_chunks(model.num_hidden_layers, rows).sum() >= 3  # among the best here
    exact = evaluate(model, hw, SEQ, rows, "bf16", Options(), keys=("step_time_s",))
    np.testing.assert_allclose([r["step_time_s"] for r in out.top], exact["step_time_s"])


def test_the_window_finds_the_best_of_pricing_every_layout(case, monkeypatch):
    model, _, _, e = case
    assert uneven_chunks(model.num_hidden_layers, e.layouts).sum() > 1000  # the case has them
    every = _search(case, 0.0, monkeypatch)
    window = _search(case, search.RULE_LOW, monkeypatch)
    assert window.best["tokens_per_s"] == pytest.approx(every.best["tokens_per_s"])
