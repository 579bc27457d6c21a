"""Plan reports: markdown, self-contained HTML, CSV/JSON; reproducible and written atomically."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest

from analysis.planner import PlanRequest, plan
from analysis.planner.space import SearchSpace
from analysis.report import FILES, render_reports, write_reports
from analysis.report import markdown as md
from analysis.report.figures import FIGURES
from hwprofiles.catalogue import load_profile
from hwprofiles.profile import Provenance
from simulator.models_catalogue import load_model

SPACE = SearchSpace(max_cp=2, max_vpp=2, micro_batches=(1, 2), zero_stages=(0, 1))


@pytest.fixture(scope="module")
def result():
    h100 = load_profile("h100-sxm")
    calibrated = replace(
        load_profile("a100-80gb"),
        provenance=Provenance("calibrated", "2026-01-02", measured=("matmul_efficiency",)),
    )
    req = PlanRequest(
        model=load_model("llama-3-8b"),
        tokens=2e11,
        hardware=(h100, calibrated),
        gpus=(8, 16, 32),
        precisions=("bf16", "fp8"),
        seq_len=2048,
        global_batch=64,
        deadline_s=40 * 86400.0,
        space=SPACE,
        recheck=1,
    )
    return plan(req)


@pytest.fixture(scope="module")
def files(result):
    return render_reports(result, date="2026-02-03")


def test_every_file_is_rendered(files):
    assert set(FILES) <= set(files)
    for name in FIGURES:
        assert files[f"figures/{name}.png"].startswith(b"\x89PNG\r\n\x1a\n")


def test_html_is_self_contained_with_every_figure(files):
    page = files["report.html"].decode()
    assert page.count('src="data:image/png;base64,') == len(FIGURES)
    assert 'src="http' not in page and "href=" not in page
    assert "<link" not in page and "<script" not in page
    assert 'src="figures/' not in page


def test_markdown_states_inputs_date_and_provenance(result, files):
    text = files["report.md"].decode()
    for name in FIGURES:
        assert f"](figures/{name}.png)" in text
    assert "| date | 2026-02-03 |" in text
    assert "llama-3-8b" in text and "| tokens to train | 200B |" in text
    assert "h100-sxm: **datasheet** profile" in text
    assert "a100-80gb: **calibrated** profile (2026-01-02); measured: matmul_efficiency" in text
    assert "What the seed formulas would have predicted" in text
    assert "## Re-check with the SimPy engine" in text
    assert "64 sequences (given (--global-batch), exact)" in text
    rec = result.candidates[result.recommended]
    assert f"**Recommended (the cheapest to rent that meets the deadline): {rec.label}**" in text


def test_csv_and_json_hold_every_candidate(result, files):
    rows = list(csv.DictReader(io.StringIO(files["candidates.csv"].decode())))
    assert len(rows) == len(result.candidates) == 2 * 2 * 3
    fp8_a100 = [r for r in rows if r["hardware"] == "a100-80gb" and r["precision"] == "fp8"]
    assert all(r["feasible"] == "False" and "fp8" in r["reason"] for r in fp8_a100)
    doc = json.loads(files["plan.json"])
    assert doc["date"] == "2026-02-03"
    assert len(doc["candidates"]) == len(rows)
    feasible = [c for c in doc["candidates"] if c["feasible"]]
    assert all(c["step"]["engine"] == "analytic" for c in feasible)


def test_rendering_is_byte_identical(result, files):
    again = render_reports(result, date="2026-02-03")
    assert again == files


def test_write_reports_writes_nothing_when_rendering_fails(result, tmp_path, monkeypatch):
    import analysis.report as report

    def boom(_):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(report, "render_all", boom)
    with pytest.raises(RuntimeError):
        write_reports(result, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_write_reports_and_source_date_epoch(result, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    paths = write_reports(result, tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in paths} >= set(FILES)
    assert "| date | 1970-01-02 |" in (tmp_path / "report.md").read_text()


def test_markdown_table_escapes_pipes():
    assert md.table(["a"], [["x|y"]]).splitlines()[-1] == "| x\\|y |"
