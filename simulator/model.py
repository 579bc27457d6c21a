"""`ModelSpec`: a decoder-only transformer described in Hugging Face `config.json` vocabulary.

Parameter counts follow what `sum(p.numel() for p in model.parameters())` gives for the
Hugging Face implementation of each family (checked against published totals in
tests/test_models.py). Mixture-of-experts layers (Mixtral, Qwen-MoE, DeepSeek-V3) have routed
experts, optional shared experts and a router; DeepSeek's multi-head latent attention (MLA)
has low-rank query and key/value projections. Not modelled: projected embeddings (OPT-350m),
LM-head biases, per-layer expert widths that differ between layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal

from hwprofiles.errors import UserError
from hwprofiles.typed import check, field_types
from simulator.limits import check_model_size

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
    "qk_norm",
    "shared_expert_gate",
    "router_bias",
)
_NON_NEGATIVE_INTS = (
    "n_routed_experts",
    "num_experts_per_tok",
    "n_shared_experts",
    "first_k_dense_replace",
    "qk_rope_head_dim",
    "qk_nope_head_dim",
    "num_nextn_predict_layers",
)
_OPTIONAL_POSITIVE_INTS = (
    "head_dim",
    "moe_intermediate_size",
    "shared_expert_intermediate_size",
    "q_lora_rank",
    "kv_lora_rank",
    "v_head_dim",
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
    head_dim: int | None = None
    """Width of one attention head; None = hidden_size / num_attention_heads (Qwen3 decouples
    it: 128 with hidden 4096 and 64 heads)."""
    qk_norm: bool = False
    """RMSNorm over each query and key head (Qwen3's `q_norm`, `k_norm`): 2 * head_dim params."""
    # ---- mixture of experts (Hugging Face / DeepSeek config.json names) ---------------------
    n_routed_experts: int = 0
    """Routed experts per MoE layer (Mixtral `num_local_experts`, Qwen `num_experts`); 0 = dense."""
    num_experts_per_tok: int = 0
    """Experts each token is routed to (top-k)."""
    moe_intermediate_size: int | None = None
    """Width of one routed expert's MLP (None = intermediate_size, as Mixtral)."""
    n_shared_experts: int = 0
    """Experts every token goes through (DeepSeek `n_shared_experts`, Qwen2-MoE: 1)."""
    shared_expert_intermediate_size: int | None = None
    """Total width of the shared experts (None = n_shared_experts * moe_intermediate_size)."""
    shared_expert_gate: bool = False
    """A sigmoid gate (Linear(h, 1)) on the shared expert's output (Qwen2-MoE)."""
    router_bias: bool = False
    """The router carries a per-expert bias (DeepSeek-V3 `e_score_correction_bias`)."""
    first_k_dense_replace: int = 0
    """The first k layers have a dense MLP of `intermediate_size` (DeepSeek-V3: 3)."""
    moe_layer_freq: int = 1
    """Layer i >= first_k_dense_replace is MoE when i % moe_layer_freq == 0 (DeepSeek's rule)."""
    # ---- multi-head latent attention (DeepSeek-V2/V3) ----------------------------------------
    q_lora_rank: int | None = None
    """Rank of the query down-projection (None: full-rank q_proj)."""
    kv_lora_rank: int | None = None
    """Rank of the compressed key/value latent; set = MLA attention."""
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int | None = None
    num_nextn_predict_layers: int = 0
    """Multi-token prediction modules (DeepSeek-V3: 1). Their weights are not in `num_params`
    (Hugging Face does not instantiate them); `mtp_params` counts them."""

    def __post_init__(self) -> None:
        for f, annotation in field_types(ModelSpec).items():  # types first: tp = "eight"
            check(getattr(self, f), annotation, f)
            check_model_size(f, getattr(self, f))
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
        for f in _NON_NEGATIVE_INTS:
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise UserError(f"{f}: {v!r} must be an integer >= 0")
        for f in _OPTIONAL_POSITIVE_INTS:
            v = getattr(self, f)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise UserError(f"{f}: {v!r} must be a positive integer (or absent)")
        if not isinstance(self.moe_layer_freq, int) or self.moe_layer_freq < 1:
            raise UserError(f"moe_layer_freq: {self.moe_layer_freq!r} must be an integer >= 1")
        self._check_moe()
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
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

    def _check_moe(self) -> None:
        e, k = self.n_routed_experts, self.num_experts_per_tok
        if e == 0:
            if k or self.n_shared_experts:
                raise UserError(
                    f"num_experts_per_tok: {k} (n_shared_experts {self.n_shared_experts}) "
                    "needs n_routed_experts >= 1"
                )
            return
        if not 1 <= k <= e:
            raise UserError(f"num_experts_per_tok: {k} must be in 1..n_routed_experts = {e}")
        if self.first_k_dense_replace > self.num_hidden_layers:
            raise UserError(
                f"first_k_dense_replace: {self.first_k_dense_replace} exceeds "
                f"num_hidden_layers = {self.num_hidden_layers}"
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
    def head_width(self) -> int:
        """Width of one attention head (`head_dim`, or hidden_size / heads)."""
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def q_size(self) -> int:
        """Width of Q (and of the attention output): heads * head width (MLA: qk head dim)."""
        if self.is_mla:
            return self.num_attention_heads * (self.qk_nope_head_dim + self.qk_rope_head_dim)
        return self.num_attention_heads * self.head_width

    @property
    def kv_size(self) -> int:
        """Width of K (and of V): kv_heads * head width (MLA: the heads' V width)."""
        if self.is_mla:
            return self.num_attention_heads * self.v_width
        return self.kv_heads * self.head_width

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def v_width(self) -> int:
        """Width of one head's values (MLA `v_head_dim`, else the head width)."""
        return self.v_head_dim or self.head_width

    @property
    def is_moe(self) -> bool:
        return self.n_routed_experts > 0

    @property
    def expert_size(self) -> int:
        """Intermediate width of one routed expert."""
        return self.moe_intermediate_size or self.intermediate_size

    @property
    def shared_size(self) -> int:
        """Total intermediate width of the shared experts (0 without)."""
        if self.shared_expert_intermediate_size is not None:
            return self.shared_expert_intermediate_size if self.n_shared_experts else 0
        return self.n_shared_experts * self.expert_size

    def num_moe_layers(self) -> int:
        """Layers with a mixture-of-experts MLP (DeepSeek's rule, see `moe_layer_freq`)."""
        if not self.is_moe:
            return 0
        return sum(
            1
            for i in range(self.first_k_dense_replace, self.num_hidden_layers)
            if i % self.moe_layer_freq == 0
        )

    @property
    def moe_fraction(self) -> float:
        """Share of the layers that are MoE layers (the engines cost an average layer)."""
        return self.num_moe_layers() / self.num_hidden_layers

    # ---- parameter counts -------------------------------------------------------------
    def _norm_size(self) -> int:
        """Parameters of one norm: weight, plus bias for a LayerNorm with `norm_bias`."""
        with_bias = self.norm == "layernorm" and self.norm_bias
        return 2 * self.hidden_size if with_bias else self.hidden_size

    def attention_params(self) -> int:
        """Q, K, V and output projections: h·q + 2h·kv_size + q·h weights, plus biases
        (q = heads · head width; = 2h² + 2h·kv_size when heads · head width = h).
        MLA (DeepSeek-V2/V3): the low-rank projections and their norms instead."""
        if self.is_mla:
            return self._mla_params()
        h, q, kv = self.hidden_size, self.q_size, self.kv_size
        weights = h * q + 2 * h * kv + q * h
        qkv_biases = q + 2 * kv if (self.bias or self.qkv_bias) else 0
        out_bias = h if self.bias else 0
        qk_norms = 2 * self.head_width if self.qk_norm else 0
        return weights + qkv_biases + out_bias + qk_norms

    def _mla_params(self) -> int:
        """DeepSeek-V3 attention (modeling_deepseek.py `DeepseekV3Attention`): q_a_proj h x r_q,
        q_a_layernorm r_q, q_b_proj r_q x heads(nope + rope) (or q_proj h x heads(nope + rope)),
        kv_a_proj_with_mqa h x (r_kv + rope), kv_a_layernorm r_kv, kv_b_proj
        r_kv x heads(nope + v), o_proj heads v x h; no biases."""
        h, a = self.hidden_size, self.num_attention_heads
        rq, rkv = self.q_lora_rank, self.kv_lora_rank or 0
        qk = self.qk_nope_head_dim + self.qk_rope_head_dim
        q = h * a * qk if rq is None else h * rq + rq + rq * a * qk
        kv = (
            h * (rkv + self.qk_rope_head_dim)
            + rkv
            + rkv * a * (self.qk_nope_head_dim + self.v_width)
        )
        return q + kv + self.attention_out_params()

    def attention_out_params(self) -> int:
        """The output projection (o_proj): heads · v width · h, plus its bias."""
        out = self.num_attention_heads * self.v_width if self.is_mla else self.q_size
        return out * self.hidden_size + (self.hidden_size if self.bias else 0)

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

    def expert_params(self) -> int:
        """One routed expert: a gated (SwiGLU) MLP of `expert_size`, no biases."""
        return 3 * self.hidden_size * self.expert_size

    def router_params(self) -> int:
        """The router (gate) Linear(h, experts), plus DeepSeek-V3's per-expert bias."""
        e = self.n_routed_experts
        return e * self.hidden_size + (e if self.router_bias else 0)

    def shared_expert_params(self) -> int:
        """Shared experts (a gated MLP of `shared_size`), plus Qwen2-MoE's gate Linear(h, 1)."""
        if not self.shared_size:
            return 0
        return 3 * self.hidden_size * self.shared_size + (
            self.hidden_size if self.shared_expert_gate else 0
        )

    def moe_mlp_params(self) -> int:
        """The MLP of a MoE layer: routed experts, shared experts and router."""
        return (
            self.n_routed_experts * self.expert_params()
            + self.shared_expert_params()
            + self.router_params()
        )

    def dense_layer_params(self) -> int:
        return self.attention_params() + self.mlp_params() + self.norm_params()

    def moe_layer_params(self) -> int:
        return self.attention_params() + self.moe_mlp_params() + self.norm_params()

    def _all_layer_params(self) -> int:
        n_moe = self.num_moe_layers()
        dense = self.num_hidden_layers - n_moe
        return dense * self.dense_layer_params() + n_moe * self.moe_layer_params()

    def layer_params(self) -> float:
        """Parameters of one layer; for a MoE model the average over its layers (the engines
        cost an average layer: DeepSeek-V3's 3 dense layers spread over all 61)."""
        if not self.is_moe:
            return self.dense_layer_params()
        return self._all_layer_params() / self.num_hidden_layers

    def expert_layer_params(self) -> float:
        """Routed-expert parameters per layer (averaged over layers): the ones that expert
        parallelism shards; everything else is dense (sharded by tensor parallelism)."""
        return (
            self.num_moe_layers()
            * self.n_routed_experts
            * self.expert_params()
            / (self.num_hidden_layers)
        )

    def active_params(self) -> int:
        """Parameters one token uses: dense layers, and in MoE layers attention, norms, router,
        shared experts and `num_experts_per_tok` routed experts; embeddings and head included
        (the convention of Mixtral's '12.9B active' and Qwen3's 'A22B')."""
        if not self.is_moe:
            return self.num_params()
        routed_idle = (self.n_routed_experts - self.num_experts_per_tok) * self.expert_params()
        return self.num_params() - self.num_moe_layers() * routed_idle

    def mtp_params(self) -> int:
        """Multi-token prediction modules as DeepSeek-V3's checkpoint stores them (model card:
        '685B = 671B main model + 14B MTP'): per module a MoE layer, enorm and hnorm, eh_proj
        (2h x h), shared_head.norm, and its own copies of the embedding and output head."""
        h = self.hidden_size
        block = self.moe_layer_params() if self.is_moe else self.dense_layer_params()
        per = block + 2 * h * h + 3 * self._norm_size() + 2 * self.vocab_size * h
        return self.num_nextn_predict_layers * per

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
        return self._all_layer_params() + self.embedding_params() + self.lm_head_params()

    # ---- parameter tensors (what a per-tensor optimizer loops over) ----------------------
    def _norm_tensors(self) -> int:
        return 2 if self.norm == "layernorm" and self.norm_bias else 1

    def _attention_tensors(self) -> int:
        if self.is_mla:  # q_a, q_a_norm, q_b (or q_proj), kv_a, kv_a_norm, kv_b, o
            return (3 if self.q_lora_rank else 1) + 4
        qkv = 1 if self.fused_qkv else 3
        attn = qkv + 1 + (qkv if (self.bias or self.qkv_bias) else 0) + (1 if self.bias else 0)
        return attn + (2 if self.qk_norm else 0)

    def _dense_layer_tensors(self) -> int:
        mats = 3 if self.gated_mlp else 2
        mlp = mats + (mats if self.bias else 0)
        return 2 * self._norm_tensors() + self._attention_tensors() + mlp

    def _moe_layer_tensors(self) -> int:
        routed = 3 * self.n_routed_experts + 1 + (1 if self.router_bias else 0)
        shared = (3 + (1 if self.shared_expert_gate else 0)) if self.shared_size else 0
        return 2 * self._norm_tensors() + self._attention_tensors() + routed + shared

    def layer_tensors(self) -> float:
        """Parameter tensors of one layer: two norms, the attention and MLP matrices, and
        their biases (Hugging Face's module layout; one QKV matrix with `fused_qkv`); for a
        MoE model the average over its layers."""
        n_moe = self.num_moe_layers()
        dense = self.num_hidden_layers - n_moe
        if not n_moe:
            return self._dense_layer_tensors()
        total = dense * self._dense_layer_tensors() + n_moe * self._moe_layer_tensors()
        return total / self.num_hidden_layers

    def num_param_tensors(self) -> int:
        """Parameter tensors of the model (`len(list(model.parameters()))`)."""
        emb = 1 + (1 if self.position_embedding == "learned" else 0)
        emb += self._norm_tensors() * (2 if self.embedding_norm else 1)  # (+ embedding norm)
        head = 0 if self.tie_word_embeddings else 1
        return round(self.num_hidden_layers * self.layer_tensors()) + emb + head

    def num_params_non_embedding(self) -> int:
        """Parameters excluding token/position embeddings (and an untied LM head)."""
        return self._all_layer_params()
