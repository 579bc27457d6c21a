"""Run files: the [model] table is a base (name or config) plus field overrides, or inline."""

from __future__ import annotations

import json

import pytest

from analysis.runconfig import build_run, merge, read_run_file, resolve_model
from simulator.models_catalogue import load_model

RUN = '[parallelism]\ntp = 1\npp = 1\n[training]\nglobal_batch = 8\nseq_len = 2048\n[cluster]\nhardware = "a100-80gb"\ngpus = 8\n'  # noqa: E501
FLAGS_NONE = {"model": {"name": None}, "parallelism": {"tp": None}}


def _model(tmp_path, model_table: str, flags: dict | None = None):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[model]\n" + model_table + RUN)
    return build_run(merge(read_run_file(cfg), flags or FLAGS_NONE)).workload.model


@pytest.mark.parametrize(
    "table",
    [
        'hidden_size = 2048\nname = "llama3-8b"\n',  # the override before the name
        'name = "llama3-8b"\nhidden_size = 2048\n',
    ],
)
def test_preset_fields_are_overridden_whatever_the_key_order(tmp_path, table):
    base = load_model("llama3-8b")
    m = _model(tmp_path, table)
    assert m.hidden_size == 2048
    assert (m.name, m.num_hidden_layers, m.vocab_size) == (
        base.name,
        base.num_hidden_layers,
        base.vocab_size,
    )
    assert "overridden by the run: hidden_size = 2048" in m.source


def test_config_file_is_a_base_too_and_name_then_renames(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 2048,
                "num_hidden_layers": 16,
                "num_attention_heads": 16,
                "intermediate_size": 5632,
                "vocab_size": 32000,
            }
        )
    )
    m = _model(tmp_path, f'num_hidden_layers = 4\nname = "mine"\nconfig = "{cfg}"\n')
    assert (m.name, m.num_hidden_layers, m.hidden_size) == ("mine", 4, 2048)


def test_inline_model_does_not_inherit_the_default_preset(tmp_path):
    inline = (
        'name = "tiny"\nhidden_size = 256\nnum_hidden_layers = 2\nnum_attention_heads = 4\n'
        "vocab_size = 1000\nintermediate_size = 1024\n"
    )
    assert _model(tmp_path, inline).hidden_size == 256
    # without a name: before, the default's name = "llama3-70b" survived and won silently
    m = _model(tmp_path, inline.replace('name = "tiny"\n', ""))
    assert (m.hidden_size, m.num_hidden_layers) == (256, 2)


def test_the_flag_model_replaces_the_files_model_and_its_overrides(tmp_path):
    m = _model(
        tmp_path, 'name = "llama3-8b"\nhidden_size = 2048\n', {"model": {"name": "gpt3-1.3b"}}
    )
    assert m == load_model("gpt3-1.3b")


@pytest.mark.parametrize(
    "table,message",
    [
        ('name = "llama3-8b"\nhiden_size = 2048\n', "model.hiden_size: not a model field"),
        ('name = "llama3-8b"\nhidden_size = 4097\n', "hidden_size: 4097 not divisible"),
        ('name = "lama3-8b"\nhidden_size = 4096\n', "'lama3-8b' is neither a known preset"),
    ],
)
def test_bad_overrides_are_one_line_errors_naming_the_field(tmp_path, table, message):
    with pytest.raises(ValueError, match=message) as exc:
        _model(tmp_path, table)
    assert "\n" not in str(exc.value)


def test_resolve_model_alone():
    assert resolve_model({"name": "llama3-8b"}) == load_model("llama3-8b")
    assert resolve_model({"num_hidden_layers": 2, "name": "llama3-8b"}).num_hidden_layers == 2
