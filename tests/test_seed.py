"""The seed document's formulas, computed literally (and the intended energy reading)."""

import pytest

from analysis import seed


def test_params_split_round_trip():
    assert seed.params_split(20e9, 8) == 160e9
    assert seed.params_per_submodel(175e9, 7) == pytest.approx(25e9)


def test_data_per_node():
    assert seed.data_per_node(1e12, 4) == 2.5e11
    with pytest.raises(ValueError, match="k"):
        seed.data_per_node(1.0, 0)


def test_linear_speedup_is_m_times_k():
    assert seed.speedup_linear(16, 8) == 128.0
    with pytest.raises(ValueError):
        seed.speedup_linear(0, 8)


def test_energy_formula_as_printed_increases_energy():
    """E x P/L with P=32, L=16 doubles E, although the article says it saves energy."""
    assert seed.energy_mixed_literal(100.0, 32, 16) == 200.0
    assert seed.energy_mixed_intended(100.0, 32, 16) == 50.0
    assert seed.energy_mixed_intended(100.0, 32, 8) == 25.0


def test_document_predictions_explain_the_energy_reading():
    d = seed.document_predictions(
        n_params=7e9,
        num_gpus=64,
        model_parallel=8,
        data_parallel=8,
        tokens_per_step=4e6,
        single_gpu_step_time_s=640.0,
        energy_per_step_j=1e6,
        precision="bf16",
        energy_fp32_j=3e6,
    )
    assert d["speedup_m_times_k"] == 64
    assert d["step_time_s_linear"] == pytest.approx(10.0)
    assert d["energy_mixed_literal_j"] == pytest.approx(6e6)
    assert d["energy_mixed_intended_j"] == pytest.approx(1.5e6)
    assert "increase" in d["energy_note"]
