"""Property tests of the command line: whatever the input, exit 0 or 2, never a traceback.

Hypothesis generates flag values, run files, hardware files, HF configs and output paths
(malformed, wrongly typed, non-finite, out of range, paths of every kind) and runs the commands
in-process (`CliRunner`). Every run must

- exit with 0 (it worked) or 2 (bad input), never 1 (a bug) or anything else;
- print no traceback, and on exit 2 exactly one ``llmcap: error:`` line on stderr;
- leave no temporary or partial file behind (on exit 2 nothing at all is written).

CI runs a fixed, derandomized budget (`EXAMPLES` per test, ~30 s in all on 2 cores). A longer
run with a fresh seed, as documented in docs/robustness.md::

    LLMCAP_FUZZ_EXAMPLES=5000 python -m pytest -q tests/test_fuzz_cli.py \\
        -p no:cacheprovider --hypothesis-seed=$RANDOM
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from analysis.cli.main import app

EXAMPLES = int(os.environ.get("LLMCAP_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="LLMCAP_FUZZ_EXAMPLES" not in os.environ,  # CI: the same examples every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

SMALL = ["--model", "gpt3-125m", "--gpus", "8", "--tp", "1", "--pp", "1", "--global-batch", "8"]
"""A setup that predicts in milliseconds, so that the budget goes to the odd inputs."""


# ----------------------------------------------------------------------------- values
ODD_TEXT = [
    "", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "1e300", "-1", "0",
    "0.0", "-0", "1.5", "2T", "1e-320", "abc", "8,16", ",", "1,,2", "\x00", "é", "a" * 300,
    "--json", "-", "/proc/x", "true", "[1]", "{a=1}",
]  # fmt: skip
odd_text = st.sampled_from(ODD_TEXT) | st.text(max_size=12)
odd_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 8, 2**31, 2**63, 1e300, 0.5]),
)
flag_value = odd_text | odd_number.map(str)

toml_scalar = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
)


def _nested(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)


toml_value = st.recursive(toml_scalar, _nested, max_leaves=5)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | odd_text,
    _nested,
    max_leaves=5,
)


# ----------------------------------------------------------------------------- checks
def invoke(args: list[str]) -> Any:
    return CliRunner().invoke(app, args)


def check_outcome(r: Any, args: list[str]) -> None:
    """Exit 0 or 2; no traceback; on 2, one error line naming something."""
    shown = f"args={args!r}\noutput={r.output[-2000:]}"
    event(f"exit {r.exit_code}")  # --hypothesis-show-statistics: accepted vs refused
    assert r.exit_code in (0, 2), shown
    assert "Traceback" not in r.output, shown
    if r.exception is not None:
        assert isinstance(r.exception, SystemExit), shown
    if r.exit_code == 2:
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("llmcap: error:")]
        assert len(errors) == 1, shown
        assert len(errors[0]) > len("llmcap: error: x"), shown


def leftovers(folder: Path) -> list[str]:
    """Temporary or lock files llmcap would have left in `folder` (recursively)."""
    return [
        str(p)
        for p in folder.rglob(".*")
        if p.name.endswith((".tmp", ".lock", ".old")) or ".tmp" in p.name
    ]


# ----------------------------------------------------------------------------- flags
SIMULATE_FLAGS = [
    "--gpus", "--tp", "--pp", "--vpp", "--cp", "--dp", "--zero", "--micro-batch",
    "--global-batch", "--seq-len", "--precision", "--recompute", "--tokens", "--hardware",
    "--model", "--gpus-per-node", "--engine",
]  # fmt: skip
DES_FLAGS = ["--jitter", "--speed-sigma", "--seed"]
PLAN_FLAGS = ["--deadline", "--budget", "--pue", "--grid-intensity", "--tokens", "--gpus"]


@FUZZ
@given(flags=st.lists(st.tuples(st.sampled_from(SIMULATE_FLAGS), flag_value), max_size=3))
def test_simulate_flags(flags: list[tuple[str, str]]) -> None:
    args = ["simulate", *SMALL] + [x for pair in flags for x in pair] + ["--json"]
    r = invoke(args)
    check_outcome(r, args)
    if r.exit_code == 0:
        json.loads(r.stdout)  # --json is valid JSON (no NaN) whenever it succeeds


@FUZZ
@given(flag=st.sampled_from(DES_FLAGS), value=flag_value)
def test_des_flags(flag: str, value: str) -> None:
    args = ["simulate", *SMALL, "--engine", "des", flag, value, "--json"]
    check_outcome(invoke(args), args)


@FUZZ
@given(flag=st.sampled_from(PLAN_FLAGS), value=flag_value)
def test_plan_flags(flag: str, value: str) -> None:
    base = ["plan", "--model", "gpt3-125m", "--tokens", "1e9", "--hardware", "h100-sxm"]
    args = [*base, "--gpus", "8", "--recheck", "0", "--no-progress", flag, value, "--json"]
    check_outcome(invoke(args), args)


@FUZZ
@given(gpus=flag_value, scale_out=st.none() | flag_value)
def test_scale_lists(gpus: str, scale_out: str | None) -> None:
    args = ["scale", "--gpus", gpus, "--model", "gpt3-125m", "--tp", "1", "--pp", "1", "--json"]
    if scale_out is not None:
        args += ["--scale-out", scale_out]
    check_outcome(invoke(args), args)


# ----------------------------------------------------------------------------- files
RUN_KEYS = {
    "parallelism": ["tp", "pp", "vpp", "cp", "dp", "sp", "zero"],
    "training": ["seq_len", "micro_batch", "global_batch", "precision", "recompute", "tokens"],
    "cluster": ["hardware", "gpus", "gpus_per_node", "scale_out", "oversubscription"],
    "options": ["attention", "dropout", "overlap_tp_comm", "comm_interference", "amp_casts"],
    "model": ["name", "hidden_size", "num_hidden_layers", "head_dim", "config", "bias"],
}


@st.composite
def run_files(draw: st.DrawFn) -> str:
    """A run TOML: the small setup with some values replaced, or malformed text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=40))
    doc: dict[str, Any] = {
        "model": {"name": "gpt3-125m"},
        "parallelism": {"tp": 1, "pp": 1},
        "training": {"global_batch": 8},
        "cluster": {"gpus": 8},
    }
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(RUN_KEYS)))
        key = draw(st.sampled_from(RUN_KEYS[section]) | st.text(min_size=1, max_size=6))
        doc.setdefault(section, {})[key] = draw(toml_value)
    return tomli_w.dumps(doc)


@FUZZ
@given(text=run_files())
def test_run_files(tmp_path: Path, text: str) -> None:
    p = tmp_path / "run.toml"
    p.write_text(text, encoding="utf-8")
    args = ["simulate", "--config", str(p), "--json"]
    check_outcome(invoke(args), args)


HW_KEYS = ["name", "base", "source", "accelerator", "gpus_per_node", "scale_up", "scale_out",
           "nics_per_node", "fabric", "price"]  # fmt: skip


@st.composite
def hardware_files(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=40))
    doc: dict[str, Any] = {"base": "dgx-h100"}
    for _ in range(draw(st.integers(1, 3))):
        doc[draw(st.sampled_from(HW_KEYS))] = draw(toml_value)
    if draw(st.booleans()):
        doc["fabric"] = {"oversubscription": draw(toml_value)}
    if draw(st.booleans()):
        doc["price"] = {"usd_per_gpu_hour": draw(toml_value), "date": "2026-01"}
    return tomli_w.dumps(doc)


@FUZZ
@given(text=hardware_files(), simulate=st.booleans())
def test_hardware_files(tmp_path: Path, text: str, simulate: bool) -> None:
    p = tmp_path / "hw.toml"
    p.write_text(text, encoding="utf-8")
    args = (
        ["simulate", *SMALL, "--hardware", str(p), "--json"]
        if simulate
        else ["hardware", str(p), "--json"]
    )
    check_outcome(invoke(args), args)


HF_BASE = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "vocab_size": 100,
    "intermediate_size": 128,
}
HF_KEYS = [*HF_BASE, "head_dim", "attention_bias", "mlp_bias", "num_key_value_heads",
           "tie_word_embeddings", "hidden_act", "num_local_experts", "max_position_embeddings",
           "_name_or_path", "n_embd", "text_config"]  # fmt: skip


@st.composite
def hf_configs(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(['{"a": NaN}', "[1]", "{", "", "[" * 5000]))
    doc = dict(HF_BASE)
    for _ in range(draw(st.integers(1, 3))):
        doc[draw(st.sampled_from(HF_KEYS))] = draw(json_value)
    doc["model_type"] = draw(st.sampled_from(["llama", "gpt2", "opt", "mpt", "qwen2"]) | odd_text)
    return json.dumps(doc, allow_nan=True)


@FUZZ
@given(text=hf_configs())
def test_hf_configs(tmp_path: Path, text: str) -> None:
    p = tmp_path / "config.json"
    p.write_text(text, encoding="utf-8")
    args = ["simulate", "--model", str(p), *SMALL[2:], "--json"]
    check_outcome(invoke(args), args)


# ----------------------------------------------------------------------------- paths
PATH_KINDS = ["dir", "file", "file_child", "missing_parent", "long", "proc", "empty",
              "relative", "new"]  # fmt: skip


def make_path(kind: str, root: Path) -> str:
    (root / "d").mkdir(exist_ok=True)
    (root / "f").write_text("keep")
    return {
        "dir": str(root / "d"),
        "file": str(root / "f"),
        "file_child": str(root / "f" / "x"),
        "missing_parent": str(root / "a" / "b" / "out"),
        "long": str(root / ("n" * 300)),
        "proc": "/proc/llmcap-fuzz/x",
        "empty": "",
        "relative": "rel/out",
        "new": str(root / "new"),
    }[kind]


OUTPUT_COMMANDS = {
    "trace": ["simulate", *SMALL, "--engine", "des", "--trace"],
    "plot": ["scale", "--gpus", "8,16", "--model", "gpt3-125m", "--tp", "1", "--pp", "1", "--plot"],
    "plan": ["plan", "--model", "gpt3-125m", "--tokens", "1e9", "--hardware", "h100-sxm",
             "--gpus", "8", "--recheck", "0", "--no-progress", "--out"],
}  # fmt: skip


@FUZZ
@given(command=st.sampled_from(sorted(OUTPUT_COMMANDS)), kind=st.sampled_from(PATH_KINDS))
def test_output_paths(tmp_path: Path, command: str, kind: str) -> None:
    root = Path(os.path.realpath(tmp_path)) / f"{command}-{kind}"
    root.mkdir()
    before = sorted(str(p) for p in root.rglob("*"))
    cwd = os.getcwd()
    os.chdir(root)  # relative paths land in the example's own folder
    try:
        path = make_path(kind, root)
        before = sorted(str(p) for p in root.rglob("*"))
        args = [*OUTPUT_COMMANDS[command], path, "--json"]
        if command == "plot":
            args[-2] = path + ("" if kind in ("dir", "file", "empty") else ".png")
        r = invoke(args)
    finally:
        os.chdir(cwd)
    check_outcome(r, args)
    assert leftovers(root) == [], args
    if r.exit_code == 2:
        assert sorted(str(p) for p in root.rglob("*")) == before, args  # nothing written
        assert "--" in r.stderr  # the flag is named


def test_fuzz_budget_is_bounded() -> None:
    """The CI budget stays small (the long run sets LLMCAP_FUZZ_EXAMPLES)."""
    if "LLMCAP_FUZZ_EXAMPLES" not in os.environ:
        assert EXAMPLES <= 50
    assert not math.isnan(EXAMPLES)


# ----------------------------------------------------------------------------- more commands
@FUZZ
@given(name=st.none() | st.sampled_from(["gpt3-125m", "llama-3-8b"]) | odd_text, js=st.booleans())
def test_models(name: str | None, js: bool) -> None:
    args = ["models", *([] if name is None else [name]), *(["--json"] if js else [])]
    r = invoke(args)
    check_outcome(r, args)
    if r.exit_code == 0 and js:
        json.loads(r.stdout)


SWEEP_AXIS_NAMES = ["gpus", "tp", "seed", "seq_len", "precision", "model", "engine", "jitter",
                    "scale_out_gbps", "options.dropout", "days", "jobs", "zero", "sp"]  # fmt: skip
small_range = st.fixed_dictionaries(
    {"from": odd_number, "to": odd_number},
    optional={"step": odd_number, "times": odd_number, "by": st.integers()},
)


@st.composite
def grid_files(draw: st.DrawFn) -> str:
    """A sweep grid TOML: a tiny analytic/DES grid with odd axes, ranges and keys, or text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=40))
    doc: dict[str, Any] = {
        "sweep": {"engine": draw(st.sampled_from(["analytic", "des"]) | odd_text)},
        "base": {"model": {"name": "gpt3-125m"}, "cluster": {"gpus": 8}},
        "axes": {},
    }
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(SWEEP_AXIS_NAMES) | st.text(min_size=1, max_size=6))
        doc["axes"][name] = draw(toml_value | small_range)
    if draw(st.booleans()):
        section = draw(st.sampled_from(["sweep", "base", "axes", "bogus"]))
        doc.setdefault(section, {})[draw(st.text(min_size=1, max_size=6))] = draw(toml_value)
    return tomli_w.dumps(doc)


@FUZZ
@given(text=grid_files(), fmt=st.sampled_from(["csv", "parquet"]) | odd_text)
def test_sweep_grids(tmp_path: Path, text: str, fmt: str) -> None:
    import analysis.sweep.grid as grid_module

    limit = grid_module.MAX_SWEEP_POINTS
    grid_module.MAX_SWEEP_POINTS = 4  # tiny grids only: the limit's refusal is fuzzed too
    try:
        root = Path(tempfile.mkdtemp(dir=tmp_path))
        g = root / "grid.toml"
        g.write_text(text, encoding="utf-8")
        out = root / "out"
        args = ["sweep", str(g), "--out", str(out), "--format", fmt, "--no-progress", "--json"]
        r = invoke(args)
    finally:
        grid_module.MAX_SWEEP_POINTS = limit
    check_outcome(r, args)
    assert leftovers(tmp_path) == [], args
    if r.exit_code == 2:
        assert not out.exists(), args  # refused before anything is written


@FUZZ
@given(kind=st.sampled_from(PATH_KINDS), metric=st.none() | odd_text)
def test_sweep_plot_paths(tmp_path: Path, kind: str, metric: str | None) -> None:
    root = Path(tempfile.mkdtemp(dir=os.path.realpath(tmp_path)))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        args = ["sweep", "--plot", make_path(kind, root)]
        args += [] if metric is None else ["--metric", metric]
        r = invoke(args)
    finally:
        os.chdir(cwd)
    check_outcome(r, args)


CLUSTER = ["cluster", "--jobs", str(Path(__file__).resolve().parent.parent / "examples" /
           "jobmix.toml"), "--hardware", "h100-sxm:512,a100-80gb:256", "--no-figures"]  # fmt: skip
CLUSTER_FLAGS = ["--days", "--seed", "--policy", "--hardware", "--placement", "--add",
                 "--target-delay", "--replicas", "--jobs"]  # fmt: skip


def _long_days(v: str) -> bool:
    """A --days value that would simulate more than a few hours (too slow for a fuzz example)."""
    try:
        return float(v) > 0.3
    except ValueError:
        return False


@FUZZ
@given(flag=st.sampled_from(CLUSTER_FLAGS), value=flag_value.filter(lambda v: not _long_days(v)))
def test_cluster_flags(tmp_path: Path, flag: str, value: str) -> None:
    args = [*CLUSTER, "--days", "0.1", flag, value, "--json"]
    if flag in ("--target-delay", "--replicas"):
        args += ["--add", "b200:64"] + (["--replicas", "1"] if flag != "--replicas" else [])
    if flag == "--replicas" and value.strip().isdigit() and int(value) > 2:
        return  # each replica is a whole simulation: bounded by the user, not fuzzed
    r = invoke(args)
    check_outcome(r, args)
    if r.exit_code == 0:
        json.loads(r.stdout)


class _Started(SystemExit):
    """Raised where a real measurement would begin: the input was accepted."""


@pytest.fixture
def no_real_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """calibrate and validate stop (exit 0) where torch work would start."""

    def stop(*a: Any, **k: Any) -> None:
        raise _Started(0)

    import analysis.cli.calibrate as cal
    import validation.validate as val

    monkeypatch.setattr(cal, "_locked", stop)
    monkeypatch.setattr(val, "resolve_hardware", stop)
    monkeypatch.setenv("LLMCAP_HOME", str(tmp_path / "home"))


CALIBRATE_FLAGS = ["--device", "--dtypes", "--world-sizes", "--threads-per-rank", "--timeout",
                   "--name", "--attention-shape", "--level", "--out"]  # fmt: skip


@FUZZ
@given(
    flags=st.lists(st.tuples(st.sampled_from(CALIBRATE_FLAGS), flag_value), min_size=1, max_size=2)
)
def test_calibrate_arguments(tmp_path: Path, no_real_runs: None, flags: list) -> None:
    args = ["calibrate", "--quick", "--out", str(tmp_path / "prof")]
    args += [x for pair in flags for x in pair] + ["--json"]
    check_outcome(invoke(args), args)
    assert leftovers(tmp_path) == [], args


VALIDATE_FLAGS = ["--nproc", "--model", "--steps", "--rounds", "--precision", "--strategy",
                  "--link-bandwidth", "--hardware", "--warmup", "--comm-pairs", "--device",
                  "--threads-per-rank", "--seed", "--engines", "--hang-timeout",
                  "--start-timeout", "--alert", "--metrics-port", "--inject", "--out",
                  "--repredict"]  # fmt: skip


@FUZZ
@given(
    flags=st.lists(st.tuples(st.sampled_from(VALIDATE_FLAGS), flag_value), min_size=1, max_size=2)
)
def test_validate_arguments(tmp_path: Path, no_real_runs: None, flags: list) -> None:
    args = ["validate", "--nproc", "1", "--model", "tiny", "--steps", "2"]
    args += [x for pair in flags for x in pair] + ["--json"]
    check_outcome(invoke(args), args)
    assert leftovers(tmp_path) == [], args
