"""Training stacks: what a framework generation runs, as `Options` settings with sources.

Each stack is a TOML file beside this module: ``[settings.<Options field>]`` tables with a
``value`` and a ``source`` (release notes, docs, papers) name the mechanisms the engines price
(attention kernel generation, fused kernels, TP/DP/PP overlap, bucket sizes, ...); ``[info]``
records what the stack does that is a layout choice (distributed optimizer = ZeRO-1, FSDP) or
not priced yet. There is no per-stack end-to-end factor: a stack only switches mechanisms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from importlib import resources
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.inputs import parse_toml
from simulator.options import Options

DEFAULT_STACK = "nemo-2025"
"""The stack when none is given (CLI and run files): the newest Megatron-Core/NeMo generation
(cuDNN fused attention, TP communication overlap, overlapped DP). `Options()` itself, the
library default under every stack, keeps Megatron-Core 2024's mechanisms (`megatron-core-2024`
equals it), so a stack file lists only what it changes."""

_OPTION_FIELDS = {f.name: f for f in fields(Options)}


@dataclass(frozen=True)
class Stack:
    name: str
    summary: str
    settings: dict[str, Any]
    """Options field -> value."""
    sources: dict[str, str]
    """Options field -> where the setting comes from."""
    info: dict[str, tuple[Any, str]]
    """Unpriced facts (layout choices, recipes): key -> (value, source)."""

    def options(self, base: Options | None = None) -> Options:
        """`base` (default `Options()`) with this stack's settings."""
        return replace(base or Options(), **self.settings)


def stack_names() -> list[str]:
    files = resources.files("simulator.stacks").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".toml"))


@lru_cache(maxsize=32)
def load_stack(name: str) -> Stack:
    """The stack `name`; an unknown name lists the known ones."""
    known = stack_names()
    if name not in known:
        raise UserError("stack", name, f"is not a known training stack (known: {', '.join(known)})")
    where = f"stack {name}"
    raw = parse_toml(
        resources.files("simulator.stacks").joinpath(f"{name}.toml").read_text("utf-8"),
        "stack",
        where,
    )
    settings: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, entry in raw.get("settings", {}).items():
        if key not in _OPTION_FIELDS:
            raise UserError(f"{where}: settings.{key}", rule="is not an Options field")
        if not isinstance(entry, Mapping) or "value" not in entry or not entry.get("source"):
            raise UserError(f"{where}: settings.{key}", rule="needs a value and a source")
        settings[key] = entry["value"]
        sources[key] = str(entry["source"])
    info = {
        k: (v.get("value"), str(v.get("source", "")))
        for k, v in raw.get("info", {}).items()
        if isinstance(v, Mapping)
    }
    Options(**settings)  # the values must make valid Options
    return Stack(raw.get("name", name), str(raw.get("summary", "")), settings, sources, info)
