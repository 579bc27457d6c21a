"""Collectives measured through a rate-limited link (`validation.linkcal`): fitted, priced by
both engines through `mapping.hardware_for_run`, measured once per link by the suite, and
noted (not retried) when the measurement fails."""

import dataclasses
from pathlib import Path

import pytest

from hwprofiles.catalogue import load_profile
from hwprofiles.host import HostProfile
from validation import compare
from validation.gptconfig import PRESETS
from validation.spec import RunSpec
from validation.suite import SuiteResult

TINY = PRESETS["tiny"]


def test_link_fits_price_the_runs_through_that_link():
    from simulator.costmodel.network import group_collective_time
    from validation.linkcal import LinkFit, fits_from_rows
    from validation.mapping import hardware_for_run

    alpha, beta = 2e-3, 1 / 20e6
    rows = [
        {"collective": c, "world_size": 2, "bytes": s, "median_s": alpha + beta * s * k,
         "noisy": False}
        for c, k in (("all_reduce", 1.0), ("all_gather", 0.5))
        for s in (2**18, 2**21, 2**23)
    ]  # fmt: skip
    fits = {f.collective: f for f in fits_from_rows(rows, 25e6)}
    assert fits["all_reduce"].alpha_s == pytest.approx(alpha, rel=1e-3)
    assert fits["all_reduce"].beta_s_per_byte == pytest.approx(beta, rel=1e-3)
    assert fits["all_gather"].beta_s_per_byte == pytest.approx(beta / 2, rel=1e-3)
    assert LinkFit.from_dict(fits["all_gather"].to_dict()) == fits["all_gather"]
    base = dataclasses.replace(load_profile("cpu"), host=HostProfile(collective_backend="gloo"))
    cfits = [f.collective_fit() for f in fits.values()]
    hw = hardware_for_run(base, 2, 25e6, cfits)
    assert hw.node.gpus_per_node == 2 and hw.node.scale_up.bandwidth_bytes_per_s == 25e6
    # the engines' collective time through the link is the measured one, not the nominal
    t = group_collective_time(hw, "all_gather", 2**23, 2, 1)
    assert t == pytest.approx(alpha + beta / 2 * 2**23, rel=1e-3)
    # gloo's reduce-scatter is an all-reduce: priced by the all-reduce fit
    t = group_collective_time(hw, "reduce_scatter", 2**23, 2, 1)
    assert t == pytest.approx(alpha + beta * 2**23, rel=1e-3)
    # without fits, the nominal link between one-rank nodes (as before)
    assert hardware_for_run(base, 2, 25e6).node.gpus_per_node == 1


def test_a_failed_link_measurement_is_noted_once_and_priced_by_the_nominal_link(monkeypatch):
    from contextlib import nullcontext

    from hwprofiles.calibration.collectives import CollectiveError
    from validation import suite
    from validation.launcher import loopback

    calls = []

    def failing(net, nranks, rate, threads):
        calls.append(rate)
        raise CollectiveError("collectives: rank 1 exited with code 3")

    monkeypatch.setattr(suite, "RateLimitedLinks", lambda n, rate: nullcontext(loopback()))
    monkeypatch.setattr(suite, "measure_link", failing)
    monkeypatch.setattr(suite, "launch", lambda spec, run_dir, net=None, **kw: "launched")
    result = SuiteResult()
    spec = RunSpec(TINY, "ddp", "fp32", 2, steps=2, link_bytes_per_s=25e6)
    for _ in range(3):
        assert suite.run_one(spec, Path("."), result) == "launched"
    assert calls == [25e6]  # measured (and failed) once, not at every run
    assert len(result.notes) == 1 and "exited with code 3" in result.notes[0]
    (marker,) = result.link_fits
    assert marker.collective == "none"
    # the marker prices nothing: the prediction uses the nominal link
    preds, _ = compare.predict_runs(
        [spec], load_profile("cpu"), ("analytic",), link_fits=result.link_fits
    )
    nominal, _ = compare.predict_runs([spec], load_profile("cpu"), ("analytic",))
    assert (
        preds[(spec.run_id, "analytic")].step_time_s
        == nominal[(spec.run_id, "analytic")].step_time_s
    )
    # and a report keeps marker and note through --repredict
    doc = {"link_fits": [f.to_dict() for f in result.link_fits], "suite_notes": result.notes}
    from validation.linkcal import LinkFit

    assert [LinkFit.from_dict(d) for d in doc["link_fits"]] == result.link_fits
