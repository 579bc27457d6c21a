"""A real (tiny) CPU calibration end to end: benchmarks, fits, files, loader, CLI, simulator.

The calibration runs once per module (a few seconds) with a fake energy meter, so the
measured-power path is exercised on machines without RAPL. Assertions compare the profile
with its own CSVs (which dtype is faster is measured, not assumed).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from hwprofiles.calibration.collectives import bus_factor
from hwprofiles.calibration.loader import load_calibrated_profile, read_summary
from hwprofiles.calibration.machine import usable_cores
from hwprofiles.calibration.plan import AttentionShape
from hwprofiles.calibration.refit import refit
from hwprofiles.calibration.report import markdown_report
from hwprofiles.calibration.run import CalibrationConfig, calibrate
from hwprofiles.calibration.timing import NOISY_SPREAD
from hwprofiles.calibration.writer import COLUMNS
from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile

CSVS = {
    "gemm": "compute/gemm.csv",
    "attention": "compute/attention.csv",
    "attention_passes": "compute/attention_passes.csv",
    "elementwise": "compute/elementwise.csv",
    "memory": "compute/memory.csv",
    "collectives": "network/collectives.csv",
    "power": "power.csv",
    "framework": "compute/framework.csv",
    "contention": "compute/contention.csv",
}
FAKE_WATTS = 40.0
WORKLOAD_SHAPE = AttentionShape(2, 2, 32, 16)


class FakeMeter:
    """Draws a constant FAKE_WATTS: joules grow with wall time."""

    name = "fake"

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def read_j(self) -> float:
        return (time.perf_counter() - self._t0) * FAKE_WATTS


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cal") / "tiny-cpu"
    cfg = CalibrationConfig(
        level="tiny",
        world_sizes=(1, 2),
        timeout_s=120,
        meter=FakeMeter(),
        attention_shapes=(WORKLOAD_SHAPE,),
    )
    calibrate(cfg, out)
    return out


@pytest.fixture(scope="module")
def summary(profile_dir: Path) -> dict[str, Any]:
    return read_summary(profile_dir)


def table(profile_dir: Path, key: str) -> pd.DataFrame:
    return pd.read_csv(profile_dir / CSVS[key])


def test_every_table_is_written_with_its_columns(profile_dir: Path) -> None:
    for key, rel in CSVS.items():
        frame = pd.read_csv(profile_dir / rel)
        assert tuple(frame.columns) == COLUMNS[key], key
        assert len(frame) > 0, key


def test_rows_keep_the_spread_and_flag_noise(profile_dir: Path) -> None:
    for key in ("gemm", "attention", "elementwise", "memory", "collectives"):
        f = table(profile_dir, key)
        assert (f["count"] >= 3).all()
        assert ((f["min_s"] <= f["median_s"]) & (f["median_s"] <= f["max_s"])).all()
        spread = (f["max_s"] - f["min_s"]) / f["median_s"]
        # the flag follows the rule (allowing for the CSV's 6-digit rounding at the edge)
        clear = (spread - NOISY_SPREAD).abs() > 1e-4
        assert (f["noisy"][clear] == (spread[clear] > NOISY_SPREAD)).all(), key


def test_peaks_are_the_best_measured_gemm_per_dtype(
    profile_dir: Path, summary: dict[str, Any]
) -> None:
    gemm = table(profile_dir, "gemm")
    best = gemm.groupby("dtype")["flops_per_s"].max()
    peaks = summary["compute"]["peak_flops"]
    assert set(peaks) == {"fp32", "bf16"}
    for dtype, peak in peaks.items():
        assert peak == pytest.approx(best[dtype], rel=1e-4)
    # whichever dtype is faster here, the profile says the same as its CSV
    assert (peaks["bf16"] > peaks["fp32"]) == (best["bf16"] > best["fp32"])


def test_efficiency_curves_are_monotone_fractions(summary: dict[str, Any]) -> None:
    curves = dict(summary["compute"]["matmul_efficiency"])
    curves["attention"] = summary["compute"]["attention"]["efficiency"]
    for name, c in curves.items():
        sizes, fr = c["sizes"], c["fractions"]
        assert all(b > a for a, b in itertools.pairwise(sizes)), name
        assert all(b >= a for a, b in itertools.pairwise(fr)), name
        assert all(0 < f <= 1 for f in fr), name


def test_flops_and_bandwidth_columns_are_consistent(profile_dir: Path) -> None:
    g = table(profile_dir, "gemm")
    assert (g["flops"] == 2 * g["m"] * g["n"] * g["k"]).all()
    assert (g["flops_per_s"] / (g["flops"] / g["median_s"])).between(0.9999, 1.0001).all()
    c = table(profile_dir, "collectives")
    assert set(c["world_size"]) == {1, 2}
    factor = [bus_factor(k, n) for k, n in zip(c["collective"], c["world_size"], strict=True)]
    assert (c["busbw_bytes_per_s"] - c["algbw_bytes_per_s"] * factor).abs().max() < 1e-3 * c[
        "algbw_bytes_per_s"
    ].max()


def test_elementwise_summary_covers_every_dtype(profile_dir: Path, summary: dict[str, Any]) -> None:
    ew = table(profile_dir, "elementwise")
    got = summary["compute"]["elementwise_bytes_per_s"]
    assert set(got) == set(ew["dtype"])
    for dtype, ops in got.items():
        rows = ew[ew["dtype"] == dtype]
        assert set(ops) == set(rows["op"])
        for op, bps in ops.items():
            largest = rows[rows["op"] == op].sort_values("bytes").iloc[-1]
            assert bps == pytest.approx(largest["bytes_per_s"], rel=1e-4)


def test_power_is_measured_with_the_meter(profile_dir: Path, summary: dict[str, Any]) -> None:
    power = table(profile_dir, "power")
    assert set(power["phase"]) == {"idle", "gemm-fp32", "gemm-bf16"}
    assert power["watts"].to_numpy() == pytest.approx(FAKE_WATTS, rel=0.05)
    p = summary["power"]
    assert p["measured"] is True and p["kind"] == "measured" and "fake" in p["source"]
    assert p["tdp_w"] >= p["idle_w"] > 0


def test_machine_is_recorded(summary: dict[str, Any]) -> None:
    m = summary["machine"]
    for key in ("hostname", "cpu_model", "cpu_cores", "torch", "date", "threads_per_rank"):
        assert m[key], key
    assert summary["device"]["threads_per_rank"] == 1


def test_loader_builds_a_hardware_profile(profile_dir: Path, summary: dict[str, Any]) -> None:
    hw = load_calibrated_profile(profile_dir)
    assert isinstance(hw, HardwareProfile)
    assert hw.provenance.kind == "calibrated"
    assert hw.provenance.machine["cpu_model"] == summary["machine"]["cpu_model"]
    assert {"peak_flops", "collectives", "power"} <= set(hw.provenance.measured)
    acc = hw.accelerator
    assert acc.peak("bf16") == summary["compute"]["peak_flops"]["bf16"]
    assert "measured" in acc.sources["peak_flops"]
    # the drift guard's fastest samples: every 2-rank collective row and every copy size
    fastest = hw.host.fastest_s
    assert any(k.startswith("collective:all_reduce:2:") for k in fastest)
    assert any(k.startswith("copy:") for k in fastest) and all(v > 0 for v in fastest.values())
    # memory-bound kernels run at the measured elementwise rate, a fraction of STREAM bandwidth
    assert 0.0 < acc.memory_efficiency <= 1.0
    assert "elementwise" in acc.sources["memory_efficiency"]
    # framework buffer copies: into existing and into freshly allocated buffers, measured
    mem = summary["memory"]
    assert acc.copy_bytes_per_s == mem["buffer_copy_bytes_per_s"] > 0
    host = hw.host
    assert host.collective_backend == "gloo"
    assert host.fresh_copy_bytes_per_s == mem["fresh_copy_bytes_per_s"] > 0
    assert "newly allocated" in host.sources["fresh_copy_bytes_per_s"]
    # the framework's host time: per optimizer tensor (DTensor's dearer), per FSDP2 unit
    fw = summary["framework"]
    assert fw["measured"]
    assert host.optimizer_tensor_s == fw["optimizer_tensor_s"] > 0
    assert host.dtensor_optimizer_tensor_s == fw["dtensor_optimizer_tensor_s"]
    assert host.dtensor_optimizer_tensor_s > host.optimizer_tensor_s
    assert host.fsdp_unit_s == fw["fsdp_unit_s"] and host.fsdp_tensor_s == fw["fsdp_tensor_s"]
    assert {"optimizer_tensor_s", "fsdp_unit_s"} <= set(hw.provenance.measured)
    assert "framework.py" in host.sources["fsdp_unit_s"]
    # attention priced as training runs it: forward + backward SDPA, per dtype's own peak
    assert set(acc.attention_efficiency_by_dtype) == {"fp32", "bf16"}
    assert "fwd+bwd" in acc.attention_curve("bf16").source
    # the workload's own attention shape, timed per pass in each dtype, as in its CSV
    passes = table(profile_dir, "attention_passes")
    assert len(acc.attention_timings) == len(passes) == 2
    for _, row in passes.iterrows():
        t = acc.measured_attention(row["dtype"], 2, 2, 32, 16, causal=True)
        assert t is not None and t.fwd_s == pytest.approx(row["fwd_s"], rel=1e-5)
        assert t.bwd_s == pytest.approx(row["bwd_s"], rel=1e-5) and t.bwd_s >= 0
    assert acc.measured_attention("bf16", 4, 2, 32, 16) is None
    assert "attention_timings" in hw.provenance.measured
    # autocast's casts: the median of the dtypes' measured cast rates, kept out of the
    # memory-bound efficiency
    casts = [ops["cast"] for ops in summary["compute"]["elementwise_bytes_per_s"].values()]
    assert acc.cast_bytes_per_s == pytest.approx(sum(casts) / len(casts))
    assert "cast_bytes_per_s" in hw.provenance.measured
    # two ranks on one host: contention measured for every dtype, as a throughput factor
    assert set(host.contention) == {"fp32", "bf16"}
    assert all(0.0 < f <= 1.0 for f in host.contention.values())
    assert host.memory_contention == summary["contention"]["memory_factor"]
    assert 0.0 < host.memory_contention <= 1.0
    kernels = set(table(profile_dir, "contention")["kernel"])
    assert kernels == {"gemm", "stream"}
    fp32 = summary["compute"]["matmul_efficiency"]["fp32"]
    assert acc.matmul_curve("fp32").fractions == tuple(fp32["fractions"])
    assert hw.node.gpus_per_node == usable_cores()  # one thread per rank
    assert hw.collective_fit("all_reduce", 2) is not None
    assert hw.collective_fit("all_reduce", 1) is None  # one-rank fits stay in the files
    assert hw.power.tdp_w == summary["power"]["tdp_w"]


def test_unmeasured_scale_out_is_the_catalogue_10gbe_link(profile_dir: Path) -> None:
    from hwprofiles.catalogue import list_links

    ref = list_links()["ethernet-10"]
    out = load_calibrated_profile(profile_dir).node.scale_out
    assert out.bandwidth_bytes_per_s == ref.bandwidth_bytes_per_s
    assert out.latency_s == pytest.approx(ref.latency_s, rel=1e-5)  # profile.toml: 6 digits
    assert out.efficiency == pytest.approx(ref.efficiency, rel=1e-5)
    assert "ethernet-10" in out.source


def test_catalogue_loads_the_directory(profile_dir: Path) -> None:
    catalogue = pytest.importorskip("hwprofiles.catalogue")
    hw = catalogue.load_profile(str(profile_dir))
    assert hw.provenance.kind == "calibrated"
    assert hw.accelerator.peak_flops == load_calibrated_profile(profile_dir).accelerator.peak_flops


def test_refit_from_the_csvs_reproduces_the_summary(
    profile_dir: Path, summary: dict[str, Any], tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(profile_dir, copy)
    toml = copy / "profile.toml"
    toml.write_text(re.sub(r"max_fraction = \S+", "max_fraction = 0.5", toml.read_text()))
    # the fits are spoilt, the tables intact
    assert read_summary(copy)["compute"] != summary["compute"]
    refit(copy)
    again = read_summary(copy)
    # the profile was fitted from the values the CSVs keep (6 significant digits): the refit
    # gives it again, to the last digit
    assert again["compute"] == summary["compute"]
    assert again["network"] == summary["network"]
    assert again["framework"] == summary["framework"]
    assert again["machine"] == summary["machine"] and again["power"] == summary["power"]


def test_markdown_report_shows_the_figures(profile_dir: Path, summary: dict[str, Any]) -> None:
    text = markdown_report(profile_dir, "llmcap calibrate --level tiny")
    bf16 = summary["compute"]["peak_flops"]["bf16"]
    assert f"**{bf16 / 1e12:.3g}**" in text  # the measured peak, in TFLOP/s
    assert "`llmcap calibrate --level tiny`" in text
    assert "| all_reduce | 2 | gloo |" in text
    assert "Power per device: measured" in text  # the fake meter
    # the workload's attention, per pass in ms, one row per dtype
    bf16_att = next(t for t in summary["compute"]["attention_shapes"] if t["dtype"] == "bf16")
    assert f"| 2x2x32x16 | bf16 | {bf16_att['fwd_s'] * 1e3:.3g} |" in text


def test_loader_rejects_what_is_not_a_profile(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no profile\.toml"):
        load_calibrated_profile(tmp_path)
    (tmp_path / "profile.toml").write_text('format = "other"\n')
    with pytest.raises(ValueError, match="field 'format'"):
        load_calibrated_profile(tmp_path)


def test_simulate_uses_the_calibrated_profile(profile_dir: Path, summary: dict[str, Any]) -> None:
    args = ["simulate", "--model", "gpt3-125m", "--hardware", str(profile_dir), "--gpus", "2"]
    args += ["--tp", "1", "--pp", "1", "--micro-batch", "1", "--global-batch", "2"]
    args += ["--seq-len", "128", "--precision", "bf16", "--json"]
    res = CliRunner().invoke(app, args)
    if isinstance(res.exception, ModuleNotFoundError):
        pytest.skip(f"simulator not complete yet: {res.exception}")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["provenance"]["hardware_kind"] == "calibrated"
    assert out["step_time_s"] > 0


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["calibrate", *args])


def test_cli_rejects_bad_input_in_one_line(profile_dir: Path) -> None:
    cases = [
        (["--dtypes", "fp32,tf32"], "dtypes: 'tf32'"),
        (["--world-sizes", "1,two"], "world-sizes: 'two'"),
        (["--threads-per-rank", "0"], "threads_per_rank: 0"),
        (["--attention-shape", "4x4x128"], "attention shape: '4x4x128'"),
        (["--out", str(profile_dir)], "already exists; use --force"),
    ]
    if "torch" in sys.modules and not sys.modules["torch"].cuda.is_available():
        cases.append((["--device", "cuda"], "device: 'cuda'"))
    for args, message in cases:
        res = run_cli(*args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stderr.strip().splitlines() == [res.stderr.strip()], res.stderr
        assert message in res.stderr


def test_workload_gemms_and_a_stability_verdict_are_recorded(
    profile_dir: Path, summary: dict[str, Any]
) -> None:
    gemm = pd.read_csv(profile_dir / CSVS["gemm"])
    work = gemm[gemm["kind"] == "workload"]
    assert set(work["name"].str.split("/").str[0]) == {"tiny"}  # the tiny plan's workload
    assert set(work["dtype"]) == set(summary["device"]["dtypes"])
    assert (work["rows_measured"] <= work["m"]).all() and (work["count"] >= 1).all()
    st = summary["stability"]
    assert st["verdict"] in ("steady", "unsteady") and "IQR/median" in st["rule"]
    assert st["kernels"] == len(work) and 0 <= st["settled"] <= st["kernels"]
    assert (st["verdict"] == "steady") == (not st["reasons"])
    hw = load_calibrated_profile(profile_dir)
    assert hw.provenance.steadiness.split(":")[0] == st["verdict"]


def test_cli_refreshes_a_saved_profile_and_prints_json(
    profile_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`llmcap calibrate` a second time (no --out): the saved profile is refreshed, so the
    README's `calibrate --quick && validate` chain works on a second run."""
    monkeypatch.setenv("LLMCAP_HOME", str(tmp_path))
    out = tmp_path / "profiles" / "box"
    shutil.copytree(profile_dir, out)
    before = read_summary(out)["machine"]["date"]
    res = run_cli("--level", "tiny", "--world-sizes", "1", "--name", "box", "--json")
    assert res.exit_code == 0, res.output
    assert "refreshing the saved profile" in res.stderr
    summary = json.loads(res.stdout)
    assert summary["path"] == str(out)
    assert read_summary(out)["device"]["world_sizes"] == [1]  # the new one, not the copy
    assert before
    assert summary["compute"]["peak_flops"] == read_summary(out)["compute"]["peak_flops"]
    # without RAPL/NVML the power is modelled and says so; with them it is measured
    measured = (out / "power.csv").exists()
    assert summary["power"]["measured"] is measured
    assert summary["power"]["kind"] == ("measured" if measured else "modelled")
    assert measured or "not measured" in summary["power"]["note"]


@pytest.mark.gpu
def test_tiny_cuda_calibration(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cfg = CalibrationConfig(device="cuda", level="tiny", dtypes=("fp32", "tf32", "bf16"),
                            world_sizes=(1,), timeout_s=300)  # fmt: skip
    summary = calibrate(cfg, tmp_path / "gpu")
    assert set(summary["compute"]["peak_flops"]) == {"fp32", "tf32", "bf16"}
    assert summary["network"]["backend"] == "nccl"
    hw = load_calibrated_profile(tmp_path / "gpu")
    assert hw.node.gpus_per_node == torch.cuda.device_count()
    assert hw.provenance.machine["gpu_name"] == torch.cuda.get_device_name(0)
