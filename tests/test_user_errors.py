"""UserError (field, value, rule) and the CLI's split between user errors and bugs."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from analysis.cli.common import run_guarded
from hwprofiles.errors import UserError
from hwprofiles.inputs import parse_json, read_text


def test_user_error_reads_as_field_value_rule():
    e = UserError("gpus", "x", "must be a whole number >= 1")
    assert str(e) == "gpus: 'x' must be a whole number >= 1"
    assert (e.field, e.value, e.rule) == ("gpus", "x", "must be a whole number >= 1")
    assert isinstance(e, ValueError)  # callers catching ValueError still catch it


def test_user_error_without_value_and_from_a_whole_message():
    assert str(UserError("config", rule="needs [model]")) == "config: needs [model]"
    e = UserError("tokens: -1 must be > 0")
    assert (e.field, e.rule, str(e)) == ("tokens", "-1 must be > 0", "tokens: -1 must be > 0")


def test_user_error_is_one_short_line_whatever_the_value():
    e = UserError("name", "a\nb" * 500, "is too long")
    assert "\n" not in str(e) and len(str(e)) < 120


def _app(fn) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def go() -> None:
        run_guarded(fn)

    return app


def test_run_guarded_prints_a_user_error_in_one_line_exit_2():
    def bad():
        raise UserError("tp", 3, "must divide 8")

    r = CliRunner().invoke(_app(bad), [])
    assert r.exit_code == 2
    assert r.output.strip() == "llmcap: error: tp: 3 must divide 8"


@pytest.mark.parametrize("exc", [KeyError("internal"), ValueError("internal"), TypeError("x")])
def test_run_guarded_reports_anything_else_as_a_bug_with_traceback(exc):
    def bad():
        raise exc

    r = CliRunner().invoke(_app(bad), [])
    assert r.exit_code == 1
    assert "Traceback" in r.output and "this is a bug in llmcap" in r.output


def test_input_readers_turn_os_errors_into_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"config: .* does not exist"):
        read_text(tmp_path / "missing.toml", "config")
    with pytest.raises(UserError, match="is a directory"):
        read_text(tmp_path, "config")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="not UTF-8"):
        read_text(tmp_path / "bin", "config")


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', "[" * 100_000, "{"])
def test_json_is_read_strictly(text):
    with pytest.raises(UserError, match=r"model: 'c\.json'"):
        parse_json(text, "model", "c.json")
