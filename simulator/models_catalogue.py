"""Model presets (simulator/presets/models.toml) and `load_model`, the one way to get a model.

`load_model` takes a preset name, a path to a Hugging Face `config.json` (or its folder), a
path to a `.toml` model file, or a dict, and returns a frozen `ModelSpec`. The preset file is
read once; every preset carries the `source` of its numbers (`model_info` shows it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.inputs import path_kind, read_text
from simulator.hf_config import from_hf_config
from simulator.model import ModelSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPEC_FIELDS = frozenset(f.name for f in fields(ModelSpec))
_META = frozenset(
    {
        "family",
        "source",
        "published_params",
        "published_active_params",
        "hf_repo",
        "pretrain_seq_len",
    }
)
_HF_HINTS = ("model_type", "architectures", "n_embd", "n_embed", "d_model", "n_layer")


@dataclass(frozen=True)
class Preset:
    """One entry of the catalogue: the spec and what the file says about it."""

    spec: ModelSpec
    family: str | None
    family_source: str
    published_params: float | None
    hf_repo: str | None
    published_active_params: float | None = None
    """Parameters a token uses, as published (mixture-of-experts models)."""
    pretrain_seq_len: int | None = None
    """Tokens per sequence in the model's (main) pre-training, which may be shorter than its
    context `max_position_embeddings` (Llama 3.1: 8,192 vs 131,072)."""


def _key(name: str) -> str:
    """Look-up key: case, '-', '_' and spaces do not matter ('Llama2_7B' = 'llama-2-7b')."""
    return "".join(ch for ch in name.lower() if ch not in "-_ ")


def _build(name: str, table: Mapping[str, Any], families: Mapping[str, Any], where: str) -> Preset:
    """Merge a model table over its family and construct the spec; errors name the entry."""
    unknown = sorted(set(table) - SPEC_FIELDS - _META)
    if unknown:
        raise UserError(f"{where}: unknown key(s) {unknown}; known: {sorted(SPEC_FIELDS)}")
    family = table.get("family")
    base: dict[str, Any] = {}
    if family is not None:
        if family not in families:
            raise UserError(f"{where}: family {family!r} unknown; known: {sorted(families)}")
        base = {k: v for k, v in families[family].items() if k in SPEC_FIELDS}
    if not str(table.get("source", "")).strip():
        raise UserError(f"{where}: 'source' is required (cite the paper table or config.json)")
    merged = base | {k: v for k, v in table.items() if k in SPEC_FIELDS}
    merged.setdefault("name", name)
    try:
        spec = ModelSpec(**merged)
    except TypeError as e:  # a required field missing
        raise UserError(f"{where}: {e}") from e
    except ValueError as e:
        raise UserError(f"{where}: {e}") from e
    fam_source = families[family].get("source", "") if family is not None else ""
    seq = table.get("pretrain_seq_len")
    if seq is None and family is not None:
        seq = families[family].get("pretrain_seq_len")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 1):
        raise UserError(f"{where}: pretrain_seq_len {seq!r} must be an integer >= 1")
    return Preset(
        spec,
        family,
        fam_source,
        table.get("published_params"),
        table.get("hf_repo"),
        table.get("published_active_params"),
        seq,
    )


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{where}: not valid TOML ({e})") from e


@cache
def _presets_file() -> Mapping[str, Any]:
    """The parsed models.toml, read once."""
    text = resources.files("simulator.presets").joinpath("models.toml").read_text("utf-8")
    return MappingProxyType(_parse(text, "models.toml"))


def _families() -> Mapping[str, Any]:
    return _presets_file().get("families", {})


@cache
def _catalogue() -> Mapping[str, Preset]:
    """All presets by look-up key (name and `hf_repo`)."""
    out: dict[str, Preset] = {}
    for name, table in _presets_file().get("models", {}).items():
        preset = _build(name, table, _families(), f"models.toml [models.{name}]")
        for alias in (name, preset.hf_repo):
            if alias is None:
                continue
            if _key(alias) in out:
                raise UserError(f"models.toml: name {alias!r} collides with another preset")
            out[_key(alias)] = preset
    return MappingProxyType(out)


def list_models() -> list[str]:
    """Preset names, in file order (GPT-3, Megatron, Llama, ..., MPT)."""
    seen: dict[str, None] = {}
    for p in _catalogue().values():
        seen.setdefault(p.spec.name, None)
    return list(seen)


def _preset(name: str) -> Preset:
    preset = _catalogue().get(_key(name))
    if preset is None:
        raise UserError(f"model: {name!r} is not a known preset; known: {', '.join(list_models())}")
    return preset


def model_info(name: str) -> dict[str, Any]:
    """A preset's `ModelSpec` fields (incl. `source`) plus its metadata and `num_params`.

    Extra keys: `family`, `family_source`, `published_params` (the size its source
    publishes), `hf_repo`, and `num_params` (counted by `ModelSpec.num_params`).
    """
    p = _preset(name)
    return asdict(p.spec) | {
        "family": p.family,
        "family_source": p.family_source,
        "published_params": p.published_params,
        "hf_repo": p.hf_repo,
        "num_params": p.spec.num_params(),
        "published_active_params": p.published_active_params,
        "active_params": p.spec.active_params(),
    }


FALLBACK_SEQ_CAP = 8192
"""Sequence length used for a model that is not a preset when its context is longer: long
contexts are reached by a short extension stage after pre-training at a few thousand tokens
(Llama 3: 8K then 128K, Llama Team 2024 §3.4; Qwen2: 4K then 32K, arXiv:2407.10671 §3.2)."""


def pretraining_seq_len(model: ModelSpec) -> tuple[int, str]:
    """(tokens per sequence, why) the commands use when --seq-len is not given.

    A preset's pre-training length (`pretrain_seq_len` in models.toml); for any other model
    its context `max_position_embeddings`, capped at `FALLBACK_SEQ_CAP`.
    """
    preset = _catalogue().get(_key(model.name))
    if preset is not None and preset.pretrain_seq_len is not None:
        return preset.pretrain_seq_len, f"{preset.spec.name}'s pre-training length"
    ctx = model.max_position_embeddings
    known = "no published pre-training length" if preset is not None else "not a preset"
    if ctx > FALLBACK_SEQ_CAP:
        return FALLBACK_SEQ_CAP, f"context {ctx} capped at {FALLBACK_SEQ_CAP}; {known}"
    return ctx, f"the model's context; {known}"


def _from_mapping(data: Mapping[str, Any], where: str, default_name: str) -> ModelSpec:
    """A dict of `ModelSpec` fields (optionally `family`), or a Hugging Face config dict."""
    if any(k in data for k in _HF_HINTS):
        return from_hf_config(data, name=data.get("name") or None)
    table = dict(data)
    table.setdefault("source", f"user-supplied ({where})")
    return _build(str(table.get("name", default_name)), table, _families(), where).spec


def load_model(spec: str | os.PathLike[str] | Mapping[str, Any] | ModelSpec) -> ModelSpec:
    """A `ModelSpec` from a preset name (case-insensitive), a path, or a dict.

    Paths: a Hugging Face `config.json` (or a folder holding one), or a `.toml` file whose top
    level holds `ModelSpec` fields (and optionally `family = "<a preset family>"`). Dicts: a
    Hugging Face config (recognised by `model_type` or GPT-2/MPT key names) or `ModelSpec`
    fields. Raises ValueError naming what was not understood.
    """
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, Mapping):
        return _from_mapping(spec, "dict", str(spec.get("name", "custom")))
    if isinstance(spec, str) and _key(spec) in _catalogue():
        return _catalogue()[_key(spec)].spec
    path = Path(spec)
    kind = path_kind(path)
    if path.suffix == ".toml" and kind == "file":
        return _from_mapping(
            _parse(read_text(path, "model", "a TOML file"), path.name), path.name, path.stem
        )
    if kind == "dir" or (path.suffix == ".json" and kind == "file"):
        return from_hf_config(path)
    raise UserError(
        f"model: {str(spec)!r} is neither a known preset nor an existing config.json/.toml "
        f"file; known presets: {', '.join(list_models())}"
    )
