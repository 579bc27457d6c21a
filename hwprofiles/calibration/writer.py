"""Write a calibration profile directory atomically.

Layout (split by what the numbers depend on, as Vidur does)::

    DIR/profile.toml              summary: machine, peaks, curves, fits, power, noise
    DIR/compute/gemm.csv          one row per measured configuration
    DIR/compute/attention.csv
    DIR/compute/attention_passes.csv   only for workload shapes asked for
    DIR/compute/elementwise.csv
    DIR/compute/memory.csv
    DIR/network/collectives.csv
    DIR/network/collectives_met.csv    CPU, >= 2 ranks: collectives after compute
    DIR/power.csv                 only where energy was measured

Everything is written into a hidden temporary directory beside DIR and renamed into place at
the end (`hwprofiles.outputs.staged_dir`), so an interrupted calibration leaves no
half-written profile. An existing profile is replaced only with ``force``; a directory that is
not a profile is never replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from hwprofiles.calibration.attention import ATTENTION_COLUMNS, PASS_COLUMNS
from hwprofiles.calibration.collectives import COLLECTIVE_COLUMNS, MET_COLUMNS
from hwprofiles.calibration.contention import CONTENTION_COLUMNS
from hwprofiles.calibration.elementwise import ELEMENTWISE_COLUMNS
from hwprofiles.calibration.framework import FRAMEWORK_COLUMNS
from hwprofiles.calibration.gemm import GEMM_COLUMNS
from hwprofiles.calibration.memory import MEMORY_COLUMNS
from hwprofiles.calibration.power import POWER_COLUMNS
from hwprofiles.calibration.store import PROFILE_FILE, is_profile_dir
from hwprofiles.calibration.summary import FILES
from hwprofiles.errors import UserError
from hwprofiles.outputs import staged_dir

COLUMNS = {
    "gemm": GEMM_COLUMNS,
    "attention": ATTENTION_COLUMNS,
    "attention_passes": PASS_COLUMNS,
    "elementwise": ELEMENTWISE_COLUMNS,
    "memory": MEMORY_COLUMNS,
    "collectives": COLLECTIVE_COLUMNS,
    "collectives_met": MET_COLUMNS,
    "power": POWER_COLUMNS,
    "contention": CONTENTION_COLUMNS,
    "framework": FRAMEWORK_COLUMNS,
}

FLOAT_FORMAT = "%.6g"  # 6 significant digits: far below the measurement noise


def check_target(out: Path, force: bool) -> None:
    """Raise ValueError unless `out` may be written (absent, empty, or a profile with force)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"out: {out} exists and is not a directory")
    if not any(out.iterdir()):
        return
    if not is_profile_dir(out):
        raise UserError(f"out: {out} exists and is not a calibration profile; not replacing it")
    if not force:
        raise UserError(f"out: profile {out} already exists; use --force to overwrite it")


def as_stored(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The tables as their CSVs hold them (floats at `FLOAT_FORMAT`): the profile is fitted
    from these, so that a refit from the CSVs (`calibration.refit`) gives it again exactly
    (the rounding is far below the noise, but an ill-determined fit parameter moved by 9 %
    when fitted from the unrounded values, 2026-12-03)."""

    def stored(v: Any) -> Any:
        return float(FLOAT_FORMAT % v) if isinstance(v, float) else v

    return {k: [{c: stored(v) for c, v in r.items()} for r in rows] for k, rows in tables.items()}


def write_tree(
    root: Path, summary: dict[str, Any], tables: dict[str, list[dict[str, Any]]]
) -> None:
    """Write the profile files into an existing directory `root` (not atomic by itself)."""
    for key, rows in tables.items():
        if not rows:
            continue
        path = root / FILES[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(rows, columns=list(COLUMNS[key]))
        frame.to_csv(path, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    (root / PROFILE_FILE).write_text(tomli_w.dumps(summary))


def write_profile(
    out: Path, summary: dict[str, Any], tables: dict[str, list[dict[str, Any]]], force: bool
) -> Path:
    """Write the profile to `out` atomically; returns `out`. See the module docstring."""
    out = Path(out)
    check_target(out, force)
    with staged_dir(out, "--out", replace=True, check=False) as tmp:
        write_tree(tmp, summary, tables)
        check_target(out, force)  # it may have appeared while we measured
    return out
