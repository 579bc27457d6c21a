"""`EngineStep`: what either engine computes for one step, with one definition of each label.

The closed form (`analysis.closed_form`, vectorised: one flat array per "part/label" key) and
the SimPy engine (`simulator.des.run`) both produce an `EngineStep`; `analysis.predict` turns
it into the user-facing `StepResult`. The label sets are defined here once; an engine that
forgets a label, or invents one, fails when its step is built (it cannot silently borrow the
other engine's value).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

BREAKDOWN: dict[str, str] = {
    "compute": "kernels of the heaviest stage over the step (recompute included), slowed by "
    "the collectives running beside them",
    "comm_tp": "tensor-parallel collectives of that stage not hidden behind its kernels",
    "comm_cp": "context-parallel K/V exchanges of that stage not hidden behind attention",
    "comm_ep": "expert-parallel all-to-alls (token dispatch and combine) of that stage not "
    "hidden (mixture-of-experts models only)",
    "pipeline_bubble": "the rest of the step the pipeline keeps that stage waiting (fill, "
    "drain, imbalance)",
    "comm_pp": "pipeline sends on the critical path not hidden behind compute",
    "comm_zero3": "ZeRO-3 gathers and reduce-scatters on the critical path not hidden behind "
    "compute (a fill or drain pass of any stage waiting for its gather too, not the bubble)",
    "comm_dp": "data-parallel gradient reduction and ZeRO-1/2 parameter gathers not hidden",
    "copies": "the framework's buffer copies around the DP collectives",
    "hooks": "FSDP2's host time per unit",
    "optimizer": "the optimizer step (memory-bound AdamW, plus host time per tensor)",
}
"""Parts of the step time (s); they sum to it."""
COMM_DIMS = ("tp", "cp", "pp", "dp", "zero3")
"""Communication kinds of `comm_total` (s, exposed + hidden, per GPU)."""
BYTES_DIMS = ("tp", "cp", "pp", "dp")
"""Dimensions of `comm_bytes` (bytes each GPU puts on the wire per step; dp includes ZeRO)."""
MEMORY_PARTS = ("weights", "gradients", "optimizer", "activations", "zero3_buffers")
"""Parts of the peak memory per GPU (bytes)."""

_GROUPS = {
    "breakdown": tuple(k for k in BREAKDOWN if k != "comm_ep"),
    "comm_total": COMM_DIMS,
    "comm_bytes": BYTES_DIMS,
    "memory": MEMORY_PARTS,
}
_MOE_LABELS = {"breakdown": ("comm_ep",), "comm_total": ("ep",), "comm_bytes": ("ep",)}
"""Labels a mixture-of-experts step has (its expert-parallel all-to-alls) and a dense one
omits, so dense documents stay as they were; both engines give all three or none."""
_SCALARS = (
    "step_time_s",
    "num_microbatches",
    "memory_per_gpu_bytes",
    "energy_per_gpu_j",
    "compute_mb_s",
    "recompute_s",
)


@dataclass
class EngineStep:
    """One predicted step per GPU (s, bytes, J), as either engine computed it."""

    step_time_s: float
    num_microbatches: float
    breakdown: dict[str, float]
    comm_total: dict[str, float]
    comm_bytes: dict[str, float]
    memory: dict[str, float]
    memory_per_gpu_bytes: float
    energy_per_gpu_j: float
    compute_mb_s: float
    """Compute per micro-batch on the heaviest stage (s)."""
    recompute_s: float
    """Recomputed forward time per step on the heaviest stage (s)."""

    def __post_init__(self) -> None:
        moe = {(g, lab) for g, labs in _MOE_LABELS.items() for lab in labs}
        have = {(g, lab) for g, lab in moe if lab in getattr(self, g)}
        if have and have != moe:
            raise ValueError(f"EngineStep: expert-parallel labels {sorted(have)}: all or none")
        for group, base in _GROUPS.items():
            got = getattr(self, group)
            labels = base + (_MOE_LABELS.get(group, ()) if have else ())
            if group == "breakdown":  # in the definition's order
                labels = tuple(k for k in BREAKDOWN if k in labels)
            if set(got) != set(labels):
                missing = sorted(set(labels) - set(got))
                extra = sorted(set(got) - set(labels))
                raise ValueError(
                    f"EngineStep.{group}: missing {missing}, unknown {extra}; the labels are "
                    "defined once in simulator.engine_step"
                )
            setattr(self, group, {k: float(got[k]) for k in labels})

    @classmethod
    def from_arrays(cls, r: Mapping[str, float]) -> EngineStep:
        """From a flat mapping with "group/label" keys (one layout of the closed form)."""
        groups: dict[str, dict[str, float]] = {g: {} for g in _GROUPS}
        for key, v in r.items():
            g, _, label = key.partition("/")
            if label and g in groups:
                groups[g][label] = v
        return cls(**{k: float(r[k]) for k in _SCALARS}, **groups)

    def to_arrays(self) -> dict[str, float]:
        """The flat "group/label" mapping (the closed form's keys)."""
        out = {k: getattr(self, k) for k in _SCALARS}
        for g in _GROUPS:
            out.update({f"{g}/{k}": v for k, v in getattr(self, g).items()})
        return out

    @property
    def comm_exposed_s(self) -> float:
        """Exposed communication: the breakdown's comm_* parts."""
        return sum(v for k, v in self.breakdown.items() if k.startswith("comm_"))
