"""`EngineStep`: one definition of each label; an engine cannot forget or invent one."""

from __future__ import annotations

import pytest

from analysis.predict import analytic_arrays
from hwprofiles.catalogue import load_profile
from simulator.engine_step import BREAKDOWN, EngineStep
from simulator.models_catalogue import load_model
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload


def _arrays():
    w = Workload(load_model("gpt3-1.3b"), ParallelConfig(global_batch_size=8).resolve(8), 2048)
    return analytic_arrays(w, load_profile("a100-80gb"), Options())


def test_round_trip_keeps_every_closed_form_key():
    r = _arrays()
    step = EngineStep.from_arrays(r)
    assert set(step.breakdown) == set(BREAKDOWN) - {"comm_ep"}  # a dense model: no EP label
    assert step.to_arrays() == pytest.approx(r)
    assert sum(step.breakdown.values()) == pytest.approx(step.step_time_s, rel=1e-9)


def test_a_forgotten_label_is_an_error_not_a_silent_borrow():
    r = _arrays()
    del r["breakdown/comm_dp"]
    with pytest.raises(ValueError, match=r"breakdown: missing \['comm_dp'\]"):
        EngineStep.from_arrays(r)


def test_an_unknown_label_is_an_error():
    with pytest.raises(ValueError, match=r"unknown \['comm_xx'\]"):
        EngineStep.from_arrays(_arrays() | {"breakdown/comm_xx": 1.0})
    step = EngineStep.from_arrays(_arrays())
    parts = dict(step.breakdown, comm_xx=1.0)
    with pytest.raises(ValueError, match=r"unknown \['comm_xx'\]"):
        EngineStep(**{**step.__dict__, "breakdown": parts})
