"""The planner prices only the layouts that could be among the best (`analysis.planner.bounds`):
its best rows are those that pricing every layout would give, they carry the full price,
and both lower bounds it prunes with stay under that price."""

from __future__ import annotations

import numpy as np
import pytest

import analysis.planner.bounds as bounds
import analysis.planner.search as search
from analysis.closed_form import Options, evaluate, memory_and_floor, per_layer_times
from analysis.pipeline_passes import uneven_chunks
from analysis.planner.space import BatchPolicy, enumerate_layouts
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model

CASES = {  # (model, hardware, GPUs, sequence): dense and bubble-heavy, MoE, 126 layers
    "llama-2-13b": ("llama-2-13b", "h100-sxm", 256, 4096),
    "llama-3-70b-4096-b200": ("llama-3-70b", "b200", 4096, 8192),
    "mixtral": ("mixtral-8x7b", "a100-80gb", 256, 4096),
    "llama-3.1-405b": ("llama-3.1-405b", "h100-sxm", 2048, 8192),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    name, hw_name, gpus, seq = CASES[request.param]
    model, hw = load_model(name), load_profile(hw_name)
    e = enumerate_layouts(model, gpus, hw.node.gpus_per_node, seq, BatchPolicy.default(seq))
    full = evaluate(
        model, hw, seq, e.layouts, "bf16", Options(), keys=("step_time_s", "memory_per_gpu_bytes")
    )
    return model, hw, gpus, seq, e, full


def test_the_best_rows_are_those_of_pricing_every_layout(case):
    model, hw, gpus, seq, e, full = case
    out = search.search_candidate(
        model, hw, gpus, "bf16", seq, BatchPolicy.default(seq), enumeration=e, top_n=10
    )
    fits = full["memory_per_gpu_bytes"] <= out.usable_memory_bytes
    tps = np.where(fits, e.layouts.gbs * seq / full["step_time_s"], -np.inf)
    want = np.argsort(-tps, kind="stable")[:10]
    assert [e.layouts.row(int(i)) for i in want] == [
        {k: r[k] for k in e.layouts.row(0)} for r in out.top
    ]
    np.testing.assert_allclose([r["tokens_per_s"] for r in out.top], tps[want], rtol=1e-12)
    assert out.fit == int(fits.sum())


def test_both_bounds_stay_under_the_price(case):
    model, hw, _, seq, e, full = case
    layers = per_layer_times(model, hw, seq, e.layouts, "bf16", Options())
    _, floor = memory_and_floor(model, hw, seq, e.layouts, "bf16", Options(), layers)
    step = full["step_time_s"]
    assert np.all(floor <= step * (1 + 1e-12))
    assert np.median(floor / step) > 0.5  # and bounds something
    uneven = uneven_chunks(model.num_hidden_layers, e.layouts)
    if uneven.any():
        sub = e.layouts.take(np.flatnonzero(uneven))

        class Never:  # every uneven layout at the recursion's lower bound, none priced
            def skip(self, step, uneven):
                return np.zeros(uneven.shape, dtype=bool), step

            def __call__(self, step, bounded):
                return np.zeros(0, dtype=int)

        low = evaluate(model, hw, seq, sub, "bf16", Options(), refine=Never())["step_time_s"]
        assert np.all(low <= step[uneven] * (1 + 1e-12))
        assert np.median(low / step[uneven]) > 0.8


def test_rows_left_at_their_bound_could_not_be_best(monkeypatch):
    """The recursion prices few layouts: those whose bound reaches the k-th best."""
    model, hw, seq = load_model("llama-3-70b"), load_profile("h100-sxm"), 8192
    e = enumerate_layouts(model, 1024, hw.node.gpus_per_node, seq, BatchPolicy.default(seq))
    made = []

    class Counting(bounds.Refine):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(bounds, "Refine", Counting)
    out = search.search_candidate(
        model, hw, 1024, "bf16", seq, BatchPolicy.default(seq), enumeration=e
    )
    uneven = int(uneven_chunks(model.num_hidden_layers, e.layouts).sum())
    priced = sum(r.priced for r in made)
    assert out.feasible and 0 < priced < uneven / 100
