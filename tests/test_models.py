"""ModelSpec parameter counts, model presets and Hugging Face config loading.

Anchors are published parameter counts; each cites where it was read. Hugging Face counts
are `sum(p.numel() for p in model.parameters())`. (Llama-2's safetensors totals are 64
floats per layer higher: they also store the non-trainable `rotary_emb.inv_freq` buffers.)
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from simulator.hf_config import from_hf_config
from simulator.model import ModelSpec
from simulator.models_catalogue import list_models, load_model, model_info

# ---- exact Hugging Face counts ----------------------------------------------------------

EXACT = {
    # meta-llama/Llama-2-*-hf, sum of parameter numels (task brief; = HF safetensors total
    # 6738417664 / 13015866880 / 68976653312 minus 2048 / 2560 / 5120 inv_freq floats).
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    # HF API safetensors.total of meta-llama/Llama-3.1-8B / -70B / -405B (same shapes as 3.0).
    "llama-3-8b": 8_030_261_248,
    "llama-3-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "mistral-7b": 7_241_732_096,  # mistralai/Mistral-7B-v0.1
    "bloom-176b": 176_247_271_424,  # BLOOM paper hyper-parameter table: 176,247M
    "gpt-neox-20b": 20_554_567_680,  # EleutherAI/gpt-neox-20b model card n_parameters
    "qwen2-7b": 7_615_616_512,  # Qwen/Qwen2-7B
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_hf_models_count_exactly(name: str) -> None:
    assert load_model(name).num_params() == EXACT[name]


def test_llama_3_1_405b_is_405_85b() -> None:
    assert load_model("llama-3.1-405b").num_params() / 1e9 == pytest.approx(405.85, abs=0.01)


# ---- GPT-3 and OPT (papers give rounded sizes) --------------------------------------------


def test_gpt3_175b() -> None:
    # 174.6B is the count the Table 2.1 shapes give (tied, 2048 learned positions).
    assert load_model("gpt3-175b").num_params() == pytest.approx(174.6e9, rel=0.005)


@pytest.mark.parametrize(
    ("name", "published"),
    [("gpt3-1.3b", 1.3e9), ("gpt3-6.7b", 6.7e9), ("gpt3-13b", 13.0e9)],  # Table 2.1
)
def test_gpt3_sizes_within_2_percent(name: str, published: float) -> None:
    assert load_model(name).num_params() == pytest.approx(published, rel=0.02)


def test_opt_175b() -> None:
    # Zhang et al. 2022, Table 1: 175B.
    assert load_model("opt-175b").num_params() == pytest.approx(175e9, rel=0.005)


# ---- published_runs.csv rows -------------------------------------------------------------

# MPT-*: params_b column, from llm-foundry's benchmarking README NumParams (2048 tokens).
MPT_CSV = {
    "mpt-125m": 0.125,
    "mpt-1b": 1.316,
    "mpt-3b": 2.652,
    "mpt-7b": 6.659,
    "mpt-13b": 12.854,
    "mpt-30b": 29.975,
    "mpt-70b": 64.862,
}
# The README's NumParams column itself, which the presets reproduce to the parameter.
MPT_README = {
    "mpt-125m": 125_311_488,
    "mpt-350m": 355_985_408,
    "mpt-760m": 760_470_528,
    "mpt-1b": 1_315_950_592,
    "mpt-3b": 2_651_837_440,
    "mpt-7b": 6_658_859_008,
    "mpt-13b": 12_853_954_560,
    "mpt-30b": 29_975_214_080,
    "mpt-70b": 64_862_437_376,
}


@pytest.mark.parametrize("name", sorted(MPT_CSV))
def test_mpt_within_1_percent_of_csv(name: str) -> None:
    assert load_model(name).num_params() / 1e9 == pytest.approx(MPT_CSV[name], rel=0.01)


@pytest.mark.parametrize("name", sorted(MPT_README))
def test_mpt_matches_llm_foundry_numparams(name: str) -> None:
    assert load_model(name).num_params() == MPT_README[name]


# N21-01..10: Narayanan et al. 2021 Table 1, printed with one decimal.
N21 = {
    "megatron-1.7b": 1.7,
    "megatron-3.6b": 3.6,
    "megatron-7.5b": 7.5,
    "megatron-18.4b": 18.4,
    "megatron-39.1b": 39.1,
    "megatron-76.1b": 76.1,
    "megatron-145.6b": 145.6,
    "megatron-310.1b": 310.1,
    "megatron-529.6b": 529.6,
    "megatron-1t": 1008.0,
}


@pytest.mark.parametrize("name", sorted(N21))
def test_narayanan_table1_sizes(name: str) -> None:
    billions = load_model(name).num_params() / 1e9
    assert round(billions, 1) == N21[name]  # the table's own rounding
    # 2%, except the 1.7B row: 1.652B printed as "1.7" is 2.8% off by rounding alone.
    assert billions == pytest.approx(N21[name], rel=0.03 if name == "megatron-1.7b" else 0.02)


# MLM24-1..9: Megatron-LM README 2024 model table.
MLM24 = {
    "megatron24-1.7b": 1.7,
    "megatron24-7.1b": 7.1,
    "megatron24-16b": 16,
    "megatron24-32b": 32,
    "megatron24-70b": 70,
    "megatron24-119b": 119,
    "megatron24-177b": 177,
    "megatron24-314b": 314,
    "megatron24-462b": 462,
}


@pytest.mark.parametrize("name", sorted(MLM24))
def test_megatron24_sizes(name: str) -> None:
    # The smallest row's label is loose (1.75B counted; the README text says "2 billion").
    rel = 0.035 if name == "megatron24-1.7b" else 0.02
    assert load_model(name).num_params() / 1e9 == pytest.approx(MLM24[name], rel=rel)


def test_megatron24_embeddings_are_untied() -> None:
    # Tied embeddings would give 175.6B for the 177B row: the table implies untied.
    m = load_model("megatron24-177b")
    assert not m.tie_word_embeddings
    tied = dataclasses.replace(m, tie_word_embeddings=True)
    assert abs(m.num_params() / 1e9 - 177) < abs(tied.num_params() / 1e9 - 177)


# ---- from_hf_config ---------------------------------------------------------------------

LLAMA2_70B = {
    "model_type": "llama",
    "hidden_size": 8192,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "intermediate_size": 28672,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}


def test_llama_gqa_from_dict() -> None:
    m = from_hf_config(LLAMA2_70B, name="l70")
    assert (m.name, m.kv_heads, m.kv_size, m.gated_mlp) == ("l70", 8, 1024, True)
    assert (m.norm, m.position_embedding, m.bias) == ("rmsnorm", "rope", False)
    assert m.num_params() == EXACT["llama-2-70b"]
    assert m == dataclasses.replace(load_model("llama-2-70b"), name="l70", source=m.source)


def test_llama_defaults_to_multi_head_and_untied() -> None:
    cfg = {
        k: v
        for k, v in LLAMA2_70B.items()
        if k not in ("num_key_value_heads", "tie_word_embeddings")
    }
    m = from_hf_config(cfg)
    assert m.kv_heads == 64 and not m.tie_word_embeddings


def test_qwen2_has_qkv_bias_only() -> None:
    cfg = {
        "model_type": "qwen2",
        "hidden_size": 3584,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "intermediate_size": 18944,
        "vocab_size": 152064,
        "tie_word_embeddings": False,
    }
    m = from_hf_config(cfg)
    assert m.qkv_bias and not m.bias
    h, kv = 3584, 512
    assert m.attention_params() == 2 * h * h + 2 * h * kv + (h + 2 * kv)
    assert m.num_params() == EXACT["qwen2-7b"]


def test_gpt2_keys() -> None:
    cfg = {
        "model_type": "gpt2",
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "n_positions": 1024,
        "n_inner": None,
        "vocab_size": 50257,
    }
    m = from_hf_config(cfg, name="gpt2")
    assert m.intermediate_size == 3072 and m.position_embedding == "learned"
    assert m.num_params() == 124_439_808  # openai-community/gpt2, HF


def test_gpt2_keys_without_model_type() -> None:
    m = from_hf_config({"n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100})
    assert (m.hidden_size, m.intermediate_size, m.max_position_embeddings) == (64, 256, 1024)


def test_gpt_neox_from_config_file(tmp_path) -> None:
    # EleutherAI/pythia-1.4b: Biderman et al. 2023 Table 1 gives 1,208,602,624
    # non-embedding parameters; embed_in and embed_out add 2 * 50304 * 2048.
    cfg = {
        "model_type": "gpt_neox",
        "hidden_size": 2048,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 8192,
        "vocab_size": 50304,
        "max_position_embeddings": 2048,
        "rotary_pct": 0.25,
        "hidden_act": "gelu",
        "tie_word_embeddings": False,
        "_name_or_path": "EleutherAI/pythia-1.4b",
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    for source in (tmp_path / "config.json", str(tmp_path), tmp_path):
        m = from_hf_config(source)
        assert m.name == "EleutherAI/pythia-1.4b"
        assert m.num_params() == 1_208_602_624 + 2 * 50304 * 2048
        assert not m.tie_word_embeddings and m.position_embedding == "rope"
        assert str(tmp_path) in m.source


def test_opt_counts_the_two_offset_positions() -> None:
    cfg = {
        "model_type": "opt",
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "ffn_dim": 3072,
        "vocab_size": 50272,
        "max_position_embeddings": 2048,
        "word_embed_proj_dim": 768,
    }
    assert from_hf_config(cfg).num_params() == 125_239_296  # facebook/opt-125m, HF


def test_opt_projected_embeddings_rejected() -> None:
    cfg = {
        "model_type": "opt",
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "ffn_dim": 4096,
        "vocab_size": 50272,
        "word_embed_proj_dim": 512,
    }
    with pytest.raises(ValueError, match="word_embed_proj_dim = 512"):
        from_hf_config(cfg)


def test_bloom_keys_and_embedding_norm() -> None:
    cfg = {
        "model_type": "bloom",
        "n_embed": 1024,
        "n_layer": 24,
        "num_attention_heads": 16,
        "vocab_size": 250880,
    }
    m = from_hf_config(cfg)
    assert m.embedding_norm and m.position_embedding == "alibi"
    assert m.num_params() == 559_214_592  # bigscience/bloom-560m, HF


def test_mpt_release_config_alibi_no_bias() -> None:
    # mosaicml/mpt-7b config.json: ALiBi, no_bias (norms lose their bias too), vocab 50432.
    cfg = {
        "model_type": "mpt",
        "d_model": 4096,
        "n_heads": 32,
        "n_layers": 32,
        "expansion_ratio": 4,
        "max_seq_len": 2048,
        "vocab_size": 50432,
        "no_bias": True,
        "learned_pos_emb": True,
        "attn_config": {"alibi": True},
    }
    m = from_hf_config(cfg)
    assert (m.position_embedding, m.bias, m.norm_bias) == ("alibi", False, False)
    h = 4096
    assert m.num_params() == 32 * (12 * h * h + 2 * h) + 50432 * h + h


def test_mpt_benchmark_yaml_defaults_match_preset() -> None:
    cfg = {
        "model_type": "mpt",
        "d_model": 4096,
        "n_heads": 32,
        "n_layers": 32,
        "max_seq_len": 2048,
        "vocab_size": 50368,
    }
    assert from_hf_config(cfg).num_params() == MPT_README["mpt-7b"]


def test_classmethod_delegates() -> None:
    assert ModelSpec.from_hf_config(LLAMA2_70B).num_params() == EXACT["llama-2-70b"]


def test_missing_key_message() -> None:
    cfg = {k: v for k, v in LLAMA2_70B.items() if k != "hidden_size"}
    with pytest.raises(ValueError) as e:
        from_hf_config(cfg)
    assert str(e.value).startswith("config.json: missing 'hidden_size' (or n_embd")


def test_missing_key_names_the_file(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "gpt2", "n_embd": 64, "n_head": 4}))
    with pytest.raises(ValueError, match=r"config.json: missing 'num_hidden_layers' \(or n_layer"):
        from_hf_config(path)


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"model_type": "t5"}, r"model_type = 't5' is not supported \(supported: \['bloom'"),
        ({"num_local_experts": 8}, "num_local_experts = 8 .*mixture-of-experts"),
        ({"attention_bias": True}, "attention_bias = True differs from mlp_bias"),
    ],
)
def test_unsupported_configs_rejected(patch: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        from_hf_config(LLAMA2_70B | patch)


def test_bad_json_and_missing_file(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        from_hf_config(tmp_path)
    with pytest.raises(ValueError, match="is not a file"):
        from_hf_config(tmp_path / "nope.json")


# ---- catalogue and load_model -------------------------------------------------------------


def test_every_preset_is_cited_lower_case_and_close_to_its_published_size() -> None:
    names = list_models()
    assert len(names) == len(set(names)) >= 45
    for name in names:
        info = model_info(name)
        assert name == name.lower() and info["name"] == name
        assert len(info["source"]) > 20, name
        if info["family"]:
            assert len(info["family_source"]) > 20, name
        published = info["published_params"]
        assert published is not None, name
        assert info["num_params"] == pytest.approx(published, rel=0.035), name


def test_lookup_ignores_case_and_separators_and_accepts_hf_repo() -> None:
    m = load_model("llama-2-7b")
    assert load_model("LLaMA-2-7B") is m
    assert load_model("llama2_7b") is m
    assert load_model("meta-llama/Llama-2-7b-hf") is m
    assert load_model(m) is m


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(ValueError) as e:
        load_model("gpt-5")
    msg = str(e.value)
    assert "'gpt-5'" in msg and "gpt3-175b" in msg and "llama-3.1-405b" in msg
    with pytest.raises(ValueError, match=r"known: .*mpt-70b"):
        model_info("nope")


def test_load_model_paths(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA2_70B))
    assert load_model(tmp_path / "config.json").num_params() == EXACT["llama-2-70b"]
    assert load_model(str(tmp_path)).num_params() == EXACT["llama-2-70b"]
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        'family = "gpt3"\nhidden_size = 256\nnum_hidden_layers = 2\n'
        "num_attention_heads = 4\nintermediate_size = 1024\n"
    )
    m = load_model(toml)
    assert (m.name, m.vocab_size, m.max_position_embeddings) == ("tiny", 50257, 2048)
    assert "tiny.toml" in m.source


def test_load_model_dicts() -> None:
    assert load_model(LLAMA2_70B).num_params() == EXACT["llama-2-70b"]
    m = load_model(
        {
            "name": "toy",
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "vocab_size": 100,
            "intermediate_size": 256,
        }
    )
    assert (
        m.name == "toy"
        and m.num_params() == 2 * (12 * 64 * 64 + 13 * 64) + (100 + 2048) * 64 + 2 * 64
    )
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['hiden_size'\]"):
        load_model({"hiden_size": 64})
    with pytest.raises(ValueError, match=r"family 'gpt9' unknown; known: .*gpt3"):
        load_model({"family": "gpt9", "hidden_size": 64})


# ---- ModelSpec validation and counting -----------------------------------------------------


def _spec(**kw) -> ModelSpec:
    base = {
        "name": "t",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "vocab_size": 100,
        "intermediate_size": 256,
    }
    return ModelSpec(**(base | kw))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"hidden_size": 66}, "hidden_size: 66 not divisible by num_attention_heads = 4"),
        ({"num_key_value_heads": 3}, "num_key_value_heads: 3 must be .* = 4"),
        ({"num_key_value_heads": 0}, "num_key_value_heads: 0"),
        ({"vocab_size": -1}, "vocab_size: -1 must be a positive integer"),
        ({"num_hidden_layers": 2.0}, "num_hidden_layers: 2.0"),
        ({"position_embedding": "sinusoid"}, "position_embedding: 'sinusoid' must be one of"),
        ({"norm": "batchnorm"}, "norm: 'batchnorm' must be one of"),
        ({"bias": "yes"}, "bias: 'yes' must be true or false"),
        ({"position_offset": -2}, "position_offset: -2"),
        ({"name": ""}, "name: '' must be a non-empty string"),
    ],
)
def test_validation_messages_show_the_numbers(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _spec(**kw)


def test_spec_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_model("gpt3-175b").hidden_size = 1  # type: ignore[misc]


def test_norm_and_embedding_options_change_counts_by_the_right_amount() -> None:
    base = _spec()
    h, layers = 64, 2
    # 2 norms per layer + final norm lose their bias.
    assert base.num_params() - _spec(norm_bias=False).num_params() == (2 * layers + 1) * h
    assert base.num_params() - _spec(norm="rmsnorm").num_params() == (2 * layers + 1) * h
    assert _spec(embedding_norm=True).num_params() - base.num_params() == 2 * h
    assert _spec(position_offset=2).num_params() - base.num_params() == 2 * h
    assert base.num_params() - _spec(position_embedding="rope").num_params() == 2048 * h
    assert _spec(tie_word_embeddings=False).num_params() - base.num_params() == 100 * h
    gated = _spec(gated_mlp=True, bias=False)
    assert gated.mlp_params() == 3 * h * 256
