"""What a calibration cannot measure about links comes from the catalogue, not a second copy."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from hwprofiles.calibration import summary as cal
from hwprofiles.calibration.loader import _link
from hwprofiles.calibration.power import FALLBACK_FILE
from hwprofiles.catalogue import list_links

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

COPY_BW = 3e9  # bytes/s, a made-up measured copy rate (test input)


def _network(collectives: list[dict] | None = None) -> dict:
    m = SimpleNamespace(tables={"collectives": collectives or []}, device="cpu")
    return cal._network(m, COPY_BW)  # type: ignore[arg-type]


@pytest.mark.parametrize("which,preset", [("scale_out", "ethernet-10"), ("scale_up", "shm")])
def test_placeholder_links_are_the_catalogue_presets(which, preset):
    cat = list_links()[preset]
    got = _network()[which]  # no collective measured: both links are placeholders
    assert got["preset"] == preset
    assert got["latency_s"] == cat.latency_s  # 20 us (10 GbE over TCP), 5 us (shm)
    # the scale-out placeholder is the preset whole; scale-up uses the measured copy rate,
    # an achieved figure (efficiency 1.0), with the preset's latency
    want_eff = cat.efficiency if which == "scale_out" else 1.0
    assert got["efficiency"] == want_eff and cat.efficiency == pytest.approx(0.80)
    want_bw = cat.bandwidth_bytes_per_s if which == "scale_out" else COPY_BW  # copy is measured
    assert got["bandwidth_bytes_per_s"] == want_bw
    assert got["source"].startswith("placeholder (not measured)")
    link = _link(which, got)  # and the loaded profile keeps them, efficiency included
    assert (link.latency_s, link.efficiency) == (cat.latency_s, want_eff)


def test_a_measured_all_reduce_replaces_the_scale_up_placeholder_but_not_scale_out():
    rows = [
        {"collective": "all_reduce", "world_size": 2, "backend": "gloo", "bytes": b,
         "median_s": 1e-4 + b * 1e-9, "busbw_bytes_per_s": 1e9}
        for b in (1e3, 1e5, 1e7)
    ]  # fmt: skip
    net = _network(rows)
    assert net["scale_up"]["source"].startswith("calibrated")
    assert net["scale_up"]["efficiency"] == 1.0  # a fitted bandwidth is an achieved one
    assert net["scale_out"]["latency_s"] == list_links()["ethernet-10"].latency_s


def test_fallback_file_holds_no_link_figures():
    with open(FALLBACK_FILE, "rb") as fh:
        assert set(tomllib.load(fh)) == {"cpu_power", "gpu_power"}
