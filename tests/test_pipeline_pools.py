"""Pipeline stages on different pools (H100 + A100): both engines, cross-pool link, split."""

from __future__ import annotations

import pytest

from analysis.pipeline_pools import balance_split, stages_step, steady_period
from analysis.predict import analytic_arrays
from hwprofiles.catalogue import load_profile
from hwprofiles.errors import UserError
from simulator.costmodel.crosspool import (
    PoolLink,
    cross_rate,
    default_uplink,
    nic_share_per_gpu,
    uplink_limited,
)
from simulator.des.pools import simulate_stages
from simulator.des.run import simulate_step
from simulator.models_catalogue import load_model
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload

H100, A100 = load_profile("h100-sxm"), load_profile("a100-80gb")
UP = default_uplink([(H100, 256), (A100, 256)])


@pytest.fixture(scope="module")
def w() -> Workload:
    p = ParallelConfig(
        tp=8, pp=4, micro_batch_size=1, global_batch_size=256, zero_stage=1, recompute="selective"
    )
    return Workload(load_model("llama-3-70b"), p.resolve(512), 4096)


def test_one_pool_reproduces_both_engines(w: Workload) -> None:
    cf = stages_step(w, [H100] * 4, w.split, UP)["step_time_s"]
    assert cf == pytest.approx(analytic_arrays(w, H100, Options())["step_time_s"], rel=1e-9)
    des = simulate_stages(w, [H100] * 4, w.split, UP, Options(), contention=False)
    assert des.step_time_s == pytest.approx(
        simulate_step(w, H100, Options(), contention=False).step_time_s, rel=1e-12
    )


@pytest.mark.parametrize("order", [(H100, H100, A100, A100), (A100, A100, H100, H100)])
def test_stages_over_pools_agree_and_lie_between(w: Workload, order) -> None:
    split = balance_split(w, order)
    fast = [i for i, hw in enumerate(order) if hw is H100]
    slow = [i for i, hw in enumerate(order) if hw is A100]
    assert min(split[i] for i in fast) > 2 * max(split[i] for i in slow)  # layers ~ speed
    cf = stages_step(w, order, split, UP)
    des = simulate_stages(w, order, split, UP, Options(), contention=False)
    assert des.step_time_s == pytest.approx(cf["step_time_s"], rel=0.03)
    lo_cf = analytic_arrays(w, H100, Options())["step_time_s"]
    hi_cf = analytic_arrays(w, A100, Options())["step_time_s"]
    assert lo_cf < cf["step_time_s"] < hi_cf
    lo = simulate_step(w, H100, Options(), contention=False).step_time_s
    hi = simulate_step(w, A100, Options(), contention=False).step_time_s
    assert lo < des.step_time_s < hi
    assert all(s["fits_in_memory"] for s in cf["stages"])
    assert cf["cross_pool"]["boundaries"] == [1]
    assert [s["hardware"] for s in des.extra["stages"]] == [hw.name for hw in order]


def test_cross_pool_send_takes_the_slower_nic_and_the_uplink() -> None:
    wide = PoolLink(1e18, "test")
    rate, lat = cross_rate(H100, A100, 128, wide)
    assert rate == pytest.approx(nic_share_per_gpu(A100)) and rate < nic_share_per_gpu(H100)
    assert lat == max(H100.node.scale_out.latency_s, A100.node.scale_out.latency_s)
    narrow = PoolLink(1e11, "test")  # 100 GB/s shared by 128 senders
    assert cross_rate(H100, A100, 128, narrow)[0] == pytest.approx(1e11 / 128)
    assert uplink_limited(H100, A100, 128, narrow) and not uplink_limited(H100, A100, 128, wide)
    with pytest.raises(UserError, match="pool_uplink"):
        PoolLink(0.0, "bad")


def test_a_narrower_uplink_slows_the_step_in_both_engines(w: Workload) -> None:
    order = (H100, H100, A100, A100)
    split = balance_split(w, order)
    narrow = PoolLink(UP.bandwidth_bytes_per_s / 20, "test")
    a, b = stages_step(w, order, split, UP), stages_step(w, order, split, narrow)
    assert b["step_time_s"] > a["step_time_s"]
    assert b["cross_pool"]["busy_share"] > a["cross_pool"]["busy_share"]
    da = simulate_stages(w, order, split, UP, Options(), contention=False).step_time_s
    db = simulate_stages(w, order, split, narrow, Options(), contention=False).step_time_s
    assert db > da
    # the slow send sets 1F1B's steady period in both (`steady_period`)
    assert db == pytest.approx(b["step_time_s"], rel=0.03)
    assert steady_period([1.0, 1.0], [0.5]) == 1.5 and steady_period([2.0, 1.0], [0.1]) == 2.0


def test_bad_stage_plans_are_refused(w: Workload) -> None:
    with pytest.raises(UserError, match="split"):
        stages_step(w, [H100] * 4, (20, 20, 20, 19), UP)
    with pytest.raises(UserError, match="stages"):
        stages_step(w, [H100] * 3, (30, 30, 20), UP)


def test_planner_searches_depths_orders_and_splits() -> None:
    from analysis.hetero import PoolPart
    from analysis.pool_plans import choose, pp_candidates

    parts = [PoolPart(H100, 512), PoolPart(A100, 256)]
    p = ParallelConfig(tp=8, pp=3, micro_batch_size=1, global_batch_size=768)
    assert pp_candidates(parts, p, 80, fixed=True) == [3]
    free = pp_candidates(parts, p, 80, fixed=False)
    assert free[:3] == [3, 6, 12] and all(pp % 3 == 0 for pp in free)
    parts = [PoolPart(H100, 256), PoolPart(A100, 256)]
    p = ParallelConfig(
        tp=8, pp=4, micro_batch_size=1, global_batch_size=1024, zero_stage=1, recompute="selective"
    )
    r = choose(load_model("llama-3-70b"), parts, p, 4096, UP, Options(), fixed_pp=True)
    kinds = [a["plan"] for a in r["alternatives"]]
    assert sorted(kinds) == ["data", "pipeline", "pipeline"]  # two orders, one data plan
    best = r["pipeline"]
    assert r["plan"] == "pipeline" and best["step_time_s"] < r["data"]["step_time_s"]
    layers = {s["hardware"]: 0 for s in best["stages"]}
    for s in best["stages"]:
        layers[s["hardware"]] += s["layers"]
    assert layers["h100-sxm"] > 2 * layers["a100-80gb"]
    forced = choose(load_model("llama-3-70b"), parts, p, 4096, UP, Options(), "data", True)
    assert forced["plan"] == "data"


@pytest.mark.slow
def test_llama3_70b_stages_over_256_h100_and_256_a100() -> None:
    """Issue 18's case as a pipeline over pools: engines within 3 %, between the homogeneous
    512-GPU steps."""
    p = ParallelConfig(
        tp=8, pp=4, micro_batch_size=1, global_batch_size=1024, zero_stage=1, recompute="selective"
    )
    w = Workload(load_model("llama-3-70b"), p.resolve(512), 4096)
    order = (A100, A100, H100, H100)
    split = balance_split(w, order)
    cf = stages_step(w, order, split, UP)["step_time_s"]
    des = simulate_stages(w, order, split, UP, Options(), contention=False).step_time_s
    assert des == pytest.approx(cf, rel=0.03)
    for i, engine in enumerate((cf, des)):
        lo = (analytic_arrays(w, H100, Options())["step_time_s"],
              simulate_step(w, H100, Options(), contention=False).step_time_s)[i]  # fmt: skip
        hi = (analytic_arrays(w, A100, Options())["step_time_s"],
              simulate_step(w, A100, Options(), contention=False).step_time_s)[i]  # fmt: skip
        assert lo < engine < hi


CLI = ["simulate", "--model", "gpt3-1.3b", "--tp", "1", "--pp", "4", "--global-batch", "256"]
CLI += ["--seq-len", "2048", "--micro-batch", "1", "--hardware", "h100-sxm:16,a100-80gb:16"]


def _cli(*extra: str):
    from typer.testing import CliRunner

    from analysis.cli.main import app

    return CliRunner().invoke(app, [*CLI, *extra])


def test_cli_reports_stages_pools_and_the_cross_pool_link() -> None:
    import json

    r = _cli("--pool-plan", "pipeline", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["plan"] == "pipeline" and out["layout"]["pp"] == 4
    assert sorted(s["hardware"] for s in out["stages"]) == ["a100-80gb"] * 2 + ["h100-sxm"] * 2
    assert sum(s["layers"] for s in out["stages"]) == 24
    h, a = out["pools"]
    assert h["layers"] > a["layers"] and len(h["stages"]) == len(a["stages"]) == 2
    c = out["cross_pool"]
    assert 0 < c["busy_share"] < 1 and c["boundaries"] == ["stage 1 -> 2"]
    assert "Gangidi" in c["uplink_source"]
    narrow = json.loads(_cli("--pool-plan", "pipeline", "--pool-uplink", "0.1", "--json").output)
    assert narrow["step_time_s"] > out["step_time_s"]
    assert (
        narrow["cross_pool"]["uplink_limited"]
        and narrow["cross_pool"]["busy_share"] > c["busy_share"]
    )
    text = _cli("--pool-plan", "pipeline").output
    assert "stage  0" in text and "cross-pool link (stage 1 -> 2)" in text
    des = json.loads(_cli("--pool-plan", "pipeline", "--engine", "des", "--json").output)
    assert des["step_time_s"] == pytest.approx(out["step_time_s"], rel=0.05)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pool-plan", "bogus"], "--pool-plan: 'bogus' must be one of auto, pipeline, data"),
        (["--pool-uplink", "-1"], "--pool-uplink: -1.0 must be a bandwidth > 0"),
        (["--engine", "des", "--jitter", "0.1"], "jitter: 0.1 is not modelled for a job over"),
    ],
)
def test_cli_bad_pool_options(extra: list[str], message: str) -> None:
    r = _cli(*extra)
    assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1


def test_pool_options_need_pools_and_run_files_carry_them(tmp_path) -> None:
    from typer.testing import CliRunner

    from analysis.cli.main import app

    r = CliRunner().invoke(app, ["simulate", "--pool-plan", "data"])
    assert r.exit_code == 2 and "pool_plan: 'data' needs pools" in r.output
    f = tmp_path / "run.toml"
    f.write_text(
        '[model]\nname = "gpt3-1.3b"\n[parallelism]\ntp = 1\npp = 4\n[training]\n'
        "global_batch = 256\nseq_len = 2048\nmicro_batch = 1\n[cluster]\n"
        'pool_uplink_gb_per_s = 50.0\npool_plan = "pipeline"\n[[cluster.pool]]\n'
        'hardware = "h100-sxm"\ngpus = 16\n[[cluster.pool]]\nhardware = "a100-80gb"\ngpus = 16\n'
    )
    r = CliRunner().invoke(app, ["simulate", "--config", str(f)])
    assert r.exit_code == 0, r.output
    assert "pipeline stages over pools" in r.output and "cluster.pool_uplink_gb_per_s" in r.output
    bad = CliRunner().invoke(app, ["scale", "--config", str(f), "--gpus", "8,16"])
    assert bad.exit_code == 2 and "cluster.pool" in bad.output
    f.write_text(f.read_text().replace('"pipeline"', '"sideways"'))
    bad = CliRunner().invoke(app, ["simulate", "--config", str(f)])
    assert bad.exit_code == 2 and "cluster.pool_plan: 'sideways' must be one of" in bad.output


def test_unsupported_jobs_fall_back_to_replicas_or_are_refused() -> None:
    from analysis.hetero import PoolPart
    from analysis.pool_plans import choose

    parts = [PoolPart(H100, 16), PoolPart(A100, 16)]
    m = load_model("gpt3-1.3b")
    z3 = ParallelConfig(pp=4, micro_batch_size=1, global_batch_size=256, zero_stage=3)
    assert choose(m, parts, z3, 2048, UP, Options(), "auto", True)["plan"] == "data"
    with pytest.raises(UserError, match="zero: 3 must be 0, 1 or 2"):
        choose(m, parts, z3, 2048, UP, Options(), "pipeline", True)
    inter = ParallelConfig(pp=4, vpp=2, micro_batch_size=1, global_batch_size=256)
    assert choose(m, parts, inter, 2048, UP, Options(), "auto", True)["plan"] == "data"
    with pytest.raises(UserError, match="vpp: 2 must be 1 with stages over pools"):
        choose(m, parts, inter, 2048, UP, Options(), "pipeline", True)


def test_contention_puts_the_crossing_sends_on_the_uplink(w: Workload) -> None:
    order = (H100, H100, A100, A100)
    split = balance_split(w, order)
    narrow = PoolLink(5e9, "test")  # 5 GB/s for 128 crossing ranks: the uplink is the bottleneck
    off = simulate_stages(w, order, split, narrow, Options(), contention=False)
    on = simulate_stages(w, order, split, narrow, Options(), contention=True)
    assert on.step_time_s >= off.step_time_s * (1 - 1e-9)  # sharing never speeds it up
    names = [x["link"] for x in on.extra["links"]]
    assert any(str(n).startswith("uplink a100-80gb-h100-sxm") for n in names)


def test_cli_pipeline_plan_searches_layouts_without_interleaving() -> None:
    """`--pool-plan pipeline` with no layout given searches vpp 1 layouts (the only ones stages
    over pools can run) instead of refusing the interleaved layout a one-pool search picks;
    a pinned vpp > 1 is still refused in one line."""
    import json

    from typer.testing import CliRunner

    from analysis.cli.main import app

    # a one-pool search of this job picks vpp 8 (checked on 2026-12-03)
    args = ["simulate", "--model", "llama3-70b", "--hardware", "h100-sxm:256,a100-80gb:256",
            "--pool-plan", "pipeline"]  # fmt: skip
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["plan"] == "pipeline" and out["layout"]["vpp"] == 1 and out["layout"]["pp"] > 1
    bad = CliRunner().invoke(app, [*args, "--pp", "4", "--vpp", "2"])
    assert bad.exit_code == 2 and "vpp: 2 must be 1" in bad.output


def test_cli_auto_plan_also_tries_stages_over_pools_of_a_vpp_1_search() -> None:
    """When the one-pool search picks an interleaved layout, `auto` still prices the pipeline
    plans of a vpp 1 search and lists them among the plans tried (closed form)."""
    import json

    from typer.testing import CliRunner

    from analysis.cli.main import app

    args = ["simulate", "--model", "llama3-70b", "--hardware", "h100-sxm:256,a100-80gb:256"]
    out = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    pipes = [a for a in out["alternatives"] if a["plan"] == "pipeline"]
    assert pipes and all(a["tp"] >= 1 for a in pipes)
    best = min(a["step_time_s"] for a in out["alternatives"])
    assert out["step_time_s"] == pytest.approx(best)  # the faster plan is the one shown
    forced = json.loads(
        CliRunner().invoke(app, [*args, "--pool-plan", "pipeline", "--json"]).output
    )
    assert forced["step_time_s"] == pytest.approx(min(a["step_time_s"] for a in pipes))
