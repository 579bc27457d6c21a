"""`llmcap scale` and `analysis.scaling`: speed-up, efficiency, comm share, the seed's m × k."""

from __future__ import annotations

import json

import pytest
from test_des_support import toy_hw, toy_model
from typer.testing import CliRunner

from analysis.cli.main import app
from analysis.closed_form import Options
from analysis.scaling import plot, sweep, to_records, with_scale_out_gbps
from simulator.parallel import ParallelConfig, Workload


def make(n: int) -> Workload:
    p = ParallelConfig(tp=2, micro_batch_size=1, global_batch_size=64).resolve(n)
    return Workload(toy_model(), p, 1024)


@pytest.mark.parametrize("engine", ["analytic", "des"])
def test_sweep_reports_speedup_efficiency_and_the_linear_line(engine):
    pts = sweep(make, toy_hw(), [4, 16, 64], engine, Options())
    assert [p.gpus for p in pts] == [4, 16, 64]
    for p in pts:
        assert p.linear_speedup == p.gpus  # seed: m × k = dp × tp
        assert p.speedup == pytest.approx(p.efficiency * p.gpus)
        assert 0 < p.efficiency <= 1.0
        assert 0 <= p.comm_share < 1
    assert pts[0].speedup < pts[1].speedup < pts[2].speedup  # strong scaling still speeds up
    assert pts[2].efficiency < pts[0].efficiency  # ... with diminishing returns


def test_faster_nics_help_data_parallel_scaling():
    pts = sweep(make, toy_hw(), [64], "analytic", Options(), scale_out_gbps=[50, 800])
    slow, fast = pts
    assert (slow.scale_out_gbps, fast.scale_out_gbps) == (50, 800)
    assert fast.step_time_s < slow.step_time_s and fast.comm_share < slow.comm_share


def test_nic_rate_override_and_validation():
    hw = with_scale_out_gbps(toy_hw(), 400)
    assert hw.node.scale_out.bandwidth_bytes_per_s == pytest.approx(50e9)  # 400 Gb/s = 50 GB/s
    with pytest.raises(ValueError, match="Gb/s"):
        with_scale_out_gbps(toy_hw(), 0)
    with pytest.raises(ValueError, match="GPU count"):
        sweep(make, toy_hw(), [])


def test_plot_and_records(tmp_path):
    pts = sweep(make, toy_hw(), [4, 8], "analytic", Options(), scale_out_gbps=[100, 200])
    out = plot(pts, tmp_path / "scale.png", "toy")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = to_records(pts)
    json.dumps(rows, allow_nan=False)
    assert {"gpus", "speedup", "efficiency", "comm_share", "linear_speedup"} <= set(rows[0])


ARGS = [
    "scale",
    "--model",
    "gpt3-125m",
    "--hardware",
    "a100-80gb",
    "--tp",
    "1",
    "--pp",
    "1",
    "--global-batch",
    "64",
    "--seq-len",
    "1024",
    "--gpus",
    "8,16",
]


@pytest.mark.parametrize("engine", ["analytic", "des"])
def test_cli_json(engine, tmp_path):
    res = CliRunner().invoke(
        app, [*ARGS, "--engine", engine, "--json", "--plot", str(tmp_path / "s.svg")]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["inputs"]["engine"] == engine
    assert [p["gpus"] for p in data["points"]] == [8, 16]
    assert [p["linear_speedup"] for p in data["points"]] == [8, 16]
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")


def test_cli_table_and_errors():
    res = CliRunner().invoke(app, [*ARGS, "--scale-out", "100,400"])
    assert res.exit_code == 0, res.output
    assert "m×k" in res.stdout and "speedup" in res.stdout
    bad = CliRunner().invoke(app, [*ARGS[:-1], "8,x"])
    assert bad.exit_code == 2
    assert "gpus" in bad.output
    odd = CliRunner().invoke(app, [*ARGS[:-1], "7"])
    assert odd.exit_code == 2
