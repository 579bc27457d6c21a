"""`ModelSpec`: a decoder-only transformer described in Hugging Face `config.json` vocabulary.

Parameter counts follow what `sum(p.numel() for p in model.parameters())` gives for the
Hugging Face implementation of each family (checked against published totals in
tests/test_models.py). Not modelled: mixture-of-experts, a head width other than
`hidden_size / num_attention_heads`, projected embeddings (OPT-350m), LM-head biases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal

from hwprofiles.errors import UserError

POSITION_EMBEDDINGS = ("learned", "rope", "alibi")
NORMS = ("layernorm", "rmsnorm")
_POSITIVE_INTS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "vocab_size",
    "intermediate_size",
    "max_position_embeddings",
)
_FLAGS = (
    "gated_mlp",
    "tie_word_embeddings",
    "bias",
    "qkv_bias",
    "norm_bias",
    "embedding_norm",
    "fused_qkv",
)


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of a decoder-only transformer.

    Field names follow Hugging Face `config.json` (`hidden_size`, `num_hidden_layers`, ...).
    """

    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    vocab_size: int
    intermediate_size: int
    """MLP inner width (for a gated MLP: the width of each of gate and up projections)."""
    num_key_value_heads: int | None = None
    """Grouped-query attention: number of K/V heads (None = multi-head, same as query heads)."""
    gated_mlp: bool = False
    """SwiGLU-style gated MLP (3 matrices) instead of a plain 2-matrix MLP."""
    hidden_act: str = "gelu"
    max_position_embeddings: int = 2048
    position_embedding: Literal["learned", "rope", "alibi"] = "learned"
    """Learned absolute positions add `max_position_embeddings * hidden_size` parameters."""
    tie_word_embeddings: bool = True
    """Input embedding and output (logits) matrix shared."""
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"
    bias: bool = True
    """Linear layers carry biases (GPT-2/3, OPT, BLOOM) or not (Llama, Mistral)."""
    source: str = ""
    qkv_bias: bool = False
    """Q, K and V projections carry biases even when `bias` is False (Qwen2)."""
    norm_bias: bool = True
    """LayerNorm carries a bias (False for MPT with `no_bias`); ignored for RMSNorm."""
    embedding_norm: bool = False
    """A LayerNorm right after the token embedding (BLOOM's `word_embeddings_layernorm`)."""
    position_offset: int = 0
    """Extra rows in a learned position table (OPT reserves 2 for its padding offset)."""
    fused_qkv: bool = False
    """Q, K and V in one matrix (GPT-2's `c_attn`, nanoGPT): one weight (and bias) tensor
    instead of three. Changes the count of parameter tensors, not of parameters."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UserError(f"name: {self.name!r} must be a non-empty string")
        for f in _POSITIVE_INTS:
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UserError(f"{f}: {v!r} must be a positive integer")
        for f in _FLAGS:
            if not isinstance(getattr(self, f), bool):
                raise UserError(f"{f}: {getattr(self, f)!r} must be true or false")
        if self.position_embedding not in POSITION_EMBEDDINGS:
            raise UserError(
                f"position_embedding: {self.position_embedding!r} must be one of "
                f"{POSITION_EMBEDDINGS}"
            )
        if self.norm not in NORMS:
            raise UserError(f"norm: {self.norm!r} must be one of {NORMS}")
        if not isinstance(self.position_offset, int) or self.position_offset < 0:
            raise UserError(f"position_offset: {self.position_offset!r} must be an integer >= 0")
        if self.hidden_size % self.num_attention_heads:
            raise UserError(
                f"hidden_size: {self.hidden_size} not divisible by "
                f"num_attention_heads = {self.num_attention_heads}"
            )
        kv = self.num_key_value_heads
        if kv is not None and (not isinstance(kv, int) or kv < 1 or self.num_attention_heads % kv):
            raise UserError(
                f"num_key_value_heads: {kv!r} must be a positive integer dividing "
                f"num_attention_heads = {self.num_attention_heads}"
            )

    @classmethod
    def from_hf_config(
        cls, source: str | PathLike[str] | Mapping[str, Any], name: str | None = None
    ) -> ModelSpec:
        """Build from a Hugging Face `config.json` (path, folder or dict); see `hf_config`."""
        from simulator.hf_config import from_hf_config  # hf_config imports this module

        return from_hf_config(source, name)

    @property
    def kv_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def kv_size(self) -> int:
        """Width of K (and of V): kv_heads * head_dim."""
        return self.kv_heads * self.head_dim

    # ---- parameter counts -------------------------------------------------------------
    def _norm_size(self) -> int:
        """Parameters of one norm: weight, plus bias for a LayerNorm with `norm_bias`."""
        with_bias = self.norm == "layernorm" and self.norm_bias
        return 2 * self.hidden_size if with_bias else self.hidden_size

    def attention_params(self) -> int:
        """Q, K, V and output projections: 2h² + 2h·kv_size weights, plus biases."""
        h, kv = self.hidden_size, self.kv_size
        weights = h * h + 2 * h * kv + h * h
        qkv_biases = h + 2 * kv if (self.bias or self.qkv_bias) else 0
        out_bias = h if self.bias else 0
        return weights + qkv_biases + out_bias

    def mlp_params(self) -> int:
        """Up (and gate) plus down projection: (2 or 3)·h·f weights, plus biases."""
        h, f = self.hidden_size, self.intermediate_size
        n_in = 2 if self.gated_mlp else 1
        weights = n_in * h * f + f * h
        biases = (n_in * f + h) if self.bias else 0
        return weights + biases

    def norm_params(self) -> int:
        """Per layer: two norms (before attention and before the MLP)."""
        return 2 * self._norm_size()

    def layer_params(self) -> int:
        return self.attention_params() + self.mlp_params() + self.norm_params()

    def embedding_params(self) -> int:
        """Token embedding, learned positions, the embedding norm (BLOOM) and the final norm."""
        pos = 0
        if self.position_embedding == "learned":
            pos = (self.max_position_embeddings + self.position_offset) * self.hidden_size
        emb_norm = self._norm_size() if self.embedding_norm else 0
        return self.vocab_size * self.hidden_size + pos + emb_norm + self._norm_size()

    def lm_head_params(self) -> int:
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def num_params(self) -> int:
        """Total parameters, counted as Hugging Face would (`sum(p.numel())`)."""
        return (
            self.num_hidden_layers * self.layer_params()
            + self.embedding_params()
            + self.lm_head_params()
        )

    # ---- parameter tensors (what a per-tensor optimizer loops over) ----------------------
    def _norm_tensors(self) -> int:
        return 2 if self.norm == "layernorm" and self.norm_bias else 1

    def layer_tensors(self) -> int:
        """Parameter tensors of one layer: two norms, the attention and MLP matrices, and
        their biases (Hugging Face's module layout; one QKV matrix with `fused_qkv`)."""
        qkv = 1 if self.fused_qkv else 3
        attn = qkv + 1 + (qkv if (self.bias or self.qkv_bias) else 0) + (1 if self.bias else 0)
        mats = 3 if self.gated_mlp else 2
        mlp = mats + (mats if self.bias else 0)
        return 2 * self._norm_tensors() + attn + mlp

    def num_param_tensors(self) -> int:
        """Parameter tensors of the model (`len(list(model.parameters()))`)."""
        emb = 1 + (1 if self.position_embedding == "learned" else 0)
        emb += self._norm_tensors() * (2 if self.embedding_norm else 1)  # (+ embedding norm)
        head = 0 if self.tie_word_embeddings else 1
        return self.num_hidden_layers * self.layer_tensors() + emb + head

    def num_params_non_embedding(self) -> int:
        """Parameters excluding token/position embeddings (and an untied LM head)."""
        return self.num_hidden_layers * self.layer_params()
