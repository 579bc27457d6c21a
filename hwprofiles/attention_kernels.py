"""Fused-attention kernel generations (FlashAttention-1/2/3, cuDNN) relative to the catalogue.

Every accelerator's `attention_max_fraction` (accelerators.toml) is a FlashAttention-2 figure;
a training stack running another generation runs attention at that figure times the
generation's measured ratio (data/attention_kernels.toml, from the rows of
data/attention_kernels.csv). Profiles without a row (calibrated or user files, whose attention
was timed as it runs there) keep their own figure: ratio 1.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.presets import data

KERNELS = ("fa1", "fa2", "fa3", "cudnn")
"""Kernel generations a stack may name (`Options.attention_kernel`)."""


@lru_cache(maxsize=1)
def _table() -> Mapping[str, Any]:
    return data("attention_kernels")


def kernel_ratio(accelerator: str, kernel: str) -> float:
    """Forward + backward throughput of `kernel` over FlashAttention-2's on `accelerator`."""
    if kernel not in KERNELS:
        raise UserError("attention_kernel", kernel, f"must be one of {', '.join(KERNELS)}")
    row = _table().get(accelerator)
    if not isinstance(row, Mapping):
        return 1.0
    return float(row.get(kernel, 1.0))


def seq_ramp(accelerator: str, key_len):
    """Fraction of the kernel's plateau reached at `key_len` keys: s / (s + half_keys), for
    accelerators with a kernel row; 1 for the others (calibrated or user profiles time their
    attention at the workload's shape)."""
    row = _table().get(accelerator)
    if not isinstance(row, Mapping) or "half_keys" not in row:
        return 1.0
    half = float(row["half_keys"])
    return key_len / (key_len + half)


def kernel_source(accelerator: str) -> str:
    row = _table().get(accelerator)
    return str(row.get("source", "")) if isinstance(row, Mapping) else "no row: ratio 1"


def measured_rows() -> list[dict[str, str]]:
    """The published kernel measurements (attention_kernels.csv), one dict per row."""
    path = resources.files("hwprofiles").joinpath("data", "attention_kernels.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
