"""A plain decoder-only GPT for validation runs, sized by a `GPTConfig`.

Built so that llmcap's FLOP and parameter accounting is true of it: learned absolute
positions, LayerNorm with bias before attention and MLP, a 2-matrix GELU MLP of width
`intermediate_size`, causal scaled-dot-product attention (`torch.nn.functional.
scaled_dot_product_attention`), biases on every linear layer, the output matrix tied to the
token embedding, and no dropout. `sum(p.numel())` equals `ModelSpec.num_params()` for the
same sizes (checked in the tests).

Presets are small on purpose: a validation run trains on the machine at hand (a 2-core CPU
in CI) for a few dozen steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from validation.gptconfig import GPTConfig  # re-exported for callers

INIT_STD = 0.02
"""Weight init standard deviation (GPT-2, Radford et al. 2019; nanoGPT uses the same)."""


class Block(nn.Module):
    """Pre-norm transformer layer: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.n_head = cfg.num_attention_heads
        self.ln_1 = nn.LayerNorm(h)
        self.qkv = nn.Linear(h, 3 * h)
        self.proj = nn.Linear(h, h)
        self.ln_2 = nn.LayerNorm(h)
        self.fc = nn.Linear(h, cfg.ffn_size)
        self.fc_out = nn.Linear(cfg.ffn_size, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(h, dim=2)
        # (b, s, h) -> (b, heads, s, head_dim) for SDPA
        q, k, v = (t.view(b, s, self.n_head, h // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, s, h))
        return x + self.fc_out(F.gelu(self.fc(self.ln_2(x))))


class GPT(nn.Module):
    """Token + learned position embedding, `num_hidden_layers` blocks, final LayerNorm,
    logits through the (tied) token embedding; `forward` returns the mean cross-entropy."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.wpe = nn.Embedding(cfg.seq_len, cfg.hidden_size)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.ln_f = nn.LayerNorm(cfg.hidden_size)
        self.apply(self._init)
        # residual projections scaled by 1/sqrt(2 * layers) (GPT-2 paper, Sec. 2.3)
        for blk in self.blocks:
            for lin in (blk.proj, blk.fc_out):
                nn.init.normal_(lin.weight, 0.0, INIT_STD / math.sqrt(2 * cfg.num_hidden_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for blk in self.blocks:
            x = blk(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # tied output matrix
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))


def synthetic_batches(
    cfg: GPTConfig, n: int, seed: int, device: str | torch.device = "cpu"
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`n` batches of uniformly random tokens (inputs, next-token targets), seeded.

    Random tokens cost the same FLOPs as text; the loss only has to be finite.
    """
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        toks = torch.randint(
            0, cfg.vocab_size, (cfg.micro_batch_size, cfg.seq_len + 1), generator=gen
        )
        out.append((toks[:, :-1].to(device), toks[:, 1:].to(device)))
    return out
