"""Where profiles are saved, and writing them atomically without clobbering anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwprofiles.calibration import writer
from hwprofiles.calibration.store import (
    FORMAT,
    default_profile_root,
    find_saved,
    list_saved,
    safe_name,
)
from hwprofiles.calibration.writer import write_profile
from hwprofiles.outputs import umask

SUMMARY = {"format": FORMAT, "name": "t", "level": "tiny"}
TABLES = {
    "memory": [
        {"op": "copy", "array_bytes": 4, "bytes": 8.0, "median_s": 1e-6, "min_s": 1e-6,
         "max_s": 1e-6, "count": 3, "noisy": False, "bytes_per_s": 8e6},
    ]
}  # fmt: skip


def test_default_root_follows_llmcap_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMCAP_HOME", str(tmp_path))
    assert default_profile_root() == tmp_path / "profiles"
    monkeypatch.delenv("LLMCAP_HOME")
    assert default_profile_root() == Path.home() / ".llmcap" / "profiles"


def test_find_saved_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMCAP_HOME", str(tmp_path))
    write_profile(default_profile_root() / "box-cpu", SUMMARY, TABLES, force=False)
    assert find_saved("box-cpu") == tmp_path / "profiles" / "box-cpu"
    assert find_saved("other") is None
    assert find_saved("../profiles/box-cpu") is None  # names are not paths
    assert list_saved() == ["box-cpu"]


def test_safe_name() -> None:
    assert safe_name("my box/cpu") == "my-box-cpu"
    with pytest.raises(ValueError, match="name"):
        safe_name("///")


def test_written_profile_layout(tmp_path: Path) -> None:
    out = write_profile(tmp_path / "p", SUMMARY, TABLES, force=False)
    assert (out / "profile.toml").is_file()
    header = (out / "compute" / "memory.csv").read_text().splitlines()[0]
    assert header == ",".join(writer.COLUMNS["memory"])
    assert not (out / "power.csv").exists()  # no rows, no file
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no temporary left beside it
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask()  # not mkdtemp's 0700


def test_no_overwrite_without_force(tmp_path: Path) -> None:
    out = write_profile(tmp_path / "p", SUMMARY, TABLES, force=False)
    with pytest.raises(ValueError, match="already exists; use --force"):
        write_profile(out, {**SUMMARY, "name": "new"}, TABLES, force=False)
    assert 'name = "t"' in (out / "profile.toml").read_text()
    write_profile(out, {**SUMMARY, "name": "new"}, TABLES, force=True)
    assert 'name = "new"' in (out / "profile.toml").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["p"]


def test_never_replaces_a_directory_that_is_not_a_profile(tmp_path: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("...")
    with pytest.raises(ValueError, match="not a calibration profile"):
        write_profile(precious, SUMMARY, TABLES, force=True)
    assert (precious / "thesis.tex").exists()


def test_interrupted_write_leaves_no_half_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old = write_profile(tmp_path / "p", SUMMARY, TABLES, force=False)
    real = writer.write_tree

    def interrupted(root: Path, summary: dict, tables: dict) -> None:
        real(root, summary, tables)
        raise KeyboardInterrupt  # Ctrl-C after the files, before the rename

    monkeypatch.setattr(writer, "write_tree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_profile(tmp_path / "fresh", SUMMARY, TABLES, force=False)
    with pytest.raises(KeyboardInterrupt):
        write_profile(old, {**SUMMARY, "name": "new"}, TABLES, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["p"]  # no "fresh", no temporaries
    assert 'name = "t"' in (old / "profile.toml").read_text()  # the old profile is intact
