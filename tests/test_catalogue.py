"""The hardware catalogue: data files, preset loading, user files, prices and `llmcap hardware`."""

from __future__ import annotations

import json
import math
import sys
import types
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from hwprofiles import catalogue, presets
from hwprofiles.catalogue import (
    default_node,
    known_hardware,
    list_accelerators,
    list_links,
    list_nodes,
    load_prices,
    load_profile,
)
from hwprofiles.describe import describe_profile, half_size
from hwprofiles.presets import sustained_fraction
from hwprofiles.profile import HardwareProfile

SUSTAINED = sustained_fraction()[0]

DATA_FILES = ("accelerators", "links", "nodes", "prices")


# ------------------------------------------------------------------ every number has a source
def _unsourced(table: dict, path: str = "") -> tuple[list[str], int]:
    """Keys holding a number (or a numeric string like "400 Gb/s") with no source; and a count."""
    missing, checked = [], 0
    for key, value in table.items():
        where = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            m, c = _unsourced(value, where)
            missing += m
            checked += c
            continue
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        numeric |= isinstance(value, str) and value[:1].isdigit()
        if not numeric or key.endswith("source") or not path:  # top-level `revised` is a date
            continue
        checked += 1
        cite = table.get(f"{key}_source") or table.get("source")
        if not (isinstance(cite, str) and cite.strip()):
            missing.append(where)
    return missing, checked


def test_source_checker_flags_a_bare_number() -> None:
    missing, checked = _unsourced({"x": {"tdp_w": 700, "rate": "400 Gb/s"}})
    assert missing == ["x.tdp_w", "x.rate"] and checked == 2
    assert _unsourced({"x": {"tdp_w": 700, "tdp_w_source": "datasheet"}})[0] == []


@pytest.mark.parametrize("name", DATA_FILES)
def test_every_number_in_data_files_has_a_source(name: str) -> None:
    text = resources.files("hwprofiles").joinpath("data", f"{name}.toml").read_text("utf-8")
    missing, checked = _unsourced(tomllib.loads(text))
    assert checked >= 20, f"{name}.toml: only {checked} numbers found; checker broken?"
    assert missing == [], f"{name}.toml: numbers without a source: {missing}"


def test_every_accelerator_field_is_cited() -> None:
    fields = {"peak_flops", "memory_bytes", "memory_bandwidth_bytes_per_s", "memory_efficiency"}
    fields |= {"tdp_w", "idle_w", "matmul_efficiency", "attention_efficiency"}
    for name, acc in list_accelerators().items():
        assert fields <= set(acc.sources), name
        assert all(acc.sources[f].strip() for f in fields), name
    for name, link in list_links().items():
        assert link.source.strip(), name


# ------------------------------------------------------------------ per-direction convention
@pytest.mark.parametrize(
    ("link", "bytes_per_s"),
    [
        ("nvlink2", 150e9),  # "300 GB/s" both directions (V100 datasheet)
        ("nvlink3", 300e9),  # "600 GB/s" both directions (A100 datasheet)
        ("nvlink4", 450e9),  # "900 GB/s" both directions (H100 datasheet)
        ("nvlink5", 900e9),  # "1.8 TB/s" both directions (HGX B200)
        ("xgmi", 448e9),  # 7 links x 128 GB/s bidirectional (MI300X data sheet)
        ("pcie4", 31.5e9),  # 16 GT/s x 16 x 128/130 / 8
        ("edr", 12.5e9),
        ("hdr", 25e9),
        ("ndr", 50e9),  # "400 Gb/s" per direction
        ("xdr", 100e9),
        ("ethernet-10", 1.25e9),
    ],
)
def test_links_are_per_direction(link: str, bytes_per_s: float) -> None:
    assert list_links()[link].bandwidth_bytes_per_s == pytest.approx(bytes_per_s, rel=1e-9)


def test_link_latencies_follow_nccl_tuning_model() -> None:
    links = list_links()
    # NCCL src/graph/tuning.cc hwLat[*][Ring][LL]: NVLink 0.6 us, PCI 1.0 us, NET 2.7 us.
    assert links["nvlink4"].latency_s == pytest.approx(0.6e-6)
    assert links["pcie4"].latency_s == pytest.approx(1.0e-6)
    assert links["ndr"].latency_s == pytest.approx(2.7e-6)
    assert links["nvlink4"].efficiency == pytest.approx(370 / 450, abs=0.01)  # NCCL maintainer
    assert all(0 < link.efficiency <= 1 for link in links.values())


# ------------------------------------------------------------------ presets
@pytest.mark.parametrize("name", known_hardware())
def test_every_preset_loads(name: str) -> None:
    p = load_profile(name)
    assert isinstance(p, HardwareProfile)
    assert p.provenance.kind == "datasheet" and p.provenance.date
    assert p.node.gpus_per_node >= 1 and p.node.nics_per_node >= 1
    assert p.node.scale_out_bytes_per_s > 0
    assert 0 <= p.power.idle_w < p.power.tdp_w == p.accelerator.tdp_w
    acc = p.accelerator
    assert acc.memory_bytes > 2**30 and acc.memory_bandwidth_bytes_per_s > 1e9
    assert max(acc.peak_flops.values()) > 1e12
    assert p.price_per_gpu_hour_usd is None or p.price_per_gpu_hour_usd > 0


def test_catalogue_covers_the_required_devices() -> None:
    accels = {"v100-32gb", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "b200"}
    accels |= {"mi300x", "l40s", "cpu"}
    assert accels <= set(list_accelerators())
    nodes = {"dgx-a100", "dgx-a100-40gb", "dgx-h100", "hgx-h200", "dgx-b200", "mi300x-platform"}
    nodes |= {"l40s-server", "cpu-host", "dgx-2"}
    assert nodes <= set(list_nodes())
    links = {"nvlink2", "nvlink3", "nvlink4", "nvlink5", "xgmi", "pcie3", "pcie4", "pcie5"}
    links |= {"edr", "hdr", "ndr", "xdr", "roce-100", "roce-200", "roce-400", "shm"}
    links |= {"ethernet-10", "ethernet-25", "ethernet-100"}
    assert links <= set(list_links())
    for accel in list_accelerators():  # every accelerator name means some node
        assert list_nodes()[default_node(accel)].accelerator == accel


def test_dtypes_a_device_lacks_are_absent() -> None:
    accs = list_accelerators()
    assert set(accs["v100-32gb"].peak_flops) == {"fp32", "fp16"}  # no bf16/tf32/fp8 on Volta
    assert "fp8" not in accs["a100-80gb"].peak_flops  # no fp8 on Ampere
    with pytest.raises(ValueError, match=r"bf16.*not supported by v100-32gb"):
        accs["v100-32gb"].peak("bf16")


def test_datasheet_peaks_are_dense() -> None:
    accs = list_accelerators()
    # Dense peaks used by the published runs (shared/reference/README.md): A100 312, H100 989.
    assert accs["a100-80gb"].peak("bf16") == pytest.approx(312e12)
    assert accs["h100-sxm"].peak("bf16") == pytest.approx(989e12, rel=1e-3)
    assert accs["h100-sxm"].peak("fp8") == pytest.approx(1979e12, rel=1e-3)
    assert accs["v100-32gb"].peak("fp16") == pytest.approx(125e12)
    assert accs["a100-80gb"].memory_bytes == 80 * 2**30


def test_default_node_for_a100_80gb_is_dgx_a100_on_hdr() -> None:
    p = load_profile("a100-80gb")
    assert p.node.name == "dgx-a100" and p.node.gpus_per_node == 8
    assert p.node.scale_up.name == "nvlink3"
    assert p.node.scale_out.name == "hdr" and p.node.nics_per_node == 8
    assert p.node.scale_out.bandwidth_bytes_per_s == pytest.approx(25e9)
    assert (p.fabric.topology, p.fabric.oversubscription) == ("fat-tree", 1.0)
    assert p.accelerator.name == "a100-80gb"


# ------------------------------------------------------------------ efficiency curves
def _all_curves():
    for name, acc in list_accelerators().items():
        for dtype, curve in acc.matmul_efficiency_by_dtype.items():
            yield f"{name}/matmul/{dtype}", curve
        yield f"{name}/attention", acc.attention_efficiency


@pytest.mark.parametrize(("label", "curve"), list(_all_curves()), ids=lambda x: str(x)[:30])
def test_efficiency_curves_are_monotone_fractions(label: str, curve) -> None:
    fr = np.asarray(curve.fractions)
    assert np.all(np.diff(fr) >= 0), label
    assert np.all((fr > 0) & (fr <= 1)), label
    assert curve.at(1e16) == pytest.approx(curve.max_fraction, rel=0.01)
    assert curve.at(1e3) < 0.1 * curve.max_fraction  # tiny kernels are overhead-bound
    assert curve.source


def test_half_efficiency_size_is_peak_times_fraction_times_overhead() -> None:
    acc = list_accelerators()["h100-sxm"]
    mm = acc.matmul_efficiency
    k = SUSTAINED  # catalogue-wide share of the isolated-kernel maximum a training step keeps
    expected = 989.5e12 * 0.803 * k * 4e-6  # peak x MAMF x sustained x 4 us kernel overhead
    assert half_size(mm) == pytest.approx(expected, rel=0.03)
    assert mm.at(expected) == pytest.approx(0.803 * k / 2, rel=0.03)
    assert "4e-06 s" in mm.source and "ml-engineering" in mm.source
    assert "sustained" in mm.source
    # fp32 runs 989.5/67 times slower, so the same overhead is hidden by a smaller GEMM.
    fp32 = acc.matmul_curve("fp32")
    assert half_size(fp32) == pytest.approx(67e12 * 0.803 * k * 4e-6, rel=0.03)
    assert acc.matmul_curve("fp8").max_fraction == pytest.approx(0.709 * k, abs=0.002)


def test_matmul_fractions_match_mamf_measurements() -> None:
    accs = list_accelerators()  # stas00/ml-engineering MAMF table (bf16, v2), times sustained
    k = SUSTAINED
    assert 0.5 <= k <= 1.0
    eff = {n: accs[n].matmul_efficiency.max_fraction for n in ("a100-80gb", "h100-sxm", "mi300x")}
    assert eff["a100-80gb"] == pytest.approx(271.2 / 312 * k, abs=0.002)
    assert eff["h100-sxm"] == pytest.approx(794.5 / 989 * k, abs=0.002)
    assert eff["mi300x"] == pytest.approx(668.4 / 1307.4 * k, abs=0.002)
    # FlashAttention-2 on H100: 35% of peak (FA3 paper abstract), times sustained
    assert accs["h100-sxm"].attention_efficiency.max_fraction == pytest.approx(0.35 * k, abs=0.002)


# ------------------------------------------------------------------ user files
def _write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_user_file_base_plus_overrides(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
name = "h100-94"
base = "dgx-h100"
gpus_per_node = 4

[accelerator.memory]
capacity_gib = 94

[scale_out]
base = "ndr"
rate = "200 Gb/s"

[fabric]
oversubscription = 2.0
source = "our leaf switches: 2:1"
""",
    )
    p = load_profile(path)
    stock = load_profile("dgx-h100")
    assert p.name == "h100-94"
    assert p.accelerator.memory_bytes == 94 * 2**30
    assert p.accelerator.peak_flops == stock.accelerator.peak_flops  # untouched fields stay
    assert p.accelerator.sources["memory_bytes"] == "user file mine.toml"
    assert p.accelerator.sources["memory_bandwidth_bytes_per_s"].startswith("NVIDIA H100")
    assert p.node.gpus_per_node == 4 and p.node.nics_per_node == 8
    assert p.node.scale_out.bandwidth_bytes_per_s == pytest.approx(25e9)
    assert p.node.scale_out.latency_s == stock.node.scale_out.latency_s
    assert "user file mine.toml" in p.node.scale_out.source
    assert p.fabric.oversubscription == 2.0 and "2:1" in p.fabric.source
    assert p.price_per_gpu_hour_usd == stock.price_per_gpu_hour_usd  # still an H100


def test_user_file_accelerator_base_means_its_default_node(tmp_path: Path) -> None:
    path = _write(tmp_path, 'base = "a100-80gb"\n[price]\nusd_per_gpu_hour = 1.5\ndate = "2026"\n')
    p = load_profile(path)
    assert p.node.scale_out.name == "hdr" and p.accelerator.name == "a100-80gb"
    assert p.price_per_gpu_hour_usd == 1.5 and "mine.toml" in p.price_source


def test_fully_custom_user_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
gpus_per_node = 4
scale_out = "roce-200"
nics_per_node = 4
source = "vendor briefing"

[accelerator]
name = "npu-1"
peak_tflops = { bf16 = 500, fp32 = 50 }
memory = { capacity_gib = 64, bandwidth_gb_per_s = 2000, efficiency = 0.85 }
power = { tdp_w = 500, idle_w = 60 }

[accelerator.efficiency]
matmul_max_fraction = 0.7
attention_max_fraction = 0.5
kernel_overhead_us = 5

[scale_up]
rate = "400 GB/s"
rate_is = "bidirectional"
latency_us = 1.0
efficiency = 0.8
""",
    )
    p = load_profile(path)
    assert p.accelerator.name == "npu-1" and p.accelerator.peak("bf16") == 500e12
    # user fractions are isolated-kernel maxima too: the catalogue's sustained share applies
    assert half_size(p.accelerator.matmul_efficiency) == pytest.approx(
        500e12 * 0.7 * SUSTAINED * 5e-6, rel=0.03
    )
    assert p.node.scale_up.bandwidth_bytes_per_s == pytest.approx(200e9)
    assert p.price_per_gpu_hour_usd is None


def test_user_file_half_size_and_one_peak_override(tmp_path: Path) -> None:
    text = 'base = "h100-sxm"\n[accelerator.peak_tflops]\nbf16 = 900\n'
    text += "[accelerator.efficiency]\nmatmul_half_flops = 1e10\n"
    p = load_profile(_write(tmp_path, text))
    acc = p.accelerator
    assert acc.peak("bf16") == 900e12 and acc.peak("fp8") == pytest.approx(1979e12)
    assert "bf16: user file mine.toml" in acc.sources["peak_flops"]
    assert half_size(acc.matmul_efficiency) == pytest.approx(1e10, rel=0.03)
    # the implied overhead (1e10 / (900e12 * 0.803)) carries over to fp32 in proportion to its peak
    assert half_size(acc.matmul_curve("fp32")) == pytest.approx(1e10 * 67 / 900, rel=0.03)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'base = "dgx-h100"\n[accelerator.memory]\ncapacity_gib = -5\n',
            r"capacity_gib: -5 must be > 0",
        ),
        ('base = "dgx-h100"\ngpus_per_nodes = 8\n', r"gpus_per_nodes: unknown key"),
        (
            'base = "dgx-h100"\ngpus_per_node = "eight"\n',
            r"gpus_per_node: 'eight' must be an integer",
        ),
        (
            'base = "dgx-h100"\nscale_out = "infiniband"\n',
            r"scale_out: 'infiniband' is not a known link",
        ),
        (
            'base = "dgx-h100"\n[scale_out]\nbase = "ndr"\nrate = "fast"\n',
            r"scale_out.rate: .*'fast'",
        ),
        (
            'base = "dgx-h100"\n[fabric]\noversubscription = 0.5\n',
            r"oversubscription: 0.5 must be >= 1",
        ),
        (
            'base = "dgx-h100"\n[accelerator.efficiency]\nmatmul_max_fraction = 1.3\n',
            r"matmul_max_fraction: 1.3 must be <= 1",
        ),
        ('base = "dgx-h999"\n', r"base: 'dgx-h999' is not a preset"),
        ("gpus_per_node = 8\n", r"accelerator: missing"),
        ("base = [unclosed\n", r"not valid TOML"),
    ],
)
def test_malformed_user_file_names_the_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        load_profile(_write(tmp_path, text))


# ------------------------------------------------------------------ names, overrides, dispatch
def test_unknown_name_lists_known_presets() -> None:
    with pytest.raises(ValueError, match="hardware: 'xyz' is not a preset or a file") as info:
        load_profile("xyz")
    assert "dgx-a100" in str(info.value) and "h100-sxm" in str(info.value)


def test_empty_name_is_rejected_not_taken_as_cwd() -> None:
    with pytest.raises(ValueError, match="hardware: '' is empty"):
        load_profile("")


def test_keyword_overrides() -> None:
    p = load_profile("h100-sxm", gpus_per_node=4, scale_out="roce-400", nics_per_node=2)
    assert (p.node.gpus_per_node, p.node.scale_out.name, p.node.nics_per_node) == (4, "roce-400", 2)
    p = load_profile("dgx-h100", oversubscription=2, topology="rail-optimized")
    assert p.fabric.oversubscription == 2.0 and p.fabric.topology == "rail-optimized"
    with pytest.raises(ValueError, match="gpus_per_node: 0 must be an integer >= 1"):
        load_profile("h100-sxm", gpus_per_node=0)
    with pytest.raises(ValueError, match=r"scale_out: 'ib' is not a known link \(known: .*ndr"):
        load_profile("h100-sxm", scale_out="ib")
    with pytest.raises(ValueError, match=r"oversubscription: 0\.5 must be a number >= 1"):
        load_profile("h100-sxm", oversubscription=0.5)
    with pytest.raises(ValueError, match="topology: 'torus'"):
        load_profile("h100-sxm", topology="torus")


def test_directory_dispatches_to_calibration_loader(tmp_path, monkeypatch) -> None:
    stock = load_profile("cpu")
    seen: list[Path] = []

    def fake_loader(path):
        seen.append(Path(path))
        return stock

    loader = types.ModuleType("hwprofiles.calibration.loader")
    loader.load_calibrated_profile = fake_loader
    store = types.ModuleType("hwprofiles.calibration.store")
    store.find_saved = lambda name: tmp_path if name == "my-box" else None
    monkeypatch.setitem(sys.modules, "hwprofiles.calibration.loader", loader)
    monkeypatch.setitem(sys.modules, "hwprofiles.calibration.store", store)
    assert load_profile(tmp_path, gpus_per_node=3).node.gpus_per_node == 3
    assert load_profile("my-box") is not None and seen == [tmp_path, tmp_path]
    with pytest.raises(ValueError, match="'other-box' is not a preset"):
        load_profile("other-box")


# ------------------------------------------------------------------ prices
def test_prices_have_dates_and_sources_and_accept_overrides(tmp_path: Path) -> None:
    prices = load_prices()
    h100 = prices["h100-sxm"]
    assert (
        h100.usd_per_gpu_hour == pytest.approx(98.32 / 8)
        and h100.date
        and "p5.48xlarge" in h100.source
    )
    assert all(p.date and p.source and p.usd_per_gpu_hour > 0 for p in prices.values())
    raw = presets.tables("prices")  # a per-GPU price derived from an instance price agrees
    for key, row in raw.items():
        if "instance_usd_per_hour" in row:
            per_gpu = row["instance_usd_per_hour"] / row["gpus_per_instance"]
            assert row["usd_per_gpu_hour"] == pytest.approx(per_gpu, rel=1e-4), key
    own = _write(tmp_path, '[h100-sxm]\nusd_per_gpu_hour = 2.1\ndate = "2026-10"\n', "p.toml")
    mine = load_prices(own)
    assert (
        mine["h100-sxm"].usd_per_gpu_hour == 2.1 and mine["h100-sxm"].source == "user file p.toml"
    )
    assert mine["a100-80gb"] == prices["a100-80gb"]
    assert load_profile("dgx-h100", prices=own).price_per_gpu_hour_usd == 2.1
    bad = _write(tmp_path, "[h100-sxm]\nusd_per_gpu_hour = -1\n", "bad.toml")
    with pytest.raises(ValueError, match="usd_per_gpu_hour: -1 must be > 0"):
        load_prices(bad)


def test_describe_profile_is_json_ready_and_sourced() -> None:
    d = describe_profile(load_profile("dgx-a100"))
    json.dumps(d, allow_nan=False)
    q = d["quantities"]
    assert q["node.scale_up.bandwidth_bytes_per_s"]["value"] == pytest.approx(300e9)
    assert q["accelerator.peak_flops.bf16"]["unit"] == "FLOP/s"
    assert q["node.scale_out_bytes_per_s"]["value"] == pytest.approx(8 * 25e9 * 0.9)
    numbers = [v for v in q.values() if isinstance(v["value"], (int, float))]
    assert numbers and all(v["source"] for v in numbers)


# ------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def test_cli_lists_catalogue_as_json(runner: CliRunner) -> None:
    from analysis.cli.main import app

    result = runner.invoke(app, ["hardware", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["links"]["nvlink4"]["bandwidth_bytes_per_s"] == pytest.approx(450e9)
    assert data["links"]["ndr"]["bandwidth_bytes_per_s"] == pytest.approx(50e9)
    assert data["accelerators"]["a100-80gb"]["default_node"] == "dgx-a100"
    assert data["nodes"]["dgx-h100"]["nics_per_node"] == 8
    assert set(data["accelerators"]) == set(list_accelerators())


def test_cli_shows_one_profile(runner: CliRunner) -> None:
    from analysis.cli.main import app

    result = runner.invoke(app, ["hardware", "a100-80gb", "--json"])
    assert result.exit_code == 0, result.output
    q = json.loads(result.stdout)["quantities"]
    assert q["node.scale_out.name"]["value"] == "hdr"
    assert math.isclose(q["price.usd_per_gpu_hour"]["value"], 40.9657 / 8, rel_tol=1e-4)
    table = runner.invoke(app, ["hardware", "dgx-h100"])
    assert table.exit_code == 0 and "nvlink4" in table.stdout
    listing = runner.invoke(app, ["hardware"])
    assert listing.exit_code == 0
    assert all(name in listing.stdout for name in ("mi300x-platform", "h100-pcie-server", "edr"))


def test_cli_unknown_name_exits_2(runner: CliRunner) -> None:
    from analysis.cli.main import app

    result = runner.invoke(app, ["hardware", "nope"])
    assert result.exit_code == 2
    assert "is not a preset or a file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_presets_are_loaded_once() -> None:
    assert presets.accelerators() is presets.accelerators()
    assert catalogue.list_links() == catalogue.list_links()
