"""A job over two pools (H100 + A100): both engines, between the homogeneous step times."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from analysis.hetero import (
    PoolPart,
    cross_pool_profile,
    hetero_step,
    per_gpu_scale_out,
    split_microbatches,
)
from analysis.predict import analytic_arrays
from hwprofiles.catalogue import load_profile
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload

H100, A100 = load_profile("h100-sxm"), load_profile("a100-80gb")


def test_split_gives_the_faster_pool_more_microbatches() -> None:
    m = split_microbatches([1.0, 3.0], [4, 4], 64)
    assert 4 * m[0] + 4 * m[1] == 64 and m == [12, 4]
    assert split_microbatches([1.0, 1.0], [2, 6], 16) == [2, 2]
    with pytest.raises(ValueError, match="global_batch_size"):
        split_microbatches([1.0, 1.0], [4, 4], 4)


def test_cross_pool_ring_runs_at_the_slower_nic() -> None:
    slow = per_gpu_scale_out(A100)
    assert per_gpu_scale_out(cross_pool_profile(H100, slow)) == pytest.approx(slow)
    assert cross_pool_profile(A100, slow) is A100


def _between(model: str, parts: list[PoolPart], p: ParallelConfig, seq: int) -> None:
    m = load_model(model)
    total = sum(x.gpus for x in parts)
    w = Workload(m, p.resolve(total), seq)
    homo = {
        hw.name: (
            analytic_arrays(w, hw, Options())["step_time_s"],
            simulate_step(w, hw, Options(), contention=False).arrays["step_time_s"],
        )
        for hw in (H100, A100)
    }
    cf = hetero_step(m, parts, p, seq, "analytic")
    des = hetero_step(m, parts, p, seq, "des", contention=False)
    assert des["step_time_s"] == pytest.approx(cf["step_time_s"], rel=0.03)
    for r, i in ((cf, 0), (des, 1)):
        assert homo["h100-sxm"][i] < r["step_time_s"] < homo["a100-80gb"][i]
        h, a = r["pools"]
        assert h["microbatches_per_replica"] > a["microbatches_per_replica"]
        total_mb = sum(x["replicas"] * x["microbatches_per_replica"] for x in r["pools"])
        assert total_mb * p.micro_batch_size == p.global_batch_size


def test_small_dp_job_over_two_pools_in_both_engines() -> None:
    p = ParallelConfig(micro_batch_size=1, global_batch_size=256, zero_stage=1)
    _between("gpt3-1.3b", [PoolPart(H100, 16), PoolPart(A100, 16)], p, 2048)


@pytest.mark.slow
def test_llama3_70b_on_256_h100_and_256_a100() -> None:
    """Issue 18's case: between the homogeneous 512-GPU steps, engines within 3 %."""
    p = ParallelConfig(
        tp=8,
        pp=4,
        micro_batch_size=1,
        global_batch_size=1024,
        zero_stage=1,
        recompute="selective",
    )
    _between("llama-3-70b", [PoolPart(H100, 256), PoolPart(A100, 256)], p, 4096)


def test_cli_simulate_over_pools() -> None:
    args = ["simulate", "--model", "gpt3-1.3b", "--hardware", "h100-sxm:16,a100-80gb:16"]
    r = CliRunner().invoke(app, [*args, "--global-batch", "256", "--seq-len", "2048", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert [p["hardware"] for p in out["pools"]] == ["h100-sxm", "a100-80gb"]
    assert out["gated_by"] in ("h100-sxm", "a100-80gb")
    bad = CliRunner().invoke(app, ["simulate", "--hardware", "h100-sxm:16,a100-80gb:x"])
    assert bad.exit_code == 2 and "GPU count 'x' must be an integer" in bad.output


def test_run_file_pools(tmp_path) -> None:
    f = tmp_path / "run.toml"
    f.write_text(
        '[model]\nname = "gpt3-1.3b"\n[training]\nglobal_batch = 256\nseq_len = 2048\n'
        'micro_batch = 1\n[[cluster.pool]]\nhardware = "h100-sxm"\ngpus = 16\n'
        '[[cluster.pool]]\nhardware = "a100-80gb"\ngpus = 16\n'
    )
    r = CliRunner().invoke(app, ["simulate", "--config", str(f), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert [(p["hardware"], p["gpus"]) for p in out["pools"]] == [
        ("h100-sxm", 16),
        ("a100-80gb", 16),
    ]
    assert out["pools"][0]["microbatches_per_replica"] > out["pools"][1]["microbatches_per_replica"]
    bad = CliRunner().invoke(app, ["scale", "--config", str(f), "--gpus", "8,16"])
    assert bad.exit_code == 2 and "cluster.pool: pools are read by `llmcap simulate`" in bad.output
    f.write_text(f.read_text().replace("gpus = 16\n", "gpus = 0\n", 1))
    bad = CliRunner().invoke(app, ["simulate", "--config", str(f)])
    assert bad.exit_code == 2 and "cluster.pool[0].gpus: 0 must be an integer >= 1" in bad.output


def test_a_narrow_uplink_caps_the_cross_pool_ring() -> None:
    from simulator.costmodel.crosspool import PoolLink

    m = load_model("gpt3-1.3b")
    parts = [PoolPart(H100, 16), PoolPart(A100, 16)]
    p = ParallelConfig(micro_batch_size=1, global_batch_size=256, zero_stage=1)
    wide = hetero_step(m, parts, p, 2048, uplink=PoolLink(1e15, "test"))
    assert wide["cross_pool_scale_out_per_gpu_bytes_per_s"] == per_gpu_scale_out(A100)
    narrow = hetero_step(m, parts, p, 2048, uplink=PoolLink(1e9, "test"))  # 1 GB/s, 1 ring
    assert narrow["cross_pool_scale_out_per_gpu_bytes_per_s"] == pytest.approx(1e9)
    assert narrow["step_time_s"] > wide["step_time_s"]
    assert narrow["uplink_source"] == "test"
