"""One table of training precisions: names, element sizes, peak keys, cast behaviour.

Every other table of precisions in llmcap (`hwprofiles.profile.DTYPES`,
`simulator.parallel.PRECISIONS` and `BYTES_PER_PARAM`, `simulator.costmodel.timing.ACT_BYTES`,
`simulator.costmodel.memory.param_state_bytes`, the calibration's torch names, the seed
document's bit widths) is a view of this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwprofiles.errors import UserError


@dataclass(frozen=True)
class Precision:
    """How a training precision stores and computes (bytes per element)."""

    name: str
    bits: int
    """Storage width of the dtype (IEEE 754; OCP FP8 E4M3/E5M2; tf32 is stored in 32 bits)."""
    weight_bytes: float
    """One weight in the compute dtype, as ZeRO gathers it and the GEMMs read it."""
    activation_bytes: float
    """One activation element as stored and sent (fp8 recipes keep activations in bf16:
    Micikevicius et al. 2022, "FP8 Formats for Deep Learning", Sec. 4)."""
    state_bytes: tuple[float, float, float]
    """Bytes per parameter of (weights, gradients, optimizer states). Mixed precision: 16-bit
    weights, fp32 gradients (Megatron accumulates and reduces them in fp32), 12 bytes of Adam
    state (fp32 master + two moments; Rajbhandari et al. 2020, "ZeRO", Sec. 3.1, K = 12).
    fp32/tf32: fp32 weights and gradients, 8 bytes of Adam moments."""
    gemm_peak: str
    """Key of `Accelerator.peak_flops` the GEMMs run at."""
    attention_peak: str
    """Key fused attention runs at (bf16 under fp8 training: Transformer Engine recipe)."""
    mixed: bool
    """Mixed precision: fp32 master weights; torch autocast's casts apply (bf16, fp16)."""
    fp8_casts: bool
    """Quantisation kernels around each GEMM (Transformer Engine)."""
    torch_dtype: str | None
    """torch dtype name for calibration (None: not calibrated)."""


_MIXED_STATE = (2.0, 4.0, 12.0)
_FP32_STATE = (4.0, 4.0, 8.0)

PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", 32, 4, 4, _FP32_STATE, "fp32", "fp32", False, False, "float32"),
        # tf32: fp32 storage, TF32 tensor-core matmuls
        Precision("tf32", 32, 4, 4, _FP32_STATE, "tf32", "tf32", False, False, "float32"),
        Precision("fp16", 16, 2, 2, _MIXED_STATE, "fp16", "fp16", True, False, "float16"),
        Precision("bf16", 16, 2, 2, _MIXED_STATE, "bf16", "bf16", True, False, "bfloat16"),
        Precision("fp8", 8, 1, 2, _MIXED_STATE, "fp8", "bf16", False, True, None),
    )
}
"""The training precisions llmcap models, by name."""


def precision(name: str) -> Precision:
    """The precision `name`, or a one-line error listing the known ones."""
    if name not in PRECISIONS:
        raise UserError(f"precision: {name!r} must be one of {', '.join(PRECISIONS)}")
    return PRECISIONS[name]
