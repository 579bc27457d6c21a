"""Read a Hugging Face `config.json` into a `ModelSpec`.

Families understood (by `model_type`): llama, mistral, qwen2, qwen3 (gated SwiGLU MLP,
grouped-query attention, RoPE, RMSNorm; Qwen2 adds Q/K/V biases, Qwen3 q/k norms and a
decoupled head_dim), gpt_neox, gpt2, opt, bloom and mpt; mixture-of-experts: mixtral,
qwen2_moe, qwen3_moe, deepseek_v2/deepseek_v3 (MLA attention, shared experts, dense first
layers, multi-token prediction modules) and llama4 (its text model).
Key names follow each family's `configuration_*.py` in `transformers` (and llm-foundry's
`configuration_mpt.py`); where a key is absent we use that class's default, as
`from_pretrained` would. Not modelled (rejected with a ValueError rather than miscounted):
MoE keys on a dense family, OPT's projected embeddings, interleaved dense/MoE layers other
than a leading run or a fixed step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.inputs import path_kind, read_json
from hwprofiles.typed import check
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

_I, _B, _S = int, bool, str
HF_TYPES: dict[str, Any] = {
    **{alias: _I for aliases in _ALIASES.values() for alias in aliases},
    **{key: _I for key in _MOE_KEYS},
    "model_type": _S,
    "_name_or_path": _S,
    "hidden_act": _S,
    "activation_function": _S,
    "norm_type": _S,
    "topk_method": _S,
    "attention_bias": _B,
    "mlp_bias": _B,
    "tie_word_embeddings": _B,
    "do_layer_norm_before": _B,
    "enable_bias": _B,
    "no_bias": _B,
    "learned_pos_emb": _B,
    "head_dim": _I,
    "num_key_value_heads": _I,
    "n_inner": _I,
    "word_embed_proj_dim": _I,
    "seq_length": _I,
    "moe_intermediate_size": _I,
    "shared_expert_intermediate_size": _I,
    "n_shared_experts": _I,
    "num_experts_per_tok": _I,
    "first_k_dense_replace": _I,
    "moe_layer_freq": _I,
    "decoder_sparse_step": _I,
    "num_nextn_predict_layers": _I,
    "kv_lora_rank": _I,
    "q_lora_rank": _I,
    "qk_nope_head_dim": _I,
    "qk_rope_head_dim": _I,
    "v_head_dim": _I,
    "expansion_ratio": float,
    "mlp_only_layers": tuple[int, ...],
    "attn_config": dict,
    "ffn_config": dict,
}
"""config.json keys llmcap reads -> their type (checked before use: ``head_dim = 64.0`` or
``attention_bias = 1`` are errors, not silently taken)."""
_NESTED_TYPES: dict[str, Any] = {
    "alibi": _B,
    "rope": _B,
    "attn_type": _S,
    "kv_n_heads": _I,
    "ffn_type": _S,
    "expansion_ratio": float,
}


def _check_types(data: Mapping[str, Any], label: str) -> None:
    """`UserError` for a known key whose value has the wrong type (None = absent)."""
    for key, value in data.items():
        if value is None:
            continue
        if key in HF_TYPES:
            check(value, HF_TYPES[key], f"{label}.{key}")
        if key == "text_config":  # Llama 4: the text model's keys, one level down
            check(value, dict, f"{label}.{key}")
            _check_types(value, f"{label}.{key}")
        if key in ("attn_config", "ffn_config"):
            for k, v in value.items():
                if v is not None and k in _NESTED_TYPES:
                    check(v, _NESTED_TYPES[k], f"{label}.{key}.{k}")


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


def _head_dim(c: _Config, kw: dict[str, Any]) -> int | None:
    """`head_dim` when it differs from hidden_size / heads (Qwen3), else None."""
    heads, h = kw["num_attention_heads"], kw["hidden_size"]
    head_dim = c.get("head_dim", None)
    if head_dim is None or head_dim * heads == h:
        return None
    return int(head_dim)


def _llama(c: _Config) -> dict[str, Any]:
    """Llama / Mistral / Qwen2 / Qwen3: `LlamaConfig` defaults (untied, no biases, RoPE,
    RMSNorm); Qwen2 adds Q/K/V biases, Qwen3 per-head q/k norms and a decoupled head_dim."""
    kw = _core(c)
    heads = kw["num_attention_heads"]
    attn_bias, mlp_bias = c.get("attention_bias", False), c.get("mlp_bias", False)
    if attn_bias != mlp_bias:
        raise c.fail(
            "attention_bias",
            attn_bias,
            f"differs from mlp_bias = {mlp_bias!r} "
            "(biases on some linear layers only are not modelled)",
        )
    mt = c.data.get("model_type")
    qwen3 = mt in ("qwen3", "qwen3_moe")
    out = kw | {
        "intermediate_size": c.get("intermediate_size"),
        "num_key_value_heads": c.get("num_key_value_heads", heads),
        "gated_mlp": True,
        "hidden_act": c.get("hidden_act", "silu"),
        "max_position_embeddings": c.get("max_position_embeddings", 2048),
        "position_embedding": "rope",
        "norm": "rmsnorm",
        "bias": bool(attn_bias),
        "qkv_bias": mt in ("qwen2", "qwen2_moe"),
        "tie_word_embeddings": c.get("tie_word_embeddings", False),
    }
    # Qwen3Config's head_dim defaults to 128 (configuration_qwen3.py)
    hd = _head_dim(c, kw) if not qwen3 else c.get("head_dim", 128)
    if hd is not None and hd * heads != kw["hidden_size"]:
        out["head_dim"] = int(hd)
    if qwen3:
        out["qk_norm"] = True
    return out


def _mixtral(c: _Config) -> dict[str, Any]:
    """Mixtral (`MixtralConfig`): Mistral layers whose MLP is `num_local_experts` (8) experts of
    `intermediate_size`, top `num_experts_per_tok` (2); router Linear(h, experts)."""
    return _llama(c) | {
        "n_routed_experts": c.get("num_local_experts", 8),
        "num_experts_per_tok": c.get("num_experts_per_tok", 2),
    }


def _qwen_moe(c: _Config) -> dict[str, Any]:
    """Qwen2-MoE / Qwen3-MoE: `num_experts` experts of `moe_intermediate_size`; Qwen2-MoE
    adds one gated shared expert of `shared_expert_intermediate_size`. Layers listed in
    `mlp_only_layers` are dense: only a leading run of them is modelled (and
    decoder_sparse_step 1)."""
    qwen3 = c.data.get("model_type") == "qwen3_moe"
    kw = _llama(c)
    step = c.get("decoder_sparse_step", 1)
    if step != 1:
        raise c.fail("decoder_sparse_step", step, "(only 1, every layer sparse, is modelled)")
    dense = sorted(c.get("mlp_only_layers", []) or [])
    if dense != list(range(len(dense))):
        raise c.fail("mlp_only_layers", dense, "(only a leading run of dense layers is modelled)")
    kw |= {
        "n_routed_experts": c.get("num_experts", 128 if qwen3 else 60),
        "num_experts_per_tok": c.get("num_experts_per_tok", 8 if qwen3 else 4),
        "moe_intermediate_size": c.get("moe_intermediate_size", 768 if qwen3 else 1408),
        "first_k_dense_replace": len(dense),
    }
    if not qwen3:
        kw |= {
            "n_shared_experts": 1,
            "shared_expert_intermediate_size": c.get("shared_expert_intermediate_size", 5632),
            "shared_expert_gate": True,
        }
    return kw


def _deepseek(c: _Config) -> dict[str, Any]:
    """DeepSeek-V2/V3 (`DeepseekV3Config`): MLA attention (low-rank q and kv), `n_routed_experts`
    of `moe_intermediate_size` plus `n_shared_experts`, the first `first_k_dense_replace`
    layers dense; V3's router carries a bias (`topk_method` "noaux_tc")."""
    kw = _core(c)
    if c.get("attention_bias", False):
        raise c.fail("attention_bias", True, "(MLA with biases is not modelled)")
    nope, rope = c.get("qk_nope_head_dim", 128), c.get("qk_rope_head_dim", 64)
    return kw | {
        "intermediate_size": c.get("intermediate_size"),
        "num_key_value_heads": kw["num_attention_heads"],
        "head_dim": nope + rope,
        "gated_mlp": True,
        "hidden_act": c.get("hidden_act", "silu"),
        "max_position_embeddings": c.get("max_position_embeddings", 4096),
        "position_embedding": "rope",
        "norm": "rmsnorm",
        "bias": False,
        "tie_word_embeddings": c.get("tie_word_embeddings", False),
        "q_lora_rank": c.get("q_lora_rank", 1536),
        "kv_lora_rank": c.get("kv_lora_rank", 512),
        "qk_nope_head_dim": nope,
        "qk_rope_head_dim": rope,
        "v_head_dim": c.get("v_head_dim", 128),
        "n_routed_experts": c.get("n_routed_experts", 256),
        "n_shared_experts": c.get("n_shared_experts", 1),
        "num_experts_per_tok": c.get("num_experts_per_tok", 8),
        "moe_intermediate_size": c.get("moe_intermediate_size", 2048),
        "first_k_dense_replace": c.get("first_k_dense_replace", 3),
        "moe_layer_freq": c.get("moe_layer_freq", 1),
        "router_bias": c.get("topk_method", "noaux_tc") == "noaux_tc",
        "num_nextn_predict_layers": c.get("num_nextn_predict_layers", 0),
    }


def _llama4(c: _Config) -> dict[str, Any]:
    """Llama 4 text model (`Llama4TextConfig`, under `text_config`): every
    `interleave_moe_layer_step`-th layer is MoE with `num_local_experts` experts of
    `intermediate_size` plus one shared expert of the same width; dense layers use
    `intermediate_size_mlp`. The vision tower is not counted."""
    text = c.data.get("text_config", c.data)
    t = _Config(text, c.label)
    kw = _core(t)
    step = t.get("interleave_moe_layer_step", 1)
    expert = t.get("intermediate_size", 8192)
    return kw | {
        "intermediate_size": t.get("intermediate_size_mlp", 16384),
        "num_key_value_heads": t.get("num_key_value_heads", 8),
        "head_dim": t.get("head_dim", 128),
        "gated_mlp": True,
        "hidden_act": t.get("hidden_act", "silu"),
        "max_position_embeddings": t.get("max_position_embeddings", 4096 * 32),
        "position_embedding": "rope",
        "norm": "rmsnorm",
        "bias": False,
        "tie_word_embeddings": t.get("tie_word_embeddings", False),
        "n_routed_experts": t.get("num_local_experts", 16),
        "num_experts_per_tok": t.get("num_experts_per_tok", 1),
        "moe_intermediate_size": expert,
        "n_shared_experts": 1,
        # llama4's rule is (i + 1) % step == 0: as many layers as DeepSeek's i % step == 0
        # (the engines cost an average layer, so only the count matters)
        "first_k_dense_replace": 0,
        "moe_layer_freq": step,
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
    "qwen3": _llama,
    "mixtral": _mixtral,
    "qwen2_moe": _qwen_moe,
    "qwen3_moe": _qwen_moe,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "llama4": _llama4,
    "gpt_neox": _gpt_neox,
    "gpt2": _gpt2,
    "opt": _opt,
    "bloom": _bloom,
    "mpt": _mpt,
}
"""`model_type` -> reader of that family's config keys."""
MOE_FAMILIES = frozenset(
    {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "llama4"}
)


def _read(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[dict[str, Any], str, str]:
    """Config dict, label for messages, and a default name."""
    if isinstance(source, Mapping):
        data = dict(source)
        return data, "config.json", str(data.get("_name_or_path") or data.get("model_type") or "")
    path = Path(source)
    if path_kind(path) == "dir":
        path = path / "config.json"
    if path_kind(path) != "file":
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
    _check_types(data, label)
    c = _Config(data, label)
    mt = _model_type(c)
    if mt not in MOE_FAMILIES:
        for key in _MOE_KEYS:
            if (data.get(key) or 0) > 1:
                raise c.fail(
                    key,
                    data[key],
                    f"on a dense model_type {mt!r} (mixture-of-experts families: "
                    f"{sorted(MOE_FAMILIES)})",
                )
    kwargs = FAMILIES[mt](c)
    where = label if isinstance(source, Mapping) else str(source)
    return ModelSpec(
        name=name or default_name or "hf-model",
        source=f"Hugging Face config.json ({where})",
        **kwargs,
    )
