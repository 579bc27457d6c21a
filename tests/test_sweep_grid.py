"""`llmcap sweep` grids: axes, ranges, keys, the table, and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from analysis.sweep import parse_grid, run_sweep
from analysis.sweep.point import engine_seed, make_task
from hwprofiles.errors import UserError

pytest.importorskip("pyarrow")

BASE = {
    "model": {"name": "gpt3-125m"},
    "training": {"global_batch": 32, "seq_len": 512},
    "parallelism": {"tp": 1, "pp": 1},
    "cluster": {"gpus_per_node": 4},
}


def grid(axes, engine="des", base=BASE):
    return parse_grid({"sweep": {"engine": engine}, "base": base, "axes": axes})


def test_ranges_expand_with_both_ends_and_lists_cross():
    g = grid(
        {
            "gpus": {"from": 16, "to": 64, "times": 2},
            "speed_sigma": {"from": 0.0, "to": 0.3, "step": 0.1},
            "jitter": 0.02,
        }
    )
    assert g.axes["gpus"] == [16, 32, 64]
    assert g.axes["speed_sigma"] == [0.0, 0.1, 0.2, 0.3]
    assert g.axes["jitter"] == [0.02]
    assert g.size == 12 and len({p.key for p in g.points()}) == 12


def test_key_and_engine_seed_depend_on_inputs_only():
    a = grid({"gpus": [16, 32], "seed": [0, 1]}).points()
    b = grid({"seed": [1, 0], "gpus": [32, 16]}).points()
    assert {p.key for p in a} == {p.key for p in b}  # same inputs, any axis or value order
    other = grid({"gpus": [16, 32], "seed": [0, 1]}, base={**BASE, "training": {"seq_len": 256}})
    assert not {p.key for p in a} & {p.key for p in other.points()}  # base is part of the key
    seeds = {engine_seed(p.key) for p in a}
    assert len(seeds) == 4
    task = make_task(grid({"gpus": [16], "speed_sigma": [0.1]}).base, a[0])
    assert task["des"]["seed"] == engine_seed(a[0].key)


@pytest.mark.parametrize(
    ("axes", "field"),
    [
        ({"gpu": [8]}, "axes.gpu: unknown axis"),
        ({"model": ["gpt-9"]}, "axes.model: 'gpt-9' is not a model preset"),
        ({"gpus": [8, 0]}, "axes.gpus: 0 must be >= 1"),
        ({"speed_sigma": [0.1, 9.0]}, "axes.speed_sigma: 9.0 must be <= 5"),
        ({"scale_out_gbps": [float("inf")]}, "axes.scale_out_gbps: inf must be a finite number"),
        ({"precision": ["fp7"]}, "axes.precision: 'fp7' must be one of"),
        ({"engine": ["simpy"]}, "axes.engine: 'simpy' must be one of"),
        ({"options.warp": [True]}, "axes.options.warp: unknown option"),
        ({"gpus": []}, "axes.gpus: [] is empty"),
        ({"gpus": [8, 8]}, "axes.gpus: [8, 8] repeats a value"),
        ({"gpus": {"from": 8, "to": 4, "step": 1}}, "is an empty range"),
        ({}, "axes: {} is an empty grid"),
        ({"gpus": {"from": 1, "to": float("inf"), "step": 1}}, "axes.gpus.to: inf must be a fin"),
        ({"seed": {"from": 0, "to": float("nan"), "step": 1}}, "axes.seed.to: nan must be a fin"),
        ({"seed": {"from": 0, "to": 10**40, "step": 1}}, "within 2^63"),
        # ranges too long are refused before their values are built (10^12 and ~3e8 values)
        ({"seq_len": {"from": 1, "to": 10**12, "step": 1}}, "more than 100,000 values"),
        ({"seq_len": {"from": 1, "to": 2**40, "times": 1.0000001}}, "more than 100,000 values"),
        ({"seed": {"from": 1.0, "to": 1.7e308, "times": 1e10}}, "axes.seed: 1.0 must be an int"),
        ({"seed": list(range(100_001))}, "axes.seed: 100,001 values (rule: at most 100,000"),
        ({"seed": list(range(1000)), "gpus": list(range(1, 1001))}, "1 x 1000 x 1000 = 1,000,000"),
    ],
)
def test_bad_grids_name_field_value_and_rule(axes, field):
    with pytest.raises(UserError) as err:
        parse_grid({"sweep": {}, "axes": axes} if axes else {"sweep": {}})
    assert field in str(err.value)


def test_failing_point_records_its_error_and_the_sweep_goes_on(tmp_path):
    g = grid({"gpus": [16, 12]}, engine="analytic")  # 32 sequences do not split over dp=12
    s = run_sweep(g, tmp_path / "s", progress=False)
    assert (s.ok, s.failed) == (1, 1)
    import pyarrow.parquet as pq

    rows = pq.read_table(s.table).to_pylist()
    bad = next(r for r in rows if r["gpus"] == 12)
    assert bad["status"] == "error" and "divisible" in bad["error"] and bad["step_time_s"] is None
    assert [r["key"] for r in rows] == sorted(r["key"] for r in rows)


def test_csv_table_resumes_with_its_types(tmp_path):
    g = grid({"gpus": [16, 32], "recompute": ["none", "full"]}, engine="analytic")
    out = tmp_path / "s"
    first = run_sweep(g, out, fmt="csv", progress=False)
    text = first.table.read_text()
    again = run_sweep(g, out, fmt="csv", progress=False)
    assert (again.skipped, again.ok) == (4, 0)
    assert again.table.read_text() == text


def test_output_dir_holding_another_grid_is_refused(tmp_path):
    out = tmp_path / "s"
    run_sweep(grid({"gpus": [16]}, engine="analytic"), out, progress=False)
    with pytest.raises(UserError, match="holds a different grid"):
        run_sweep(grid({"gpus": [32]}, engine="analytic"), out, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("mine")
    with pytest.raises(UserError, match=r"is not empty and has no sweep\.json"):
        run_sweep(grid({"gpus": [16]}, engine="analytic"), tmp_path / "other", progress=False)


def test_cli_errors_are_one_line_exit_2(tmp_path):
    bad = tmp_path / "g.toml"
    bad.write_text('[axes]\nmodel = ["gpt-9"]\n')
    r = CliRunner().invoke(app, ["sweep", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "axes.model" in r.output
    assert not (tmp_path / "o").exists()
    good = tmp_path / "ok.toml"
    good.write_text('[sweep]\nengine = "analytic"\n[axes]\ngpus = [1024]\n')
    args = ["sweep", str(good), "--out", str(tmp_path / "o2"), "--executor", "dask"]
    args += ["--scheduler", "tcp://127.0.0.1:9", "--timeout", "1"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "cannot be reached within 1 s" in r.output
    assert r.output.count("\n") == 1
    assert not (tmp_path / "o2").exists()  # nothing written before the scheduler answers


def test_grid_above_the_point_limit_is_refused_before_anything_is_written(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text("[axes]\nseq_len = {from = 1, to = 1099511627776, times = 1.0000001}\n")
    r = CliRunner().invoke(app, ["sweep", str(big), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert "axes.seq_len:" in r.output and "simulator.limits" in r.output
    assert not (tmp_path / "o").exists()


JOBMIX = Path(__file__).resolve().parent.parent / "examples" / "jobmix.toml"


def cluster_grid(**axes):
    base_axes = {"jobs": str(JOBMIX), "pools": ["h100-sxm:768", "h100-sxm:512,a100-80gb:256"]}
    return parse_grid({"sweep": {"engine": "cluster"}, "axes": base_axes | axes})


def test_cluster_points_share_their_job_draws_across_pools(tmp_path):
    s = run_sweep(cluster_grid(days=1, policy="backfill"), tmp_path / "c", progress=False)
    assert (s.ok, s.failed) == (2, 0)
    import pyarrow.parquet as pq

    rows = pq.read_table(s.table).to_pylist()
    assert len({r["engine_seed"] for r in rows}) == 1  # same mix, days and replicate
    assert len({r["total.jobs_submitted"] for r in rows}) == 1
    assert all(0 < r["total.utilisation"] <= 1 for r in rows)
    assert "step_time_s" not in rows[0]  # only the columns a cluster point has


@pytest.mark.parametrize(
    ("axes", "field"),
    [
        ({"policy": ["lifo"]}, "axes.policy: 'lifo' must be one of"),
        ({"pools": ["h100-sxm"]}, "axes.pools: 'h100-sxm' must be pools as NAME:GPUS"),
        ({"gpus": [8]}, "axes.gpus: not a cluster input"),
        ({"jobs": "nope.toml"}, "axes.jobs"),
    ],
)
def test_bad_cluster_grids_are_user_errors(axes, field):
    with pytest.raises(UserError) as err:
        cluster_grid(**axes)
    assert field in str(err.value)
    with pytest.raises(UserError, match="needs engine = 'cluster'"):
        grid({"policy": ["fifo"]})


def test_cli_runs_resumes_and_plots(tmp_path):
    g = tmp_path / "g.toml"
    g.write_text(
        '[sweep]\nengine = "analytic"\n[base.parallelism]\ntp = 8\npp = 4\n'
        "[axes]\ngpus = [512, 1024]\nscale_out_gbps = [100, 400]\n"
    )
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["sweep", str(g), "--out", str(out), "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert "4 points, 0 already done, 4 ok" in r.output
    r = CliRunner().invoke(app, ["sweep", str(g), "--out", str(out), "--format", "csv", "--json"])
    assert r.exit_code == 0 and '"skipped": 4' in r.output
    r = CliRunner().invoke(app, ["sweep", "--plot", str(out), "--metric", "comm_fraction"])
    assert r.exit_code == 0, r.output
    png = out / "comm_fraction.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_shared_seeds_give_one_engine_seed_per_replicate():
    axes = {"gpus": [16, 32], "scale_out_gbps": [100, 400], "seed": [0, 1]}
    own = grid(axes).points()
    data = {"sweep": {"engine": "des", "shared_seeds": True}, "base": BASE, "axes": axes}
    shared = parse_grid(data)
    seeds = {}
    for p in shared.points():
        seeds.setdefault(p.values["seed"], set()).add(make_task(shared.base, p)["des"]["seed"])
    assert [len(s) for s in seeds.values()] == [1, 1] and seeds[0] != seeds[1]
    assert len({make_task(BASE, p)["des"]["seed"] for p in own}) == 8
    assert not {p.key for p in own} & {p.key for p in shared.points()}


def test_dotted_option_axes_and_base_values_are_checked():
    g = parse_grid(
        {"base": {"parallelism": {"tp": 8, "pp": 4}}, "axes": {"options": {"dropout": [True]}}}
    )
    assert g.axes["options.dropout"] == [True]  # TOML's `options.dropout = [...]`
    with pytest.raises(UserError, match=r"base\.training\.precision: 'fp7' must be one of"):
        parse_grid({"base": {"training": {"precision": "fp7"}}, "axes": {"gpus": [8]}})
    with pytest.raises(UserError, match=r"sweep: 3 must be a table"):
        parse_grid({"sweep": 3, "axes": {"gpus": [8]}})


def test_unreadable_table_or_manifest_is_a_user_error(tmp_path):
    g = grid({"gpus": [16]}, engine="analytic")
    s = run_sweep(g, tmp_path / "s", progress=False)
    s.table.write_text("not parquet")
    with pytest.raises(UserError, match="cannot be read"):
        run_sweep(g, tmp_path / "s", progress=False)
    (tmp_path / "s" / "sweep.json").write_text("{")
    with pytest.raises(UserError, match="is not a sweep manifest"):
        run_sweep(g, tmp_path / "s", progress=False)


class _StubClient:
    def __init__(self, answer):
        self.answer = answer

    def run(self, fn):
        if isinstance(self.answer, Exception):
            raise self.answer
        return {"tcp://w1:1": self.answer}


def test_workers_must_run_the_same_llmcap_code():
    from analysis.sweep.executors import _check_workers, code_fingerprint

    _check_workers(_StubClient(code_fingerprint()), "tcp://h:8786")  # same code: fine
    with pytest.raises(UserError, match="worker tcp://w1:1 runs other llmcap code"):
        _check_workers(_StubClient("0" * 16), "tcp://h:8786")
    missing = ModuleNotFoundError("No module named 'analysis'")
    with pytest.raises(UserError, match="a worker cannot run llmcap"):
        _check_workers(_StubClient(missing), "tcp://h:8786")
