"""`llmcap simulate`: the JSON contract, determinism, run files and one-line errors."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app

GOLDEN = Path(__file__).parent / "golden"
KEYS = [
    "step_time_s",
    "tokens_per_s",
    "tokens_per_s_per_gpu",
    "model_tflops_per_gpu",
    "mfu",
    "hfu",
    "comm_exposed_s",
    "comm_fraction",
    "memory_per_gpu_bytes",
    "fits_in_memory",
    "energy_per_step_j",
    "avg_power_w",
    "scaling_efficiency",
    "time_to_train_s",
    "breakdown",
    "document",
    "inputs",
]
SCENARIOS = {
    "gpt3-175b-a100-1024": [
        "--model",
        "gpt3-175b",
        "--hardware",
        "a100-80gb",
        "--gpus",
        "1024",
        "--tp",
        "8",
        "--pp",
        "8",
        "--global-batch",
        "1536",
        "--seq-len",
        "2048",
        "--precision",
        "fp16",
        "--recompute",
        "full",
        "--tokens",
        "300e9",
    ],
    "llama3-8b-h100-fsdp": [
        "--model",
        "llama3-8b",
        "--hardware",
        "h100-sxm",
        "--gpus",
        "64",
        "--tp",
        "1",
        "--pp",
        "1",
        "--zero",
        "3",
        "--micro-batch",
        "1",
        "--global-batch",
        "512",
        "--seq-len",
        "8192",
        "--recompute",
        "none",
    ],
    "mistral-7b-mi300x-tp2": [
        "--model",
        "mistral-7b",
        "--hardware",
        "mi300x",
        "--gpus",
        "16",
        "--tp",
        "2",
        "--pp",
        "1",
        "--sp",
        "--global-batch",
        "64",
        "--seq-len",
        "4096",
        "--precision",
        "bf16",
    ],
}
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["simulate", *args])


def test_default_run_has_every_contract_key():
    r = invoke("--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for k in KEYS:
        assert k in out, k
    assert out["inputs"]["model"]["name"] == "llama-3-70b"
    assert 0 < out["mfu"] < 1
    assert out["document"]["speedup_m_times_k"] == 1024


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_json(name):
    """Byte-identical to the stored output (regenerate: python tests/golden/regen.py)."""
    r = invoke(*SCENARIOS[name], "--json")
    assert r.exit_code == 0, r.output
    assert r.stdout == (GOLDEN / f"{name}.json").read_text()


def test_same_inputs_same_bytes():
    a = invoke(*SCENARIOS["gpt3-175b-a100-1024"], "--json").stdout
    b = invoke(*SCENARIOS["gpt3-175b-a100-1024"], "--json").stdout
    assert a == b


def test_time_to_train_from_tokens():
    out = json.loads(invoke(*SCENARIOS["gpt3-175b-a100-1024"], "--json").stdout)
    assert out["time_to_train_ideal_s"] == pytest.approx(300e9 / out["tokens_per_s"], rel=1e-5)
    # the wall clock adds failures, checkpoints and restarts (simulator.reliability)
    assert out["time_to_train_ideal_s"] < out["time_to_train_s"]
    assert out["goodput_fraction"] == pytest.approx(
        out["time_to_train_ideal_s"] / out["time_to_train_s"], rel=1e-5
    )


def test_human_output_shows_breakdown_and_seed_formulas():
    r = invoke(*SCENARIOS["llama3-8b-h100-fsdp"])
    assert r.exit_code == 0
    assert "where the step time goes" in r.stdout
    assert "m x k" in r.stdout and "E x P/L" in r.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--gpus", "1000", "--tp", "8", "--pp", "4"], "not divisible by tp*pp*cp"),
        (["--tp", "3", "--pp", "1", "--gpus", "3", "--global-batch", "3"], "num_attention_heads"),
        (["--pp", "81", "--tp", "1", "--gpus", "81", "--global-batch", "81"], "1 stage(s) would"),
        (["--global-batch", "1000", "--tp", "8", "--pp", "4"], "global_batch_size: 1000 not"),
        (["--model", "gpt-99"], "known presets: gpt3-"),
        (["--hardware", "tpu-v9"], "known:"),
        (["--precision", "fp4"], "precision"),
        (["--hardware", "a100-80gb", "--precision", "fp8"], "not supported by a100-80gb"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    r = invoke(*args)
    assert r.exit_code == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("llmcap: error:")
    assert message in lines[0]
    assert "Traceback" not in r.output


OVER_MEMORY = ("--model", "gpt3-175b", "--hardware", "a100-40gb", "--gpus", "8", "--tp", "8",
               "--pp", "1", "--global-batch", "8", "--json")  # fmt: skip


def test_model_that_does_not_fit_still_gets_its_prediction_with_a_warning():
    r = invoke(*OVER_MEMORY)
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["fits_in_memory"] is False and out["step_time_s"] > 0
    warn = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warn) == 1 and warn[0].startswith("llmcap: warning: memory:")
    assert "GiB more than" in warn[0]


def test_require_fit_makes_over_memory_an_error():
    r = invoke(*OVER_MEMORY, "--require-fit")
    assert r.exit_code == 2
    assert json.loads(r.stdout)["fits_in_memory"] is False
    assert r.stderr.startswith("llmcap: error: memory:")


def test_uneven_pipeline_split_is_predicted_and_can_be_pinned():
    # Llama 3 405B's 126 layers on 16 stages (Dubey et al. 2024, Sec. 3.3.2)
    base = ("--model", "llama-3.1-405b", "--hardware", "h100-sxm", "--gpus", "2048", "--tp", "8",
            "--pp", "16", "--global-batch", "512", "--json")  # fmt: skip
    r = invoke(*base)
    assert r.exit_code == 0, r.output
    default = json.loads(r.stdout)["step_time_s"]
    pinned = invoke(*base, "--first-stage-layers", "14", "--last-stage-layers", "14")
    assert pinned.exit_code == 0, pinned.output
    # 98 layers on 14 middle stages: 7 each, the ends 14: the ends set a slower pace
    assert json.loads(pinned.stdout)["step_time_s"] > default * 1.3


@pytest.mark.parametrize(
    "pins,message",
    [
        (("--first-stage-layers", "120", "--last-stage-layers", "10"), "126 by 4"),
        (("--first-stage-layers", "120"), "6 layer(s) left for 15 other virtual stage(s): 9 would"),
        (("--pp", "128"), "2 stage(s) would be empty"),
    ],
)
def test_bad_pins_say_by_how_much(pins, message):
    r = invoke("--model", "llama-3.1-405b", "--hardware", "h100-sxm", "--gpus", "2048", "--tp", "8",
               "--pp", "16", "--global-batch", "512", *pins)  # fmt: skip
    assert r.exit_code == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_run_file_and_flag_override(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[model]\nname = "llama3-8b"\n[parallelism]\ntp = 2\npp = 1\n'
        '[training]\nglobal_batch = 32\nseq_len = 2048\n[cluster]\nhardware = "a100-80gb"\n'
        "gpus = 16\n"
    )
    out = json.loads(invoke("--config", str(cfg), "--json").stdout)
    assert out["inputs"]["parallel"]["tp"] == 2 and out["inputs"]["gpus"] == 16
    out2 = json.loads(invoke("--config", str(cfg), "--tp", "4", "--json").stdout)
    assert out2["inputs"]["parallel"]["tp"] == 4


@pytest.mark.parametrize(
    "text,message",
    [
        ("[model\nname=1", "not valid TOML"),
        ("[cluster]\ngpu = 8\n", "unknown key cluster.gpu"),
        ("[hardware]\nx = 1\n", "unknown section [hardware]"),
    ],
)
def test_malformed_run_file(tmp_path, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    r = invoke("--config", str(cfg))
    assert r.exit_code == 2 and message in r.stderr


def test_hf_config_json_as_model(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 2048,
                "num_hidden_layers": 16,
                "num_attention_heads": 16,
                "num_key_value_heads": 4,
                "intermediate_size": 5632,
                "vocab_size": 32000,
                "max_position_embeddings": 2048,
            }
        )
    )
    r = invoke(
        "--model",
        str(cfg),
        "--hardware",
        "a100-80gb",
        "--gpus",
        "8",
        "--tp",
        "1",
        "--pp",
        "1",
        "--global-batch",
        "64",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["inputs"]["model"]["num_key_value_heads"] == 4
