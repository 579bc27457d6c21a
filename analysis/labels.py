"""Human labels for the internal keys that reach terminal output, reports and figure legends.

JSON and CSV keep the keys (a contract); everything a person reads goes through `label`.
"""

from __future__ import annotations

LABELS = {
    # parts of a step (`StepResult.breakdown`)
    "compute": "compute",
    "recompute": "recompute",
    "comm_tp": "tensor-parallel comm.",
    "comm_cp": "context-parallel comm.",
    "comm_pp": "pipeline send/recv",
    "comm_dp": "data-parallel grad. sync",
    "comm_zero3": "ZeRO-3 weight gathers",
    "pipeline_bubble": "pipeline bubble",
    "copies": "host/device copies",
    "hooks": "framework hooks",
    "optimizer": "optimizer step",
    # energy keys of the seed comparison
    "energy_llmcap_j": "llmcap's energy",
    "energy_mixed_literal_j": "seed E x P/L",
    "energy_mixed_intended_j": "seed E x L/P",
    # validation metrics and engines
    "step_time_s": "step time (s)",
    "speedup": "speed-up",
    "comm_fraction": "exposed communication share",
    "bf16_fp32_time_ratio": "bf16 / fp32 step time",
    "analytic": "closed form",
    "des": "SimPy (DES)",
    "seed": "seed formula",
}


def label(key: str) -> str:
    """The human label of an internal key (the key itself, with _ as spaces, when unknown)."""
    return LABELS.get(key, key.replace("_", " "))
