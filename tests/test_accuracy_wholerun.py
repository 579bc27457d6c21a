"""Whole-run accuracy: published GPU-hours, goodput, node power and energy, scope per row."""

import pytest

from analysis.accuracy.wholerun import rows, whole_run_comparisons


@pytest.fixture(scope="module")
def result():
    return whole_run_comparisons()


def test_every_row_has_source_scope_and_kind():
    for r in rows():
        assert r["source"] and r["scope"] in ("time", "gpu", "node", "facility")
        assert r["kind"] in ("measured", "reported", "TDP-estimated", "anchor", "bound")


def test_measured_power_rows_within_15_percent_median(result):
    assert result["median_abs_error_power_energy"] is not None
    assert result["median_abs_error_power_energy"] <= 0.15
    assert result["median_abs_error_time"] <= 0.15


def test_tdp_estimates_sit_above_llmcap_and_bounds_hold(result):
    by_kind = {}
    for c in result["comparisons"]:
        by_kind.setdefault(c["kind"], []).append(c)
    assert all(c["predicted"] < c["measured"] for c in by_kind["TDP-estimated"])
    assert all(c["predicted"] >= c["measured"] for c in by_kind["bound"])
