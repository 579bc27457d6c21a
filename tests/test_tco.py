"""Owning vs renting (`analysis.planner.tco`), provider classes, the smallest-cluster solver and
`plan --own` end to end, with its one-line errors."""

from __future__ import annotations

import math
import re

import pytest
from typer.testing import CliRunner

from analysis.cli.main import app
from analysis.planner import PlanRequest
from analysis.planner.smallest import smallest_cluster
from analysis.planner.tco import HOURS_PER_YEAR, OwnershipParams, fabric, ownership_cost
from hwprofiles.catalogue import load_profile
from hwprofiles.errors import UserError
from hwprofiles.ownership import load_ownership
from hwprofiles.prices import load_price_rows, select_prices
from simulator.models_catalogue import load_model

runner = CliRunner()


def params(**kw):
    return OwnershipParams.from_data(load_ownership(), **kw)


def test_fat_tree_tiers_ports_and_optics():
    assert fabric(1, 64, 1.0) == (0, 0.0, 0.0)
    assert fabric(64, 64, 1.0) == (1, 1.0, 2.0)
    assert fabric(65, 64, 1.0) == (2, 3.0, 4.0)
    assert fabric(2049, 64, 1.0) == (3, 5.0, 6.0)
    tiers, ports, optics = fabric(1000, 64, 2.0)  # 2:1 at the leaf halves the uplinks
    assert (tiers, ports, optics) == (2, 2.0, 3.0)


def test_capex_parts_run_cost_and_break_even_add_up():
    hw = load_profile("h100-sxm")
    p, d = params(), load_ownership()
    o = ownership_cost(hw, 1024, 20 * 86400, 1.5e6, p, d, rent_usd_per_gpu_hour=3.0)
    assert o.nodes == 128 and o.fabric_tiers == 2
    assert o.servers_usd == 128 * d.nodes["dgx-h100"].server_usd
    parts = o.servers_usd + o.network_usd + o.storage_usd + o.installation_usd
    assert o.capex_usd == pytest.approx(parts)
    assert o.power_w == pytest.approx(1.5e6 * p.pue)
    assert o.rent_usd == pytest.approx(1024 * 3.0 * 20 * 24)
    # at the break-even utilisation, an owned busy hour costs what a rented hour does
    be = o.break_even_utilisation
    assert 0 < be < 1
    own_h = o.fixed_usd_per_year / (HOURS_PER_YEAR * be) + o.power_w / 1e3 * p.usd_per_kwh
    assert own_h == pytest.approx(1024 * 3.0)
    # the run's fixed share scales as 1 / utilisation; its power does not
    o2 = ownership_cost(hw, 1024, 20 * 86400, 1.5e6, params(utilisation=0.35), d, 3.0)
    assert o2.run_fixed_usd == pytest.approx(2 * o.run_fixed_usd)
    assert o2.run_power_usd == pytest.approx(o.run_power_usd)


def test_rent_that_does_not_cover_power_never_breaks_even():
    o = ownership_cost(load_profile("h100-sxm"), 8, 3600, 1e7, params(), load_ownership(), 0.01)
    assert math.isinf(o.break_even_utilisation) and o.payback_years is None


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"utilisation": 0.0}, "utilisation"),
        ({"utilisation": 1.5}, "utilisation"),
        ({"utilisation": math.nan}, "utilisation"),
        ({"years": 0.0}, "years"),
        ({"years": -2.0}, "years"),
        ({"usd_per_kwh": -0.1}, "power-price"),
        ({"usd_per_kwh": math.nan}, "power-price"),
        ({"pue": 0.9}, "pue"),
    ],
)
def test_bad_ownership_parameters_name_the_field(kw, field):
    with pytest.raises(UserError) as e:
        params(**kw)
    assert str(e.value).startswith(f"{field}:")


def test_one_price_class_for_every_gpu():
    rows = load_price_rows()
    chosen, cls, missing = select_prices(rows, ["h100-sxm", "b200", "mi300x"])
    assert cls == "gpu-cloud" and not missing
    assert {p.price_class for p in chosen.values()} == {"gpu-cloud"}
    for p in chosen.values():
        assert p.date and p.source and p.usd_per_gpu_hour > 0
    chosen, cls, missing = select_prices(rows, ["h100-sxm", "b200"], "hyperscaler-on-demand")
    assert missing == ["b200"] and chosen["h100-sxm"].price_class == cls


def test_your_quotes_win_and_bad_prices_are_rejected(tmp_path):
    own = tmp_path / "q.toml"
    own.write_text("[h100-sxm]\nusd_per_gpu_hour = 2.1\n[b200]\nusd_per_gpu_hour = 4.0\n")
    chosen, cls, _ = select_prices(load_price_rows(own), ["h100-sxm", "b200"])
    assert cls == "quote" and chosen["h100-sxm"].usd_per_gpu_hour == 2.1
    for bad in ("-1.0", "nan"):
        f = tmp_path / "bad.toml"
        f.write_text(f"[h100-sxm]\nusd_per_gpu_hour = {bad}\n")
        with pytest.raises(UserError, match="usd_per_gpu_hour"):
            load_price_rows(f)


def test_smallest_cluster_is_minimal_over_whole_nodes():
    hw = load_profile("h100-sxm")
    req = PlanRequest(
        model=load_model("llama-3-8b"),
        tokens=1e11,
        hardware=(hw,),
        gpus=(128,),
        deadline_s=5 * 86400,
        recheck=0,
    )
    s = smallest_cluster(req, hw, "bf16", 128)
    assert s.gpus is not None and s.gpus % 8 == 0 and s.days <= 5
    smaller = smallest_cluster(
        PlanRequest(**{**req.__dict__, "gpus": (s.gpus - 8,)}), hw, "bf16", s.gpus - 8
    )
    assert smaller.gpus is None  # one node fewer cannot make it


QUESTION = [
    "plan",
    "--model",
    "llama-3-70b",
    "--tokens",
    "2T",
    "--hardware",
    "h100-sxm,b200,mi300x",
    "--gpus",
    "512,1024",
    "--deadline",
    "30",
    "--recheck",
    "0",
    "--no-progress",
]


@pytest.mark.slow
def test_the_30_day_question_owned(tmp_path):
    r = runner.invoke(app, [*QUESTION, "--own", "--out", str(tmp_path)], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    head = r.stdout.split("Smallest cluster")[0]  # everything at the recommendation
    for word in (
        "Recommended",
        "capex",
        "opex",
        "per M tokens",
        "break-even",
        "prices",
        "gpu-cloud",
        "caveat",
    ):
        assert word in head, word
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    for text in (md, html):
        for word in (
            "capex",
            "opex",
            "per M tokens",
            "break-even",
            "/GPU-h",
            "What would change the answer",
            "Smallest cluster meeting 30 days",
        ):
            assert word in text, word
    assert re.search(r"\| rent \| \$[\d.]+[kM] \(", md)


@pytest.mark.parametrize(
    "extra,field",
    [
        (["--own", "--utilisation", "0"], "utilisation"),
        (["--own", "--utilisation", "1.5"], "utilisation"),
        (["--own", "--utilisation", "nan"], "utilisation"),
        (["--own", "--years", "0"], "years"),
        (["--own", "--power-price", "-0.1"], "power-price"),
        (["--own", "--power-price", "nan"], "power-price"),
        (["--utilisation", "0.5"], "utilisation"),
        (["--price-class", "cheap"], "price-class"),
        (["--out", "README.md"], "--out"),
        (["--out", "/proc/llmcap/x"], "--out"),
    ],
)
def test_bad_input_one_line_exit_2(extra, field):
    r = runner.invoke(app, [*QUESTION[:7], "--gpus", "8", "--no-progress", *extra])
    assert r.exit_code == 2, r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"llmcap: error: {field}:"), r.stderr


def test_negative_price_file_one_line(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[h100-sxm]\nusd_per_gpu_hour = -3\n")
    r = runner.invoke(app, [*QUESTION[:7], "--gpus", "8", "--prices", str(f)])
    assert r.exit_code == 2
    assert "usd_per_gpu_hour" in r.stderr and len(r.stderr.strip().splitlines()) == 1
