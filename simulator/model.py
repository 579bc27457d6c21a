"""`ModelSpec`: a decoder-only transformer described in Hugging Face `config.json` vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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

    def __post_init__(self) -> None:
        for f in ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                  "intermediate_size"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{f}: {v!r} must be a positive integer")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size: {self.hidden_size} not divisible by "
                f"num_attention_heads = {self.num_attention_heads}"
            )
        kv = self.kv_heads
        if kv < 1 or self.num_attention_heads % kv:
            raise ValueError(
                f"num_key_value_heads: {kv} must divide num_attention_heads = "
                f"{self.num_attention_heads}"
            )

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
    def attention_params(self) -> int:
        h, kv = self.hidden_size, self.kv_size
        weights = h * h + 2 * h * kv + h * h  # Q, K, V, output projection
        biases = (h + 2 * kv + h) if self.bias else 0
        return weights + biases

    def mlp_params(self) -> int:
        h, f = self.hidden_size, self.intermediate_size
        n_in = 2 if self.gated_mlp else 1
        weights = n_in * h * f + f * h
        biases = (n_in * f + h) if self.bias else 0
        return weights + biases

    def norm_params(self) -> int:
        """Per layer: two norms; LayerNorm has weight and bias, RMSNorm only a weight."""
        per = 2 * self.hidden_size if self.norm == "layernorm" else self.hidden_size
        return 2 * per

    def layer_params(self) -> int:
        return self.attention_params() + self.mlp_params() + self.norm_params()

    def embedding_params(self) -> int:
        """Token embedding, learned positions, and the final norm."""
        pos = self.max_position_embeddings * self.hidden_size
        pos = pos if self.position_embedding == "learned" else 0
        final_norm = 2 * self.hidden_size if self.norm == "layernorm" else self.hidden_size
        return self.vocab_size * self.hidden_size + pos + final_norm

    def lm_head_params(self) -> int:
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def num_params(self) -> int:
        """Total parameters, counted as Hugging Face would (`sum(p.numel())`)."""
        return (
            self.num_hidden_layers * self.layer_params()
            + self.embedding_params()
            + self.lm_head_params()
        )

    def num_params_non_embedding(self) -> int:
        """Parameters excluding token/position embeddings (and an untied LM head)."""
        return self.num_hidden_layers * self.layer_params()
