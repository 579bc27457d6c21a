"""The agreement grid of docs/simulator.md: every case of tests/test_des_agreement_grid.py,
the SimPy engine (contention off) against the closed form, as a markdown table.

    python benchmarks/agreement_grid.py            # all cases, ~30 s
    python benchmarks/agreement_grid.py NAME ...   # some

Columns: each engine's step time, their difference, and the breakdown part that differs
most, as a share of the closed form's step.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_des_agreement_grid import GRID, _both


def row(name: str) -> str:
    des, cf = _both(*GRID[name])
    step = cf["step_time_s"]
    parts = des.step.breakdown
    key, diff = max(
        ((k, t - cf[f"breakdown/{k}"]) for k, t in parts.items()), key=lambda kv: abs(kv[1])
    )
    return (
        f"| {name} | {step:.4g} | {des.step_time_s:.4g} | "
        f"{(des.step_time_s / step - 1) * 100:+.2f} % | {key} {diff / step * 100:+.2f} % |"
    )


def main(names: list[str]) -> None:
    print("| case | closed form (s) | DES (s) | DES - CF | largest part difference |")
    print("|---|---|---|---|---|")
    for name in names or sorted(GRID):
        print(row(name))


if __name__ == "__main__":
    main(sys.argv[1:])
