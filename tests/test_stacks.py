"""Training stacks (`simulator.stacks`), `--stack`, `llmcap stacks`, attention generations."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from analysis.predict import analytic_arrays
from hwprofiles.attention_kernels import kernel_ratio
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model
from simulator.options import Options
from simulator.parallel import ParallelConfig, Workload
from simulator.stacks import DEFAULT_STACK, load_stack, stack_names

REQUIRED = {"megatron-2020", "megatron-2021", "megatron-2022", "megatron-deepspeed-2022",
            "deepspeed-2021", "llm-foundry-2023", "megatron-core-2024", "nemo-2024", "nemo-2025",
            "torchtitan-2025"}  # fmt: skip


def test_every_required_stack_loads_with_a_source_per_setting():
    assert set(stack_names()) >= REQUIRED
    for name in stack_names():
        s = load_stack(name)
        assert s.settings and set(s.settings) == set(s.sources)
        assert all(len(src) > 20 for src in s.sources.values()), name
        s.options()  # valid Options


def test_default_stack_is_the_newest_nemo_and_options_are_megatron_core_2024():
    assert DEFAULT_STACK == "nemo-2025"
    assert load_stack("megatron-core-2024").options() == Options()
    default = load_stack(DEFAULT_STACK).options()
    assert default.attention_kernel == "cudnn" and default.overlap_tp_comm


def test_unknown_stack_lists_the_known_ones():
    r = CliRunner().invoke(app, ["simulate", "--stack", "megatron-1999"])
    assert r.exit_code == 2
    assert "known: deepspeed-2021" in r.stderr and "nemo-2025" in r.stderr


def test_attention_generation_ratios_are_the_measured_ones():
    assert kernel_ratio("h100-sxm", "fa2") == 1.0
    assert kernel_ratio("h100-sxm", "cudnn") == pytest.approx(1.61)
    assert kernel_ratio("a100-80gb", "fa3") == 1.0  # Hopper-only kernel priced as FA2
    assert kernel_ratio("no-such-profile", "fa3") == 1.0


def _step(stack: str, precision: str = "bf16") -> float:
    w = Workload(
        load_model("llama-2-70b"),
        ParallelConfig(
            tp=8,
            pp=4,
            sequence_parallel=True,
            zero_stage=1,
            global_batch_size=256,
            recompute="selective",
            precision=precision,
        ).resolve(256),
        4096,
    )
    return analytic_arrays(w, load_profile("h100-sxm"), load_stack(stack).options())["step_time_s"]


def test_newer_stacks_run_the_same_layout_faster_by_mechanism_only():
    old, core, nemo = _step("megatron-2021"), _step("megatron-core-2024"), _step("nemo-2025")
    assert old > core > nemo
    # no end-to-end multiplier: the difference is bounded by attention + exposed comm
    assert nemo > 0.7 * core


def test_stack_from_flag_and_run_file(tmp_path):
    base = ["simulate", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--gpus", "8",
            "--tp", "2", "--pp", "1", "--global-batch", "16", "--json"]  # fmt: skip
    r = CliRunner().invoke(app, [*base, "--stack", "nemo-2025"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["inputs"]["stack"] == "nemo-2025"
    assert doc["inputs"]["options"]["attention_kernel"] == "cudnn"
    f = tmp_path / "run.toml"
    f.write_text('[options]\nstack = "megatron-2021"\ndropout = false\n')
    r2 = CliRunner().invoke(app, [*base, "--config", str(f)])
    doc2 = json.loads(r2.stdout)
    assert doc2["inputs"]["stack"] == "megatron-2021"
    assert doc2["inputs"]["options"]["attention"] == "naive"
    assert doc2["inputs"]["options"]["dropout"] is False  # the run's key beats the stack
    assert doc2["step_time_s"] > doc["step_time_s"]


def test_llmcap_stacks_lists_every_stack():
    r = CliRunner().invoke(app, ["stacks"])
    assert r.exit_code == 0
    for name in REQUIRED:
        assert name in r.stdout
    one = CliRunner().invoke(app, ["stacks", "nemo-2025", "--json"])
    doc = json.loads(one.stdout)
    assert doc["stacks"][0]["settings"]["attention_kernel"]["value"] == "cudnn"
