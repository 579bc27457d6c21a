"""Energy meters against fakes: a RAPL powercap tree in a temp dir and a fake pynvml module."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwprofiles.energy import (
    EnergyWindow,
    measure,
    open_energy_meter,
    probe_energy_meter,
)


def make_zone(root: Path, zone: str, name: str, energy_uj: int, max_uj: int = 2**32) -> Path:
    d = root / zone
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_energy(zone: Path, energy_uj: int) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


class FakeNvml:
    """The slice of pynvml the meter uses; energy in mJ as NVML reports it."""

    class NVMLError(Exception):
        pass

    def __init__(self, energy_mj: int = 1_000_000, fail_init: bool = False) -> None:
        self.energy_mj = energy_mj
        self.fail_init = fail_init

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return f"gpu{index}"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:
        return self.energy_mj


def test_rapl_sums_package_zones_only(tmp_path: Path) -> None:
    p0 = make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    p1 = make_zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000)
    core = make_zone(tmp_path, "intel-rapl:0:0", "core", 0)
    psys = make_zone(tmp_path, "intel-rapl:2", "psys", 0)
    meter = open_energy_meter("cpu", sysfs_root=tmp_path)
    assert meter is not None
    assert meter.read_j() == 0.0
    set_energy(p0, 3_000_000)  # +2 J
    set_energy(p1, 5_500_000)  # +0.5 J
    set_energy(core, 9_000_000)  # a sub-zone of package 0: must not be added again
    set_energy(psys, 9_000_000)  # the whole platform: must not be added
    assert meter.read_j() == pytest.approx(2.5)


def test_rapl_corrects_wrap_around(tmp_path: Path) -> None:
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 990_000, max_uj=1_000_000)
    meter = open_energy_meter("cpu", sysfs_root=tmp_path)
    assert meter is not None
    set_energy(zone, 20_000)  # wrapped: 10_000 to the top, then 20_000
    assert meter.read_j() == pytest.approx(0.03)
    set_energy(zone, 520_000)
    assert meter.read_j() == pytest.approx(0.53)  # monotonic, cumulative


def test_rapl_absent_or_unreadable_is_a_labelled_absence(tmp_path: Path) -> None:
    meter, why = probe_energy_meter("cpu", sysfs_root=tmp_path / "nope")
    assert meter is None and "does not exist" in why
    meter, why = probe_energy_meter("cpu", sysfs_root=tmp_path)
    assert meter is None and "no package zones" in why
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (zone / "energy_uj").unlink()
    (zone / "energy_uj").mkdir()  # reading it fails like a root-only file would
    meter, why = probe_energy_meter("cpu", sysfs_root=tmp_path)
    assert meter is None and "intel-rapl:0" in why and "unreadable" in why


def test_nvml_reads_millijoules_as_joules() -> None:
    nvml = FakeNvml(energy_mj=1_000_000)
    meter = open_energy_meter("cuda", nvml=nvml, index=3)
    assert meter is not None and meter.name == "nvml:3"
    nvml.energy_mj += 2_500  # 2.5 J
    assert meter.read_j() == pytest.approx(2.5)


def test_nvml_failure_is_a_labelled_absence() -> None:
    meter, why = probe_energy_meter("cuda", nvml=FakeNvml(fail_init=True))
    assert meter is None
    assert why.startswith("NVML:") and "Driver Not Loaded" in why


def test_unknown_device_is_rejected() -> None:
    with pytest.raises(ValueError, match="device: 'tpu'"):
        probe_energy_meter("tpu")


def test_measure_window_with_and_without_meter() -> None:
    nvml = FakeNvml()
    meter = open_energy_meter("cuda", nvml=nvml)
    with measure(meter) as w:
        nvml.energy_mj += 4_000
    assert w.joules == pytest.approx(4.0)
    assert w.seconds > 0 and w.meter == "nvml:0"
    assert w.watts == pytest.approx(4.0 / w.seconds)
    with measure(None) as none:
        pass
    assert none.joules is None and none.watts is None and none.meter is None


def test_window_watts_needs_duration() -> None:
    assert EnergyWindow(meter="x", seconds=0.0, joules=1.0).watts is None
