"""Read a Hugging Face `config.json` into a `ModelSpec`.

Families understood (by `model_type`): llama, mistral, qwen2 (gated SwiGLU MLP, grouped-query
attention, RoPE, RMSNorm; Qwen2 adds Q/K/V biases), gpt_neox, gpt2, opt, bloom and mpt.
Key names follow each family's `configuration_*.py` in `transformers` (and llm-foundry's
`configuration_mpt.py`); where a key is absent we use that class's default, as
`from_pretrained` would. Not modelled (rejected with a ValueError rather than miscounted):
mixture-of-experts, a head width other than hidden_size / num_attention_heads, OPT's
projected embeddings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.inputs import read_json
from simulator.model import ModelSpec

_ALIASES: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "n_embd", "n_embed", "d_model"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "n_layers", "num_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "n_heads"),
    "vocab_size": ("vocab_size",),
    "intermediate_size": ("intermediate_size", "ffn_dim", "n_inner"),
    "max_position_embeddings": ("max_position_embeddings", "n_positions", "max_seq_len"),
}
_MISSING = object()
_MOE_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")


class _Config:
    """A config dict plus the label (file name) used in error messages."""

    def __init__(self, data: Mapping[str, Any], label: str) -> None:
        self.data, self.label = data, label

    def get(self, field: str, default: Any = _MISSING) -> Any:
        """Value of `field` under any of its aliases; the default, or a ValueError, if absent."""
        for key in _ALIASES.get(field, (field,)):
            if self.data.get(key) is not None:
                return self.data[key]
        if default is _MISSING:
            others = [k for k in _ALIASES.get(field, (field,)) if k != field]
            hint = f" (or {', '.join(others)})" if others else ""
            raise UserError(f"{self.label}: missing {field!r}{hint}")
        return default

    def fail(self, key: str, value: Any, rule: str) -> UserError:
        return UserError(f"{self.label}: {key} = {value!r} {rule}")


def _core(c: _Config) -> dict[str, Any]:
    return {
        f: c.get(f)
        for f in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    }


def _llama(c: _Config) -> dict[str, Any]:
    """Llama / Mistral / Qwen2: `LlamaConfig` defaults (untied, no biases, RoPE, RMSNorm)."""
    kw = _core(c)
    heads = kw["num_attention_heads"]
    head_dim = c.get("head_dim", None)
    if head_dim is not None and head_dim * heads != kw["hidden_size"]:
        raise c.fail(
            "head_dim",
            head_dim,
            f"* {heads} heads != hidden_size "
            f"{kw['hidden_size']} (a decoupled head width is not modelled)",
        )
    attn_bias, mlp_bias = c.get("attention_bias", False), c.get("mlp_bias", False)
    if attn_bias != mlp_bias:
        raise c.fail(
            "attention_bias",
            attn_bias,
            f"differs from mlp_bias = {mlp_bias!r} "
            "(biases on some linear layers only are not modelled)",
        )
    return kw | {
        "intermediate_size": c.get("intermediate_size"),
        "num_key_value_heads": c.get("num_key_value_heads", heads),
        "gated_mlp": True,
        "hidden_act": c.get("hidden_act", "silu"),
        "max_position_embeddings": c.get("max_position_embeddings", 2048),
        "position_embedding": "rope",
        "norm": "rmsnorm",
        "bias": bool(attn_bias),
        "qkv_bias": c.data.get("model_type") == "qwen2",
        "tie_word_embeddings": c.get("tie_word_embeddings", False),
    }


def _gpt_neox(c: _Config) -> dict[str, Any]:
    """GPT-NeoX / Pythia: plain GELU MLP, rotary (partial), LayerNorm, untied `embed_out`."""
    if not c.get("attention_bias", True):
        raise c.fail(
            "attention_bias", False, "(MLP biases without attention biases are not modelled)"
        )
    return _core(c) | {
        "intermediate_size": c.get("intermediate_size"),
        "hidden_act": c.get("hidden_act", "gelu"),
        "max_position_embeddings": c.get("max_position_embeddings", 2048),
        "position_embedding": "rope",
        "tie_word_embeddings": c.get("tie_word_embeddings", False),
        "fused_qkv": True,  # query_key_value (transformers GPTNeoXAttention)
    }


def _gpt2(c: _Config) -> dict[str, Any]:
    """GPT-2: `n_inner` None means 4 * n_embd; learned positions; tied embeddings."""
    kw = _core(c)
    return kw | {
        "intermediate_size": c.data.get("n_inner") or 4 * kw["hidden_size"],
        "hidden_act": c.get("activation_function", "gelu_new"),
        "max_position_embeddings": c.get("max_position_embeddings", 1024),
        "tie_word_embeddings": c.get("tie_word_embeddings", True),
        "fused_qkv": True,  # c_attn (transformers GPT2Attention)
    }


def _opt(c: _Config) -> dict[str, Any]:
    """OPT: learned positions with 2 extra rows (padding offset), ReLU MLP of `ffn_dim`."""
    kw = _core(c)
    proj = c.get("word_embed_proj_dim", kw["hidden_size"])
    if proj != kw["hidden_size"]:
        raise c.fail(
            "word_embed_proj_dim",
            proj,
            f"!= hidden_size {kw['hidden_size']} (projected embeddings are not modelled)",
        )
    if not c.get("do_layer_norm_before", True):
        raise c.fail("do_layer_norm_before", False, "(post-LN OPT has no final norm; not modelled)")
    return kw | {
        "intermediate_size": c.get("intermediate_size"),
        "hidden_act": c.get("activation_function", "relu"),
        "max_position_embeddings": c.get("max_position_embeddings", 2048),
        "position_offset": 2,
        "bias": c.get("enable_bias", True),
        "tie_word_embeddings": c.get("tie_word_embeddings", True),
    }


def _bloom(c: _Config) -> dict[str, Any]:
    """BLOOM: ALiBi, MLP 4h, LayerNorm after the embedding, tied embeddings."""
    kw = _core(c)
    return kw | {
        "intermediate_size": 4 * kw["hidden_size"],
        "hidden_act": "gelu",
        "max_position_embeddings": c.get("seq_length", 2048),
        "position_embedding": "alibi",
        "embedding_norm": True,
        "tie_word_embeddings": c.get("tie_word_embeddings", True),
        "fused_qkv": True,  # query_key_value (transformers BloomAttention)
    }


def _mpt(c: _Config) -> dict[str, Any]:
    """MPT (llm-foundry `MPTConfig` defaults: learned positions unless alibi/rope, biases)."""
    kw = _core(c)
    attn, ffn = c.get("attn_config", {}) or {}, c.get("ffn_config", {}) or {}
    ratio = c.data.get("expansion_ratio", ffn.get("expansion_ratio", 4))
    if attn.get("alibi"):
        pos = "alibi"
    elif attn.get("rope"):
        pos = "rope"
    else:
        # No position table at all has no parameters either, as ALiBi.
        pos = "learned" if c.get("learned_pos_emb", True) else "alibi"
    kv = attn.get("kv_n_heads") if attn.get("attn_type") == "grouped_query_attention" else None
    if attn.get("attn_type") == "multiquery_attention":
        kv = 1
    no_bias = bool(c.get("no_bias", False))
    return kw | {
        "intermediate_size": int(ratio * kw["hidden_size"]),
        "num_key_value_heads": kv,
        "gated_mlp": ffn.get("ffn_type") == "mptglu",
        "hidden_act": "gelu",
        "max_position_embeddings": c.get("max_position_embeddings", 2048),
        "position_embedding": pos,
        "bias": not no_bias,
        "norm_bias": not no_bias,
        "norm": "rmsnorm" if "rms" in str(c.get("norm_type", "layernorm")) else "layernorm",
        "tie_word_embeddings": c.get("tie_word_embeddings", True),
        "fused_qkv": True,  # Wqkv (llm-foundry MultiheadAttention)
    }


FAMILIES: dict[str, Callable[[_Config], dict[str, Any]]] = {
    "llama": _llama,
    "mistral": _llama,
    "qwen2": _llama,
    "gpt_neox": _gpt_neox,
    "gpt2": _gpt2,
    "opt": _opt,
    "bloom": _bloom,
    "mpt": _mpt,
}
"""`model_type` -> reader of that family's config keys."""


def _read(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[dict[str, Any], str, str]:
    """Config dict, label for messages, and a default name."""
    if isinstance(source, Mapping):
        data = dict(source)
        return data, "config.json", str(data.get("_name_or_path") or data.get("model_type") or "")
    path = Path(source)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise UserError(f"config.json: {str(path)!r} is not a file or a folder holding one")
    data = read_json(path, "model")
    if not isinstance(data, dict):
        raise UserError(f"{path.name}: top level is {type(data).__name__}, expected an object")
    default = str(data.get("_name_or_path") or path.resolve().parent.name)
    return data, path.name, default


def _model_type(c: _Config) -> str:
    mt = c.data.get("model_type")
    if mt is None:  # older or hand-written configs: infer from the key names
        if "n_embd" in c.data:
            return "gpt2"
        if "d_model" in c.data and "expansion_ratio" in c.data:
            return "mpt"
        if "intermediate_size" in c.data and "num_key_value_heads" in c.data:
            return "llama"
        raise UserError(f"{c.label}: missing 'model_type' (supported: {sorted(FAMILIES)})")
    if mt not in FAMILIES:
        raise c.fail("model_type", mt, f"is not supported (supported: {sorted(FAMILIES)})")
    return mt


def from_hf_config(
    source: str | os.PathLike[str] | Mapping[str, Any], name: str | None = None
) -> ModelSpec:
    """`ModelSpec` from a Hugging Face `config.json`: a file path, a folder, or a dict.

    `name` defaults to `_name_or_path`, else the folder name (for a file), else model_type.
    Raises ValueError naming the file and key for a missing key, an unsupported
    `model_type`, or an architecture that `ModelSpec` cannot count faithfully (MoE, ...).
    """
    data, label, default_name = _read(source)
    c = _Config(data, label)
    for key in _MOE_KEYS:
        if (data.get(key) or 0) > 1:
            raise c.fail(key, data[key], "(mixture-of-experts is not modelled)")
    kwargs = FAMILIES[_model_type(c)](c)
    where = label if isinstance(source, Mapping) else str(source)
    return ModelSpec(
        name=name or default_name or "hf-model",
        source=f"Hugging Face config.json ({where})",
        **kwargs,
    )
