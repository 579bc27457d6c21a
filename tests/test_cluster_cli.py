"""`llmcap cluster` and `simulate_cluster`: inputs, determinism, the report, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.cli.common import dumps
from analysis.cli.main import app
from analysis.cluster import ClusterConfig, parse_mix, parse_pools, read_mix, simulate_cluster

MIX = """
description = "test mix"
[[job_class]]
name = "train"
model = "llama-2-7b"
gpus = [16, 32]
arrivals_per_day = 6
tokens = 2e9
tokens_distribution = "lognormal"
tokens_sigma = 0.5
seq_len = 2048
preemptible = true

[[job_class]]
name = "eval"
model = "gpt3-1.3b"
gpus = 8
arrivals_per_day = 24
tokens = 1e8
tokens_distribution = "exponential"
seq_len = 2048
global_batch = 64
priority = 2
"""

POOLS = "h100-sxm:32,a100-80gb:16"


@pytest.fixture
def mix_file(tmp_path: Path) -> Path:
    p = tmp_path / "mix.toml"
    p.write_text(MIX)
    return p


def test_result_is_seeded_and_byte_identical(mix_file: Path) -> None:
    cfg = ClusterConfig(parse_pools(POOLS), read_mix(mix_file), ("fifo", "backfill"), 3.0)
    a, b = simulate_cluster(cfg, 7), simulate_cluster(cfg, 7)
    assert dumps(a) == dumps(b)
    c = simulate_cluster(cfg, 8)
    assert dumps(c) != dumps(a)
    t = a["policies"]["fifo"]["totals"]
    assert t["jobs_submitted"] == a["inputs"]["jobs"] > 50
    assert 0 < t["goodput"] <= t["utilisation"] <= 1
    # the same jobs under both policies (common random numbers)
    assert t["jobs_submitted"] == a["policies"]["backfill"]["totals"]["jobs_submitted"]
    # cost: every GPU of every pool paid for the period at its list price
    pools = a["inputs"]["pools"]
    cost = sum(p["gpus"] * p["usd_per_gpu_hour"] * 72 for p in pools)
    assert t["cost_usd"] == pytest.approx(cost)
    # the faster pool runs a job faster
    sm = a["inputs"]["step_model"]
    assert sm["train/16/h100-sxm"]["step_time_s"] < sm["train/16/a100-80gb"]["step_time_s"]


def test_cli_writes_report_and_figures(mix_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["cluster", "--jobs", str(mix_file), "--hardware", POOLS, "--policy", "fifo,priority"]
    r = CliRunner().invoke(app, [*args, "--days", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "priority" in r.output and "utilisation" in r.output
    for name in ("cluster.json", "report.md", "report.html", "jobs-fifo.jsonl"):
        assert (out / name).is_file()
    for fig in ("utilisation", "queue", "gantt-fifo", "gantt-priority"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    md = (out / "report.md").read_text()
    assert "Queueing delay and slowdown per job class" in md
    assert "figures/gantt-priority.png" in md
    j = CliRunner().invoke(app, [*args, "--days", "2", "--json"])
    assert j.exit_code == 0
    assert json.loads(j.output) == json.loads((out / "cluster.json").read_text())
    assert "jobs" not in json.loads(j.output)["policies"]["fifo"]


@pytest.mark.parametrize(
    ("hardware", "policy", "message"),
    [
        ("h100-sxm", "fifo", "hardware: 'h100-sxm' must be NAME:GPUS"),
        ("h100-sxm:0", "fifo", "GPU count 0 must be >= 1"),
        ("h100-sxm:x8", "fifo", "GPU count 'x8' must be an integer"),
        ("h100-sxm:12", "fifo", "12 GPUs is not a whole number of"),
        ("h100-sxm:8,h100-sxm:8", "fifo", "names a pool twice"),
        ("tpu-v9:64", "fifo", "hardware: 'tpu-v9' is not a preset"),
        (POOLS, "sjf", "policy: 'sjf' is not a policy (known: fifo, backfill, priority, gang)"),
        ("h100-sxm:8", "fifo", "job_class.train.gpus: 16 > 8, the largest pool"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    mix_file: Path, hardware: str, policy: str, message: str
) -> None:
    r = CliRunner().invoke(
        app, ["cluster", "--jobs", str(mix_file), "--hardware", hardware, "--policy", policy]
    )
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.output


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("tokens = 2e9", "tokenz = 2e9"), "job_class.train.tokenz: unknown key"),
        (("arrivals_per_day = 6", "arrivals_per_day = -6"), "arrivals_per_day: -6 must be > 0"),
        (
            ("gpus = [16, 32]", "gpus = [16, -32]"),
            "job_class.train.gpus: -32 must be an integer >= 1",
        ),
        (('tokens_distribution = "lognormal"', 'tokens_distribution = "pareto"'), "must be one of"),
        (('description = "test mix"', 'descripton = "x"'), "jobs.descripton: unknown key"),
    ],
)
def test_bad_job_mix_names_field_and_rule(edit: tuple[str, str], message: str) -> None:
    import tomllib

    with pytest.raises(ValueError, match=None) as exc:
        parse_mix(tomllib.loads(MIX.replace(*edit)))
    assert message in str(exc.value)


def test_purchase_sweep_ranks_additions_by_cost_per_hour_saved(mix_file: Path) -> None:
    from analysis.cluster.purchase import sweep_additions, with_addition

    pools = parse_pools("h100-sxm:32")
    assert with_addition(pools, parse_pools("h100-sxm:8")[0])[0].gpus == 40
    cfg = ClusterConfig(pools, read_mix(mix_file), ("fifo",), 3.0)
    r = sweep_additions(cfg, "h100-sxm:16,a100-80gb:16,h100-sxm:32", (0,), target_delay_h=0.2)
    base = r["baseline"]["mean_queueing_delay_h"]
    assert base > 0.2  # jobs wait (0.34 h)
    by = {c["add"]: c for c in r["candidates"]}
    assert by["h100-sxm:32"]["mean_queueing_delay_h"] <= by["h100-sxm:16"]["mean_queueing_delay_h"]
    for c in r["candidates"]:
        assert c["mean_queueing_delay_h"] < base and c["delay_saved_job_h"] > 0
        assert c["added_cost_usd"] == pytest.approx(c["gpus"] * c["usd_per_gpu_hour"] * 72)
        assert c["usd_per_job_hour_saved"] == pytest.approx(
            c["added_cost_usd"] / c["delay_saved_job_h"]
        )
        assert c["meets_target"] == (c["mean_queueing_delay_h"] <= 0.2)
    usd = [c["usd_per_job_hour_saved"] for c in r["candidates"]]
    assert usd == sorted(usd) and [c["rank"] for c in r["candidates"]] == [1, 2, 3]
    meets = [c["add"] for c in r["candidates"] if c["meets_target"]]
    assert r["cheapest_meeting_target"] == (meets[0] if meets else None)


def test_cli_add_rejects_bad_candidates(mix_file: Path) -> None:
    r = CliRunner().invoke(
        app,
        ["cluster", "--jobs", str(mix_file), "--hardware", POOLS, "--add", "b200:0"],
    )
    assert r.exit_code == 2 and "add: 'b200:0': GPU count 0 must be >= 1" in r.output
    r = CliRunner().invoke(
        app,
        ["cluster", "--jobs", str(mix_file), "--hardware", POOLS, "--target-delay", "2"],
    )
    assert r.exit_code == 2 and "target-delay: 2.0 needs --add" in r.output
    for bad in ("inf", "nan", "0"):  # inf reached the JSON writer (found by the fuzz)
        args = ["cluster", "--jobs", str(mix_file), "--hardware", POOLS, "--add", "b200:8"]
        r = CliRunner().invoke(app, [*args, "--target-delay", bad, "--json"])
        assert r.exit_code == 2 and r.output.startswith("llmcap: error: target-delay:"), r.output
