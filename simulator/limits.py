"""Documented limits on model and cluster sizes, so that no input runs unbounded.

Above a `MAX_*` a value is refused (`UserError`, one line); above a `WARN_*` it is accepted
with a warning (a what-if may be absurd on purpose). The limits sit one to two orders of
magnitude above the largest published values, so no real model or cluster meets them; they
exist so that a typo (an extra three zeros) or a fuzzer cannot make llmcap compute for hours
or overflow its arithmetic.

Largest published values, for scale (config.json / paper tables):
hidden 18,432 (PaLM 540B, Chowdhery et al. 2022, Table 1) and 20,480 (MT-NLG 530B,
Smith et al. 2022); layers 126 (Llama 3.1 405B, Dubey et al. 2024, Table 3); vocabulary
262,144 (Gemma 3 config.json); context 10 M tokens (Llama 4 Scout model card, 2025); experts
256 routed (DeepSeek-V3 config.json); clusters of 100 k-200 k GPUs (xAI Colossus, 2024-2025
press statements; Meta's two 24 k-GPU clusters for Llama 3).
"""

from __future__ import annotations

import warnings

from hwprofiles.errors import InputWarning, UserError

MAX_MODEL = {
    "hidden_size": 2**18,
    "num_hidden_layers": 2**14,
    "num_attention_heads": 2**14,
    "num_key_value_heads": 2**14,
    "vocab_size": 2**24,
    "intermediate_size": 2**20,
    "moe_intermediate_size": 2**20,
    "max_position_embeddings": 2**27,
    "head_dim": 2**14,
    "n_routed_experts": 2**16,
    "num_experts_per_tok": 2**16,
}
"""ModelSpec field -> largest value accepted (about 10x-100x the largest published)."""

MAX_SEQ_LEN = 2**27
"""Tokens per sequence (134 M; 13x Llama 4 Scout's 10 M context)."""
MAX_GPUS = 2**30
"""GPUs in one job (1.07e9): refused above, where counts stop being arithmetic on sizes."""
WARN_GPUS = 2**20
"""GPUs (1,048,576, ~5x the largest announced cluster): accepted with a warning."""
MAX_BATCH = 2**30
"""Sequences per step and per micro-batch."""
MAX_DES_SLOTS = 2**18
"""SimPy engine: micro-batches x pipeline stages x virtual stages simulated in one step. At
about 25 µs of CPU per slot (2-core AMD EPYC VM, 2026-12-02, gpt3-125m, pp 64: 1 M slots in
27 s) the limit bounds one prediction to a few seconds; above it use the closed form."""


def check_model_size(field: str, value: int | None) -> None:
    """`UserError` if a model dimension is above its `MAX_MODEL` limit."""
    limit = MAX_MODEL.get(field)
    if limit is not None and value is not None and value > limit:
        raise UserError(field, value, f"is above llmcap's limit of {limit:,} (simulator.limits)")


def check_gpus(gpus: int, field: str = "gpus") -> None:
    """Refuse above `MAX_GPUS`; warn above `WARN_GPUS`."""
    if gpus > MAX_GPUS:
        raise UserError(field, gpus, f"is above llmcap's limit of {MAX_GPUS:,} GPUs")
    if gpus > WARN_GPUS:
        warnings.warn(
            InputWarning(
                field, gpus, f"is more than {WARN_GPUS:,} GPUs, ~5x the largest cluster built"
            ),
            stacklevel=2,
        )


MAX_SIGMA = 5.0
"""Largest lognormal sigma for --jitter and --speed-sigma: at 5 the 99th percentile of a
duration is e^(2.33 x 5), about 10^5 times its median, already no training step."""


class DesTooLarge(UserError):
    """The SimPy engine was asked for more than `MAX_DES_SLOTS` (callers may fall back)."""


MAX_LINK_GBPS = 1e5
"""Largest NIC line rate in a what-if (Gb/s per direction): 100 Tb/s, 125x the 800 Gb/s of
the fastest shipping NICs (NVIDIA ConnectX-8 SuperNIC, 2024 product brief)."""

MAX_TOKENS = 1e18
"""Training tokens (10^18): about 27,000x the largest published pre-training sets (36 T tokens
for Qwen3, Qwen3 Technical Report 2025; 15 T for Llama 3); above it times and energies leave
the range of finite floats in the whole-run model."""

MAX_SWEEP_POINTS = 100_000
"""Points in one `llmcap sweep` grid (and values in one range axis). Measured on the 2-core
AMD EPYC VM (2026-12-03, load ~2): building a grid's point keys costs ~130 µs CPU and ~360 B
each (13 s, 36 MB for 10^5 points) and one closed-form point ~0.1 s CPU, so 10^5 points are
~3 CPU-hours (minutes on a Dask cluster) while an extra three zeros in a range would mean
months. A larger study is several grids (one output directory each)."""

MAX_LOCAL_RANKS = 256
"""Ranks `llmcap validate` starts on this one machine (--nproc). Each is a Python process holding
torch: ~220 MB resident before any model (measured 2026-12-03, torch 2.13 CPU), so 256 ranks
already need ~56 GB and a typo (--nproc 100000) would exhaust memory and the process table
rather than measure anything. Eight GPUs (or 72 in an NVL72 rack) is the largest real node."""
