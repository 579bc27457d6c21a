"""Accuracy against published runs: the promise in docs/accuracy.md holds."""

import pytest

from analysis.accuracy.rows import cases
from analysis.accuracy.run import run_accuracy


@pytest.fixture(scope="module")
def result():
    return run_accuracy()


def test_median_step_time_error_within_ten_percent(result):
    s = result["summary"]
    assert s["rows_compared"] >= 40
    assert s["median_abs_error"] <= 0.10


def test_no_row_is_wildly_off(result):
    assert result["summary"]["worst_abs_error"] < 0.5


def test_every_group_is_represented_and_skips_have_reasons(result):
    groups = {c["group"] for c in result["comparisons"]}
    assert {"N21", "MLM24", "MPT"} <= groups
    assert all(s["reason"] for s in result["skipped"])


def test_measured_step_uses_the_sources_convention():
    """N21-10: eq.(3) FLOPs / (163 TFLOP/s * 3072) = 102.6 s (the CSV's derived figure)."""
    usable, _ = cases()
    row = next(c for c in usable if c.id == "N21-10")
    assert row.measured_step_s == pytest.approx(102.63, rel=0.01)
    mpt = next(c for c in usable if c.id == "MPT-A4")  # 96 seq x 2048 / (4641 tok/s x 8)
    assert mpt.measured_step_s == pytest.approx(96 * 2048 / (4641 * 8), rel=1e-9)
