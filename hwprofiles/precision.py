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
    autocast: bool
    """16-bit mixed precision under torch autocast: its casts apply (`Options.amp_casts`)."""
    quantised: bool
    """GEMM inputs quantised from bf16 around each GEMM (Transformer Engine fp8, MXFP8, NVFP4
    recipes): cast kernels in the layer, attention in bf16."""
    quant_bytes: float
    """Bytes per quantised element a cast writes, block scales included (0: not quantised)."""
    quant_copies: int
    """Quantised copies a forward cast writes. Block scales run along the GEMM's reduction
    dimension, so a block-scaled tensor used in both orientations (input and weight: forward
    and weight-gradient GEMMs) is quantised twice, row-wise and column-wise (NVIDIA
    Transformer Engine docs, 'Using FP8 with Transformer Engine', MXFP8 section); per-tensor
    fp8 on Hopper writes one copy forward and its transpose in the backward."""
    torch_dtype: str | None
    """torch dtype name for calibration (None: not calibrated)."""


_MIXED_STATE = (2.0, 4.0, 12.0)
_FP32_STATE = (4.0, 4.0, 8.0)

PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("fp32", 32, 4, 4, _FP32_STATE, "fp32", "fp32", False, False, 0.0, 0, "float32"),
        # tf32: fp32 storage, TF32 tensor-core matmuls
        Precision("tf32", 32, 4, 4, _FP32_STATE, "tf32", "tf32", False, False, 0.0, 0, "float32"),
        Precision("fp16", 16, 2, 2, _MIXED_STATE, "fp16", "fp16", True, False, 0.0, 0, "float16"),
        Precision("bf16", 16, 2, 2, _MIXED_STATE, "bf16", "bf16", True, False, 0.0, 0, "bfloat16"),
        # per-tensor fp8 (Hopper): 1 byte per element, one amax scale per tensor
        Precision("fp8", 8, 1, 2, _MIXED_STATE, "fp8", "bf16", False, True, 1.0, 1, None),
        # OCP MX: one 8-bit E8M0 scale per 32 elements (OCP Microscaling Formats v1.0, 2023)
        Precision(
            "mxfp8", 8, 1 + 1 / 32, 2, _MIXED_STATE, "mxfp8", "bf16", False, True, 1 + 1 / 32, 2,
            None,
        ),
        # NVFP4: 4-bit E2M1 with one FP8 E4M3 scale per 16 elements (NVIDIA 2025, "Pretraining
        # LLMs with NVFP4", arXiv 2509.25149, Sec. 2); attention stays in bf16 (Sec. 4)
        Precision(
            "nvfp4", 4, 0.5 + 1 / 16, 2, _MIXED_STATE, "nvfp4", "bf16", False, True,
            0.5 + 1 / 16, 2, None,
        ),
    )
}  # fmt: skip
"""The training precisions llmcap models, by name."""


def precision(name: str) -> Precision:
    """The precision `name`, or a one-line error listing the known ones."""
    if name not in PRECISIONS:
        raise UserError(f"precision: {name!r} must be one of {', '.join(PRECISIONS)}")
    return PRECISIONS[name]
