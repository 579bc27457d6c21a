"""The typed boundary: wrongly typed, non-finite and out-of-range values are one-line errors.

Each case is one reported in issue 14 (found by throwing generated input at the commands):
before, they were tracebacks or silently accepted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from analysis.runconfig import DEFAULTS
from analysis.runschema import RUN_TYPES
from hwprofiles.errors import UserError
from hwprofiles.typed import check, number

SMALL = ["--model", "gpt3-125m", "--gpus", "8", "--tp", "1", "--pp", "1", "--global-batch", "8"]


def _one_line_exit_2(args: list[str], field: str) -> None:
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    assert lines[0].startswith("llmcap: error: ") and field in lines[0], lines[0]


@pytest.mark.parametrize(
    "value, annotation, ok",
    [
        (True, int, False),
        (8.0, int, False),
        (8, float, True),
        (math.nan, float, False),
        (math.inf, float | None, False),
        (None, int | None, True),
        (1, bool, False),
        ("x", str, True),
        ({"a": 1}, int, False),
        ([1.0], float, False),
        (1, bool | None, False),
    ],
)
def test_check_is_strict(value, annotation, ok):
    if ok:
        check(value, annotation, "f")
    else:
        with pytest.raises(UserError, match=r"^f: "):
            check(value, annotation, "f")


def test_number_ranges():
    assert number(2, "x", minimum=0, strict=True) == 2.0
    with pytest.raises(UserError, match="must be > 0"):
        number(0, "x", minimum=0, strict=True)
    with pytest.raises(UserError, match="must be <= 5"):
        number(6, "x", maximum=5)


def test_every_run_file_key_has_a_type():
    for section, keys in RUN_TYPES.items():
        assert set(keys) == set(DEFAULTS[section]), section


@pytest.mark.parametrize(
    "text, field",
    [
        ("[parallelism]\ntp = {a = 1}\n", "parallelism.tp"),
        ('[parallelism]\ntp = "eight"\n', "parallelism.tp"),
        ("[parallelism]\nsp = {a = 1}\n", "parallelism.sp"),
        ('[training]\nglobal_batch = ""\n', "training.global_batch"),
        ('[training]\ntokens = "abc"\n', "training.tokens"),
        ("[training]\ntokens = nan\n", "training.tokens"),
        ("[cluster]\nhardware = 5\n", "cluster.hardware"),
        ("[cluster]\ngpus_per_node = 8.0\n", "cluster.gpus_per_node"),
        ("[options]\ncomm_interference = [1.0]\n", "options.comm_interference"),
        ("[options]\noverlap_tp_comm = 1.0\n", "options.overlap_tp_comm"),
        ("[options]\ndropout = 2\n", "options.dropout"),
        ("[options]\namp_casts = {on = true}\n", "options.amp_casts"),
        ("[model]\nname = 5\n", "model.name"),
        ("[model]\nname = 'gpt3-125m'\nhidden_size = 768.0\n", "model.hidden_size"),
        (
            "[model]\nname = 'x'\nhidden_size = 1000000000\nnum_hidden_layers = 2\n"
            "num_attention_heads = 2\nvocab_size = 10\nintermediate_size = 8\n",
            "hidden_size",
        ),
    ],
)
def test_run_file_values_are_typed(tmp_path, text, field):
    p = tmp_path / "run.toml"
    p.write_text(text)
    _one_line_exit_2(["simulate", "--config", str(p)], field)


@pytest.mark.parametrize(
    "text, field",
    [
        ('base = "dgx-h100"\nfabric = true\n', "fabric"),
        ('base = "dgx-h100"\nname = 5\n', "name"),
        ('base = "dgx-h100"\nsource = 5\n', "source"),
        ('base = "dgx-h100"\n[price]\nusd_per_gpu_hour = nan\n', "usd_per_gpu_hour"),
        ('base = "dgx-h100"\ngpus_per_node = "8"\n', "gpus_per_node"),
    ],
)
def test_hardware_file_values_are_typed(tmp_path, text, field):
    p = tmp_path / "hw.toml"
    p.write_text(text)
    _one_line_exit_2(["hardware", str(p)], field)


HF = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "vocab_size": 100,
    "intermediate_size": 128,
}


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"attention_bias": 1, "mlp_bias": 1}, "attention_bias"),
        ({"head_dim": 32.0}, "head_dim"),
        ({"hidden_act": 5}, "hidden_act"),
        ({"num_key_value_heads": True}, "num_key_value_heads"),
        ({"num_local_experts": "8"}, "num_local_experts"),
        ({"_name_or_path": 5}, "_name_or_path"),
        ({"hidden_size": 64.0}, "hidden_size"),
    ],
)
def test_hf_config_values_are_typed(tmp_path, extra, field):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(HF | extra))
    _one_line_exit_2(["simulate", "--model", str(p), *SMALL[2:]], field)


@pytest.mark.parametrize(
    "args, field",
    [
        (["simulate", *SMALL, "--tokens", "nan"], "tokens"),
        (["simulate", *SMALL, "--engine", "des", "--jitter", "Infinity"], "--jitter"),
        (["simulate", *SMALL, "--engine", "des", "--jitter", "-1"], "--jitter"),
        (["simulate", *SMALL, "--engine", "des", "--speed-sigma", "-0.5"], "--speed-sigma"),
        (["scale", "--gpus", "8,16", *SMALL[:2], "--scale-out", "1e300"], "--scale-out"),
        (["scale", "--gpus", "8,16", *SMALL[:2], "--scale-out", ""], "--scale-out"),
        (["scale", "--gpus", "8,16", *SMALL[:2], "--scale-out", "nan"], "--scale-out"),
    ],
)
def test_flag_values_are_finite_and_in_range(args, field):
    _one_line_exit_2(args, field)


PLAN = ["plan", "--model", "gpt3-125m", "--tokens", "1e9", "--hardware", "h100-sxm", "--gpus", "8"]


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--deadline", "inf"),
        ("--deadline", "1e309"),
        ("--pue", "nan"),
        ("--budget", "1e309"),
        ("--budget", "nan"),
    ],
)
def test_plan_numbers_are_finite(flag, value):
    _one_line_exit_2([*PLAN, flag, value], flag)


def test_des_refuses_unbounded_work():
    args = ["simulate", "--model", "gpt3-125m", "--gpus", "64", "--tp", "1", "--pp", "4"]
    _one_line_exit_2([*args, "--global-batch", "2097152", "--engine", "des"], "engine")


def test_absurd_cluster_is_a_warning_not_an_error():
    args = ["simulate", "--gpus", "1000000000", "--tp", "8", "--pp", "8"]
    r = CliRunner().invoke(app, [*args, "--global-batch", "15625000", "--json"])
    assert r.exit_code == 0, r.output
    assert "llmcap: warning: gpus: 1000000000 is more than 1,048,576 GPUs" in r.stderr


@pytest.mark.parametrize(
    "pattern, replacement, field",
    [
        (r"(?m)^(bandwidth_bytes_per_s\s*=\s*).*$", r'\1"fast"', "not a valid calibration"),
        (r"(?m)^(bandwidth_bytes_per_s\s*=\s*).*$", r"\1nan", "bandwidth_bytes_per_s"),
    ],
)
def test_calibrated_profile_values_are_typed(tmp_path, pattern, replacement, field):
    import re
    import shutil

    src = Path(__file__).parent.parent / "docs" / "profiles" / "xeon-amx-2vcpu"
    shutil.copytree(src, tmp_path / "p")
    toml = tmp_path / "p" / "profile.toml"
    toml.write_text(re.sub(pattern, replacement, toml.read_text(), count=1))
    _one_line_exit_2(["hardware", str(tmp_path / "p")], field)
