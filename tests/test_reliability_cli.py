"""`llmcap simulate` whole-run outputs, flags, [reliability] run files and one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app

BASE = [
    "simulate",
    "--model",
    "llama3-8b",
    "--gpus",
    "64",
    "--tp",
    "1",
    "--pp",
    "1",
    "--global-batch",
    "512",
    "--seq-len",
    "2048",
]


def run(*args):
    return CliRunner().invoke(app, [*BASE, *args])


def test_json_has_whole_run_fields():
    r = run("--tokens", "1e11", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    for k in (
        "time_to_train_ideal_s",
        "goodput_fraction",
        "expected_interruptions",
        "checkpoint_interval_s",
    ):
        assert k in d
    assert d["time_to_train_s"] > d["time_to_train_ideal_s"]
    assert d["time_to_train_ideal_s"] == pytest.approx(1e11 / d["tokens_per_s"], rel=1e-5)
    assert 0.99 < d["goodput_fraction"] < 1.0


def test_flags_and_run_file_reach_the_model(tmp_path):
    given = json.loads(run("--tokens", "1e11", "--json", "--checkpoint-interval", "7200").stdout)
    assert given["checkpoint_interval_s"] == pytest.approx(7200)
    assert given["checkpoint_interval_optimal"] is False
    f = tmp_path / "run.toml"
    f.write_text("[reliability]\nmtbf_scale = 0.01\nasync_checkpoint = true\n")
    d = json.loads(run("--tokens", "1e11", "--json", "--config", str(f)).stdout)
    base = json.loads(run("--tokens", "1e11", "--json").stdout)
    assert d["async_checkpoint"] is True
    assert d["expected_interruptions"] > 50 * base["expected_interruptions"]


def test_des_gives_percentiles():
    d = json.loads(run("--tokens", "1e11", "--json", "--engine", "des").stdout)
    assert d["time_to_train_p10_s"] <= d["time_to_train_p50_s"] <= d["time_to_train_p90_s"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--checkpoint-interval", "0"], "checkpoint_interval_s"),
        (["--checkpoint-interval", "nan"], "checkpoint_interval_s"),
        (["--checkpoint-interval", "0.001"], "checkpoint_interval_s"),
        (["--mtbf-scale", "-2"], "mtbf_scale"),
        (["--mtbf-scale", "nan"], "mtbf_scale"),
        (["--storage-bandwidth", "0"], "storage_bandwidth"),
        (["--storage-bandwidth", "nan"], "storage_bandwidth"),
    ],
)
def test_bad_values_one_line_exit_2(args, field):
    r = run("--tokens", "1e11", "--json", *args)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"llmcap: error: {field}: ")


def test_unknown_component_in_failure_rate_file(tmp_path):
    f = tmp_path / "rates.toml"
    f.write_text("[rates_per_unit_hour]\ngpu = 1e-5\nflux_capacitor = 1e-6\n")
    r = run("--tokens", "1e11", "--failure-rates", str(f))
    assert r.exit_code == 2
    assert r.stderr.strip().startswith("llmcap: error: failure_rates.flux_capacitor: ")
    assert "known: gpu, hbm" in r.stderr


def test_pue_sets_facility_energy_and_is_checked():
    a = json.loads(run("--json", "--pue", "1.1").stdout)
    b = json.loads(run("--json", "--pue", "1.5").stdout)
    assert b["power_levels"]["pue"] == 1.5
    assert b["facility_energy_per_step_j"] / a["facility_energy_per_step_j"] == pytest.approx(
        1.5 / 1.1, rel=1e-4
    )
    r = run("--json", "--pue", "0.9")
    assert r.exit_code == 2 and r.stderr.startswith("llmcap: error: pue: 0.9 must be")
