"""The seed document's formulas, computed literally, and where they hold.

The seed article ("LLM: a revolutionary change of computer architecture", section 4.1-4.2)
writes four models. Notation is the article's own. Each is implemented as written; llmcap's
reports print them beside its own prediction so the gap is visible.
"""

from __future__ import annotations

from typing import Any

from hwprofiles.precision import PRECISIONS

PRECISION_BITS = {k: p.bits for k, p in PRECISIONS.items()}
"""Storage width of each precision in bits (IEEE 754 / OCP FP8); tf32 is stored in 32 bits."""


def params_split(n: float, k: int) -> float:
    """Data-parallel model split: ``N = n × k`` (total parameters N, k sub-models of n each).

    Returns N. Holds exactly for pure parameter sharding (ZeRO-3/FSDP, tensor or pipeline
    split); says nothing about activations, optimizer state or replication under plain DP.
    """
    return n * k


def params_per_submodel(N: float, k: int) -> float:
    """The same relation solved for n: ``n = N / k``."""
    if k < 1:
        raise ValueError(f"k: {k} must be >= 1")
    return N / k


def data_per_node(D: float, k: int) -> float:
    """Distributed data: each of k nodes processes ``D / k`` of the total data D."""
    if k < 1:
        raise ValueError(f"k: {k} must be >= 1")
    return D / k


def speedup_linear(m: int, k: int) -> float:
    """Hardware acceleration: ``C_accel = m × k × C``; returns the speed-up factor m·k.

    m accelerators, k sub-models. Linear: ignores communication, pipeline bubbles, stragglers
    and efficiency loss at small per-device work, so it is an upper bound (Amdahl).
    """
    if m < 1 or k < 1:
        raise ValueError(f"m, k: ({m}, {k}) must both be >= 1")
    return float(m * k)


def energy_mixed_literal(E: float, P: int, L: int) -> float:
    """Mixed precision, as printed: ``E_mixed = E × P / L``.

    P = original precision bits, L = low precision bits. Read literally this *increases*
    energy (P=32, L=16 gives 2 E), contrary to the article's own text ("reduces energy").
    """
    if P <= 0 or L <= 0:
        raise ValueError(f"P, L: ({P}, {L}) must be positive bit widths")
    return E * P / L


def energy_mixed_intended(E: float, P: int, L: int) -> float:
    """Mixed precision, the intended reading: ``E_mixed = E × L / P`` (energy scales with bits).

    Still an idealisation: it assumes energy proportional to operand width, while real steps
    also spend energy on fp32 master weights, optimizer, communication and idle power.
    """
    if P <= 0 or L <= 0:
        raise ValueError(f"P, L: ({P}, {L}) must be positive bit widths")
    return E * L / P


def document_predictions(
    *,
    n_params: float,
    num_gpus: int,
    model_parallel: int,
    data_parallel: int,
    tokens_per_step: float,
    single_gpu_step_time_s: float | None,
    energy_per_step_j: float,
    precision: str,
    energy_fp32_j: float | None = None,
) -> dict[str, Any]:
    """What the seed formulas predict for one setup, for reports (JSON-ready)."""
    k_models = model_parallel
    speedup = speedup_linear(data_parallel, k_models)
    out: dict[str, Any] = {
        "N_params": params_split(params_per_submodel(n_params, k_models), k_models),
        "n_params_per_submodel": params_per_submodel(n_params, k_models),
        "k_submodels": k_models,
        "m_accelerators": data_parallel,
        "D_tokens_per_node_per_step": data_per_node(tokens_per_step, num_gpus),
        "speedup_m_times_k": speedup,
        "step_time_s_linear": (
            single_gpu_step_time_s / speedup if single_gpu_step_time_s is not None else None
        ),
    }
    bits = PRECISION_BITS[precision]
    if bits < 32 and energy_fp32_j is not None:
        # E = llmcap's fp32 step energy for the same layout; the formulas map it to `precision`
        out["E_fp32_j"] = energy_fp32_j
        out["energy_mixed_literal_j"] = energy_mixed_literal(energy_fp32_j, 32, bits)
        out["energy_mixed_intended_j"] = energy_mixed_intended(energy_fp32_j, 32, bits)
        out["energy_llmcap_j"] = energy_per_step_j
        out["energy_note"] = (
            f"E_mixed = E x P/L with P=32, L={bits}: read literally it multiplies the fp32 "
            f"energy by {32 // bits} (an increase), while the text says mixed precision saves "
            f"energy; the intended reading is E x L/P. llmcap's own {precision} prediction is "
            "energy_llmcap_j"
        )
    out["note"] = (
        "seed formulas: linear speed-up m*k (m data-parallel replicas, k model-parallel "
        "sub-models) ignores communication, bubbles and efficiency loss"
    )
    return out
