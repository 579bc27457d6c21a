"""Re-fit a saved profile from its CSVs without measuring again.

The CSVs are the evidence and profile.toml is derived from them, so when the fitting code
changes an old calibration can be brought up to date: ``python -m
hwprofiles.calibration.refit DIR`` rewrites DIR/profile.toml (atomically) from DIR's tables,
keeping the machine, device and power records of the original run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from hwprofiles.calibration.loader import read_summary
from hwprofiles.calibration.power import DevicePower
from hwprofiles.calibration.store import PROFILE_FILE
from hwprofiles.calibration.summary import FILES, Measurements, summarise
from hwprofiles.outputs import write_atomic


def read_tables(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The profile's CSV tables as lists of row dicts (absent tables are skipped)."""
    return {
        key: pd.read_csv(path / rel).to_dict("records")
        for key, rel in FILES.items()
        if (path / rel).is_file()
    }


def refit(path: str | Path) -> dict[str, Any]:
    """Recompute and rewrite `path`/profile.toml from the CSVs; returns the new summary."""
    path = Path(path)
    doc = read_summary(path)
    dev, p = doc["device"], doc["power"]
    m = Measurements(
        name=doc["name"],
        level=doc["level"],
        device=dev["kind"],
        dtypes=tuple(dev["dtypes"]),
        world_sizes=tuple(dev["world_sizes"]),
        threads_per_rank=int(dev["threads_per_rank"]),
        ranks_per_node=int(dev["ranks_per_node"]),
        memory_bytes=float(dev["memory_bytes"]),
        machine=dict(doc["machine"]),
        power=DevicePower(p["idle_w"], p["tdp_w"], p["kind"], p["source"], p.get("load_w", {})),
        power_note=p.get("note", ""),
        tables=read_tables(path),
    )
    summary = summarise(m)
    write_atomic(path / PROFILE_FILE, tomli_w.dumps(summary))
    return summary


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        refit(arg)
        print(f"refitted {arg}/{PROFILE_FILE}")
