"""Defaults that adapt and show themselves: searched layouts, the pre-training sequence length,
`--tokens` parsed one way, every default in `--help`, one spelling per flag, `llmcap models`."""

from __future__ import annotations

import json
import re

import pytest
import typer.main
from rich.text import Text
from typer.testing import CliRunner

from analysis.cli.main import app
from analysis.cli.parse import parse_count
from analysis.planner import PlanRequest
from hwprofiles.catalogue import load_profile
from simulator.models_catalogue import load_model, pretraining_seq_len

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "80"})


def test_simulate_searches_a_layout_for_the_model_and_prints_it():
    r = run("simulate", "--model", "llama-3-8b", "--gpus", "8")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "layout: tp" in text and "searched" in text
    assert "8,192 tokens (llama-3-8b's pre-training length)" in text
    doc = json.loads(run("simulate", "--model", "llama-3-8b", "--gpus", "8", "--json").stdout)
    par = doc["inputs"]["parallel"]
    assert par["tp"] * par["pp"] * par["cp"] * par["dp"] == 8
    assert doc["fits_in_memory"]


def test_given_values_constrain_the_search():
    doc = json.loads(
        run("simulate", "--model", "llama-3-8b", "--gpus", "16", "--zero", "3", "--json").stdout
    )
    assert doc["inputs"]["parallel"]["zero_stage"] == 3


def test_scale_works_without_layout_flags_and_with_best_layout():
    r = run("scale", "--model", "gpt3-1.3b", "--gpus", "8,16,32,64")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "layout: tp" in text and "2,048 tokens (gpt3-1.3b's pre-training length)" in text
    b = run("scale", "--model", "gpt3-1.3b", "--gpus", "8,16,32,64", "--best-layout", "--json")
    assert b.exit_code == 0, b.output
    pts = json.loads(b.stdout)["points"]
    assert [p["gpus"] for p in pts] == [8, 16, 32, 64]
    assert all(p["layout"].startswith("tp") for p in pts)


def test_sequence_length_is_the_pretraining_length_not_the_context():
    m = load_model("llama-3.1-70b")
    assert m.max_position_embeddings == 131072
    assert pretraining_seq_len(m)[0] == 8192
    req = PlanRequest(model=m, tokens=1e12, hardware=(load_profile("h100-sxm"),), gpus=(8,))
    assert req.sequence_length == 8192
    doc = json.loads(run("simulate", "--model", "llama-3.1-70b", "--json").stdout)
    assert doc["inputs"]["seq_len"] == 8192


@pytest.mark.parametrize("text,value", [("2T", 2e12), ("1.5e12", 1.5e12), ("500B", 5e11)])
def test_tokens_parse_the_same_everywhere(text, value):
    assert parse_count(text) == value
    doc = json.loads(
        run("simulate", "--model", "gpt3-1.3b", "--gpus", "8", "--tokens", text, "--json").stdout
    )
    assert doc["time_to_train_ideal_s"] == pytest.approx(value / doc["tokens_per_s"], rel=1e-5)


@pytest.mark.parametrize("bad", ["nan", "inf", "-1", "0", "2X"])
def test_bad_tokens_one_line_exit_2(bad):
    for cmd in (["simulate", "--json"], ["plan", "--model", "gpt3-1.3b", "--hardware", "h100-sxm"]):
        r = run(*cmd, "--tokens", bad)
        assert r.exit_code == 2, r.output
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("llmcap: error: tokens:"), r.stderr


def _commands():
    return typer.main.get_command(app).commands


def _every_command(group=None, path=()):
    """Every leaf command of the `llmcap` app (plug-ins included), as (words, command)."""
    for name, cmd in (group or typer.main.get_command(app)).commands.items():
        if hasattr(cmd, "commands"):
            yield from _every_command(cmd, (*path, name))
        else:
            yield (*path, name), cmd


ALL_COMMANDS = dict(_every_command())


def test_every_command_is_checked():
    assert {"simulate", "scale", "plan", "sweep", "cluster", "validate", "calibrate"} <= {
        w[0] for w in ALL_COMMANDS
    }


@pytest.mark.parametrize("words", sorted(ALL_COMMANDS), ids=" ".join)
def test_help_shows_every_default(words):
    """Each option's row of the rendered `--help` says its default, or what omitting it does.

    Read from the rendered help (a wide terminal, one row per option), not the help strings:
    Rich would swallow an unescaped `[default: x]` as markup. Exempt: `--help`, required
    parameters, and plain on/off flags (off unless given).
    """
    r = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "1000"})
    assert r.exit_code == 0, r.output
    rows = r.stdout.splitlines()
    for p in ALL_COMMANDS[words].params:
        if p.help:  # Rich reads `[x]` as markup and drops it: help must be escaped (`\\[x]`)
            assert Text.from_markup(p.help).plain == p.help.replace("\\[", "["), p.help
        skip = p.name == "help" or p.required or getattr(p, "hidden", False)
        if skip or (getattr(p, "is_flag", False) and p.default is False):
            continue
        first = p.opts[0] if p.param_type_name == "option" else p.name
        pattern = re.compile(r"^│\s+(\*\s+)?" + re.escape(first) + r"\s")
        row = next((ln for ln in rows if pattern.match(ln)), None)
        assert row is not None, f"{' '.join(words)} {first}: not in --help"
        assert "[default:" in row, f"{' '.join(words)} {first}: no default in {row.split()}"


def test_one_spelling_per_flag_across_commands():
    spellings = {o for c in _commands().values() for p in c.params for o in p.opts}
    assert "--price-table" not in spellings
    assert "--prices" in {o for p in _commands()["plan"].params for o in p.opts}


def test_models_lists_presets_with_their_sequence_length():
    r = run("models")
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("llama-3.1-70b "))
    assert "131,072" in line and "8,192" in line
    assert max(len(ln) for ln in r.stdout.splitlines()) <= 80
    one = json.loads(run("models", "llama-3-70b", "--json").stdout)
    assert one["pretrain_seq_len"] == 8192 and "source" in one
    bad = run("models", "gpt-99")
    assert bad.exit_code == 2 and "known:" in bad.stderr
