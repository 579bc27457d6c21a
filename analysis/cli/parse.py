"""Parsers shared by every command, so that a value is spelled the same way everywhere."""

from __future__ import annotations

import math
import re

from hwprofiles.errors import UserError
from simulator.limits import MAX_TOKENS, check_gpus

_COUNT_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_count(text: str, what: str = "tokens") -> float:
    """A count such as ``2T``, ``1.5e12``, ``500B`` (billion) or ``300M``; finite and > 0."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKMBGT]?)\s*", text)
    if not m:
        raise UserError(f"{what}: {text!r} is not a count (e.g. 2T, 1.5e12, 500B)")
    value = float(m.group(1)) * _COUNT_SUFFIX[m.group(2)]
    if not (math.isfinite(value) and value >= 1):  # 1e-320 tokens is no training run
        raise UserError(f"{what}: {text!r} must be a finite number >= 1")
    if value > MAX_TOKENS:
        raise UserError(
            what, text, f"is above llmcap's limit of {MAX_TOKENS:.0e} (simulator.limits)"
        )
    return value


def split_list(text: str, what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise UserError(f"{what}: {text!r} is empty; give a comma-separated list")
    return items


def parse_gpus(gpus: str | None, max_gpus: int | None) -> tuple[int, ...]:
    """Explicit counts (sorted, deduplicated), or powers of two up to `max_gpus`."""
    from analysis.planner.request import DEFAULT_MAX_GPUS, gpu_counts_up_to

    if gpus is not None and max_gpus is not None:
        raise UserError("gpus: give --gpus or --max-gpus, not both")
    if gpus is None:
        if max_gpus is not None:
            check_gpus(max_gpus, "max_gpus")
        return gpu_counts_up_to(max_gpus if max_gpus is not None else DEFAULT_MAX_GPUS)
    out = []
    for item in split_list(gpus, "gpus"):
        if not item.isdigit() or int(item) < 1:
            raise UserError(f"gpus: {item!r} must be a whole number >= 1")
        check_gpus(int(item))
        out.append(int(item))
    return tuple(sorted(set(out)))
