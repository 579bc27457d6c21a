"""Real torchrun runs of the tiny GPT with gloo on CPU: a 2-rank run completes, a rank that
exits or hangs is named, every rank is stopped, and the CLI reports it all.

Each run starts two torchrun agents and two ranks (a few seconds of imports on 2 cores).
"""

import json
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from analysis.cli.main import app
from validation.gptconfig import PRESETS
from validation.launcher import launch, pid_alive
from validation.spec import Fault, RunSpec

TINY = PRESETS["tiny"]


def _rank_pids(run_dir: Path) -> list[int]:
    pids = []
    for p in run_dir.glob("rank*.progress.json"):
        pids.append(json.loads(p.read_text())["pid"])
    return pids


def test_two_rank_gloo_run_completes(tmp_path):
    spec = RunSpec(TINY, "ddp", "fp32", 2, steps=4, warmup=1, comm_pairs=2)
    out = launch(spec, tmp_path)
    assert out.ok, out.failure
    assert sorted(out.results) == [0, 1]
    for r, res in out.results.items():
        assert res["rank"] == r and res["world_size"] == 2 and res["backend"] == "gloo"
        assert res["threads"] == 1
        assert len(res["step_times_s"]) == 4 and all(t > 0 for t in res["step_times_s"])
        assert len(res["pair_sync_s"]) == len(res["pair_nosync_s"]) == 2
        assert len(res["probe_gemm_s"]) == 10 and all(t > 0 for t in res["probe_gemm_s"])
        # the in-run probes: one sample per timed step, every rank (validation.inrun)
        for key in ("inrun_gemm_s", "inrun_pass_s", "inrun_optimizer_s"):
            assert len(res[key]) == 4 and all(t > 0 for t in res[key]), key
        assert 5.0 < res["loss_last"] < 7.5  # ln(512) = 6.24 for random tokens
    assert len(_rank_pids(tmp_path)) == 2
    assert not any(pid_alive(pid) for pid in _rank_pids(tmp_path))


def test_rank_that_raises_reports_its_error(tmp_path):
    spec = RunSpec(TINY, "fsdp", "fp32", 2, steps=50, warmup=1, fault=Fault(0, "raise", 1))
    out = launch(spec, tmp_path, hang_timeout_s=60)
    assert out.failure.rank == 0
    assert "RuntimeError: injected fault" in out.failure.reason
    assert not any(pid_alive(pid) for pid in _rank_pids(tmp_path))


@pytest.mark.slow
def test_hung_rank_is_detected_and_stopped(tmp_path):
    spec = RunSpec(TINY, "ddp", "fp32", 2, steps=50, warmup=1, fault=Fault(1, "hang", 3))
    out = launch(spec, tmp_path, hang_timeout_s=3)
    assert out.failure is not None and out.failure.rank == 1
    assert "hung" in out.failure.reason and "step 2" in out.failure.reason
    assert not any(pid_alive(pid) for pid in _rank_pids(tmp_path))


def test_cli_end_to_end_fsdp_bf16(tmp_path):
    """2 ranks, FSDP, bf16: the JSON report has measurements and analytic comparisons."""
    args = [
        "validate",
        "--nproc",
        "2",
        "--model",
        "tiny",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--strategy",
        "fsdp",
        "--precision",
        "bf16",
        "--hardware",
        "cpu",
        "--engines",
        "analytic",
        "--json",
        "--out",
        str(tmp_path),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["format"] == "llmcap-validation/1"
    (run,) = doc["runs"]
    assert run["run"] == "fsdp-bf16-n2" and run["status"] == "ok"
    assert run["measured"]["step"]["count"] == 3
    (cmp_,) = [c for c in doc["comparisons"] if c["metric"] == "step_time_s"]
    assert cmp_["engine"] == "analytic"
    assert cmp_["error"] == pytest.approx(cmp_["predicted"] / cmp_["measured"] - 1, rel=1e-4)
    assert (tmp_path / "report.md").is_file()
    assert json.loads((tmp_path / "report.json").read_text()) == doc
    assert "in_run" not in doc  # a datasheet profile is not priced at in-run rates


def test_cli_failed_rank_exits_non_zero_and_keeps_completed_runs(tmp_path):
    args = [
        "validate",
        "--nproc",
        "1,2",
        "--model",
        "tiny",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--strategy",
        "ddp",
        "--precision",
        "fp32",
        "--hardware",
        "none",
        "--inject-fault",
        "1:exit:1",
        "--json",
        "--out",
        str(tmp_path),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    ok, failed = doc["runs"]
    assert ok["run"] == "ddp-fp32-n1" and ok["status"] == "ok"  # kept
    assert failed["run"] == "ddp-fp32-n2" and failed["failure"]["rank"] == 1
    assert "exited with status 3" in failed["failure"]["reason"]  # the injected os._exit(3)
    assert "run ddp-fp32-n2 failed: rank 1 failed" in res.stderr
    assert not any(pid_alive(p) for p in _rank_pids(tmp_path / "runs" / "ddp-fp32-n2"))
    assert os.path.isfile(tmp_path / "runs" / "ddp-fp32-n2" / "rank1.log")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_one_gpu_run_uses_nccl_and_cuda_memory(tmp_path):
    spec = RunSpec(TINY, "fsdp", "bf16", 1, steps=3, warmup=1, device="cuda")
    out = launch(spec, tmp_path)
    assert out.ok, out.failure
    res = out.results[0]
    assert res["backend"] == "nccl" and res["device"] == "cuda:0"
    assert res["peak_memory_kind"] == "cuda_max_allocated" and res["peak_memory_bytes"] > 0
    assert (res["energy_j"] is not None and res["energy_j"] >= 0) or res["energy_reason"]


def test_ctrl_c_stops_every_rank_and_keeps_completed_runs(tmp_path, monkeypatch):
    """KeyboardInterrupt lands in the launcher's watch loop (where SIGINT, and SIGTERM via the
    CLI's handler, arrive) once both ranks of the 2-rank run train: the ranks are stopped,
    the 1-rank run measured before is kept, and the matrix reports itself interrupted."""
    from validation import launcher
    from validation.suite import Matrix, run_matrix

    real = launcher.Watch.read_progress
    fired = []

    def interrupt_when_training(self):
        moved = real(self)
        training = len(self.progress) == 2 and min(self.progress.values())[0] > 0
        if self.spec.nproc == 2 and training and not fired:
            fired.append(True)  # one Ctrl-C
            raise KeyboardInterrupt
        return moved

    monkeypatch.setattr(launcher.Watch, "read_progress", interrupt_when_training)
    matrix = Matrix(TINY, strategies=("ddp",), precisions=("fp32",), steps=200, warmup=1)
    result = run_matrix(matrix, tmp_path)
    assert result.interrupted
    assert [r.spec.run_id for r in result.records] == ["ddp-fp32-n1"]
    assert result.records[0].measured is not None
    pids = _rank_pids(tmp_path / "ddp-fp32-n2")
    assert len(pids) == 2 and not any(pid_alive(p) for p in pids)


def test_cpu_ranks_run_with_a_caching_malloc(monkeypatch):
    from validation.launcher import CPU_MALLOC_TUNABLES, Network, agent_env

    net = Network("127.0.0.1", 29500, "lo")
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    cpu = RunSpec(TINY, "fsdp", "fp32", 2)
    env = agent_env(cpu, net)
    assert env["GLIBC_TUNABLES"] == CPU_MALLOC_TUNABLES
    assert env["OMP_NUM_THREADS"] == "1" and env["GLOO_SOCKET_IFNAME"] == "lo"
    # the regeneration script calibrates under the same settings
    script = Path(__file__).parents[1] / "benchmarks" / "validate_cpu.sh"
    assert f"GLIBC_TUNABLES:-{CPU_MALLOC_TUNABLES}" in script.read_text()
    # a user's own allocator settings are kept
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=1")
    assert agent_env(cpu, net)["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=1"


def test_the_model_names_its_attention_shape_for_calibration():
    from hwprofiles.calibration.plan import AttentionShape

    small = PRESETS["small"]
    shape = AttentionShape.parse(small.attention_shape())
    assert shape == AttentionShape(small.micro_batch_size, 4, small.seq_len, 64)
