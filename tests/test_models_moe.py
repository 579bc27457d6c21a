"""Mixture-of-experts and MLA models: published totals and active counts, config readers.

Anchors are the model cards' published figures (each preset's `source` cites its card);
totals within 1%, active parameters within 2% (cards round them: DeepSeek-V3's '37B' is
37.55B counted with embeddings, Qwen3-30B-A3B's '3.3B' is 3.35B).
"""

from __future__ import annotations

import pytest

from simulator.hf_config import from_hf_config
from simulator.models_catalogue import load_model, model_info

MOE = ("mixtral-8x7b", "mixtral-8x22b", "qwen3-235b-a22b", "qwen3-30b-a3b", "deepseek-v3")


@pytest.mark.parametrize("name", MOE)
def test_published_totals_and_active_counts(name: str) -> None:
    info = model_info(name)
    assert info["num_params"] == pytest.approx(info["published_params"], rel=0.01)
    assert info["active_params"] == pytest.approx(info["published_active_params"], rel=0.02)
    assert info["active_params"] < info["num_params"]


def test_mixtral_8x7b_counts_exactly() -> None:
    # 32 layers x (attention 41,943,040 + 8 experts x 176,160,768 + router 32,768 + norms
    # 8,192) + embedding and head 2 x 131,072,000 + final norm 4,096
    m = load_model("mixtral-8x7b")
    assert m.num_params() == 46_702_792_704
    assert m.active_params() == 12_879_925_248  # Mistral: '12.9B parameters per token'


def test_deepseek_v3_mla_dense_layers_and_mtp() -> None:
    m = load_model("deepseek-v3")
    assert (m.num_moe_layers(), m.is_mla) == (58, True)
    # MLA projections per layer (modeling_deepseek.py shapes): q_a 7168x1536, q_b
    # 1536x(128x192), kv_a 7168x576, kv_b 512x(128x256), o 16384x7168, two latent norms
    assert m.attention_params() == 187_107_328
    # the card's 685B = 671B main model + 14B multi-token-prediction module
    assert (m.num_params() + m.mtp_params()) / 1e9 == pytest.approx(685, rel=0.01)


def test_average_layer_and_expert_share() -> None:
    m = load_model("deepseek-v3")
    body = m.num_hidden_layers * m.layer_params()
    assert body == pytest.approx(m.num_params_non_embedding())
    assert m.expert_layer_params() * 61 == 58 * 256 * 3 * 7168 * 2048


QWEN3_30B = {
    "model_type": "qwen3_moe",
    "hidden_size": 2048,
    "num_hidden_layers": 48,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "tie_word_embeddings": False,
}


def test_qwen3_moe_reader_matches_preset() -> None:
    m = from_hf_config(QWEN3_30B, name="qwen3-30b-a3b")
    p = load_model("qwen3-30b-a3b")
    assert m.num_params() == p.num_params()
    assert m.active_params() == p.active_params()


def test_mixtral_and_deepseek_readers() -> None:
    mixtral = {
        "model_type": "mixtral",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
    }
    assert from_hf_config(mixtral).num_params() == load_model("mixtral-8x7b").num_params()
    ds = {
        "model_type": "deepseek_v3",
        "hidden_size": 7168,
        "num_hidden_layers": 61,
        "num_attention_heads": 128,
        "num_key_value_heads": 128,
        "intermediate_size": 18432,
        "vocab_size": 129280,
        "num_nextn_predict_layers": 1,
    }
    m = from_hf_config(ds)
    assert m.num_params() == load_model("deepseek-v3").num_params()
    assert m.mtp_params() == load_model("deepseek-v3").mtp_params()


def test_qwen2_moe_shared_expert_with_gate() -> None:
    # Qwen/Qwen1.5-MoE-A2.7B config.json; model card: 14.3B total, 2.7B activated
    cfg = {
        "model_type": "qwen2_moe",
        "hidden_size": 2048,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "intermediate_size": 5632,
        "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632,
        "num_experts": 60,
        "num_experts_per_tok": 4,
        "vocab_size": 151936,
        "tie_word_embeddings": False,
    }
    m = from_hf_config(cfg)
    assert m.num_params() / 1e9 == pytest.approx(14.3, rel=0.01)
    assert m.active_params() / 1e9 == pytest.approx(2.7, rel=0.03)


def test_qwen3_dense_decoupled_head_dim() -> None:
    # Qwen/Qwen3-8B config.json; model card: 8.2B parameters
    cfg = {
        "model_type": "qwen3",
        "hidden_size": 4096,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "intermediate_size": 12288,
        "vocab_size": 151936,
        "tie_word_embeddings": False,
    }
    m = from_hf_config(cfg)
    assert (m.q_size, m.qk_norm) == (4096, True)
    assert m.num_params() / 1e9 == pytest.approx(8.19, rel=0.005)


def test_llama4_text_config_counts_its_moe_layers() -> None:
    # meta-llama/Llama-4-Maverick-17B-128E config.json text_config (interleave step 2)
    cfg = {
        "model_type": "llama4",
        "text_config": {
            "hidden_size": 5120,
            "num_hidden_layers": 48,
            "num_attention_heads": 40,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "intermediate_size": 8192,
            "intermediate_size_mlp": 16384,
            "num_local_experts": 128,
            "num_experts_per_tok": 1,
            "interleave_moe_layer_step": 2,
            "vocab_size": 202048,
        },
    }
    m = from_hf_config(cfg)
    assert m.num_moe_layers() == 24
    # Meta's card: 17B active, 400B total (the latter with the vision encoder)
    assert m.active_params() / 1e9 == pytest.approx(17.2, rel=0.03)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"num_experts_per_tok": 9}, "num_experts_per_tok: 9 must be in 1..n_routed_experts = 8"),
        ({"n_routed_experts": 0}, "num_experts_per_tok: 2 .* needs n_routed_experts >= 1"),
        ({"moe_layer_freq": 0}, "moe_layer_freq: 0"),
        ({"first_k_dense_replace": 40}, "first_k_dense_replace: 40 exceeds"),
    ],
)
def test_moe_validation(kw: dict, match: str) -> None:
    import dataclasses

    with pytest.raises(ValueError, match=match):
        dataclasses.replace(load_model("mixtral-8x7b"), **kw)
