"""Command-line options shared by the commands that describe one run (`simulate`, `scale`).

Each option is declared once here as an `Annotated` type; a command lists the ones it takes.
`overrides` turns them into the run-file layout of `analysis.runconfig` (None = not given).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hwprofiles.typed import number
from simulator.limits import MAX_SIGMA

Opt = typer.Option

SEARCHED = "default: searched, the fastest valid layout"
FIXED = "when --tp and --pp are given"

Model = Annotated[
    str | None,
    Opt(help="Preset name (see `llmcap models`) or HF config.json \\[default: llama-3-70b]"),
]
Hardware = Annotated[
    str | None, Opt(help="Preset, hardware TOML or profile dir \\[default: h100-sxm]")
]
GpusPerNode = Annotated[int | None, Opt(help="Override GPUs per node \\[default: the node's]")]
Tp = Annotated[int | None, Opt(help=f"Tensor-parallel degree \\[{SEARCHED}]")]
Pp = Annotated[int | None, Opt(help=f"Pipeline stages \\[{SEARCHED}]")]
Vpp = Annotated[
    int | None, Opt(help=f"Virtual stages per rank (interleaved) \\[{SEARCHED}; 1 {FIXED}]")
]
Cp = Annotated[int | None, Opt(help=f"Context-parallel degree \\[{SEARCHED}; 1 {FIXED}]")]
Sp = Annotated[
    bool | None, Opt("--sp/--no-sp", help=f"Sequence parallel \\[{SEARCHED}; on {FIXED}]")
]
Zero = Annotated[int | None, Opt(help=f"ZeRO stage 0-3 (3 = FSDP) \\[{SEARCHED}; 1 {FIXED}]")]
MicroBatch = Annotated[int | None, Opt(help=f"Micro-batch (sequences) \\[{SEARCHED}; 1 {FIXED}]")]
SeqLen = Annotated[
    int | None,
    Opt(help="Tokens per sequence \\[default: the model's pre-training length, e.g. 8192 Llama 3]"),
]
Precision = Annotated[str | None, Opt(help="fp32|tf32|fp16|bf16|fp8|mxfp8|nvfp4 \\[default: bf16]")]
Recompute = Annotated[
    str | None, Opt(help=f"none|selective|full \\[{SEARCHED}; selective {FIXED}]")
]
GlobalBatch = Annotated[
    int | None, Opt(help="Sequences per optimizer step \\[default: ~4M tokens per step]")
]
Tokens = Annotated[
    str | None, Opt(help="Tokens to train, e.g. 2T, 1.5e12, 500B (time to train) \\[default: none]")
]
Config = Annotated[Path | None, Opt(help="Run TOML file \\[default: none]")]
Ep = Annotated[int | None, Opt(help="Expert-parallel degree (MoE models) \\[default: 1]")]
Etp = Annotated[int | None, Opt(help="Expert tensor-parallel degree \\[default: 1]")]
CapacityFactor = Annotated[
    float | None, Opt(help="MoE capacity factor \\[default: none, dropless routing]")
]
Imbalance = Annotated[
    float | None, Opt(help="MoE hottest-rank load / mean (dropless) \\[default: 1.2]")
]
A2aOverlap = Annotated[
    bool | None,
    Opt(
        "--moe-a2a-overlap/--no-moe-a2a-overlap",
        help="MoE dispatch beside shared experts \\[default: off]",
    ),
]
A2aOverlap1f1b = Annotated[
    bool | None,
    Opt(
        "--moe-a2a-overlap-1f1b/--no-moe-a2a-overlap-1f1b",
        help="MoE all-to-alls beside another micro-batch's compute (DualPipe-style) "
        "\\[default: off]",
    ),
]
EpScaleUp = Annotated[
    bool | None,
    Opt(
        "--ep-on-nvlink/--ep-anywhere",
        help="Require the EP group inside one NVLink domain \\[default: anywhere]",
    ),
]
FirstStageLayers = Annotated[
    int | None, Opt(help="Layers on the first pipeline stage \\[default: Megatron-Core's split]")
]
LastStageLayers = Annotated[
    int | None, Opt(help="Layers on the last pipeline stage \\[default: Megatron-Core's split]")
]
Stack = Annotated[
    str | None, Opt(help="Training stack (see `llmcap stacks`) \\[default: nemo-2025]")
]
RequireFit = Annotated[
    bool, Opt("--require-fit", help="Exit 2 if the layout does not fit in memory")
]
Engine = Annotated[str, Opt(help="analytic (closed form) or des (SimPy)")]
Seed = Annotated[int, Opt(help="DES seed")]
Jitter = Annotated[float, Opt(help="DES per-op jitter (lognormal sigma)")]
SpeedSigma = Annotated[float, Opt(help="DES per-device speed sigma")]
Contention = Annotated[bool, Opt("--contention/--no-contention", help="DES link sharing")]
JsonOut = Annotated[bool, Opt("--json", help="JSON on stdout")]
CheckpointInterval = Annotated[
    float | None, Opt(help="Seconds from one checkpoint to the next \\[default: the optimal one]")
]
MtbfScale = Annotated[
    float | None, Opt(help="Multiply every component's MTBF (2 = half the failures) \\[default: 1]")
]
FailureRates = Annotated[
    Path | None,
    Opt(help="Failure-rate TOML with a rates_per_unit_hour table \\[default: catalogue]"),
]
StorageBandwidth = Annotated[
    float | None,
    Opt(help="Checkpoint write bandwidth per node, GB/s \\[default: 20, DGX SuperPOD guidance]"),
]
Pue = Annotated[
    float | None,
    Opt(help="Facility PUE for facility energy (facility / IT energy) \\[default: 1.2]"),
]
AsyncCheckpoint = Annotated[
    bool | None,
    Opt(
        "--async-checkpoint/--sync-checkpoint",
        help="Write checkpoints in the background \\[default: sync]",
    ),
]


def overrides(
    *,
    model: str | None,
    hardware: str | None,
    gpus: int | None,
    gpus_per_node: int | None,
    tp: int | None,
    pp: int | None,
    vpp: int | None,
    cp: int | None,
    dp: int | None,
    sp: bool | None,
    zero: int | None,
    micro_batch: int | None,
    global_batch: int | None,
    seq_len: int | None,
    precision: str | None,
    recompute: str | None,
    tokens: float | None = None,
    ep: int | None = None,
    etp: int | None = None,
    moe: dict[str, Any] | None = None,
    first_stage_layers: int | None = None,
    last_stage_layers: int | None = None,
    stack: str | None = None,
    checkpoint_interval: float | None = None,
    mtbf_scale: float | None = None,
    failure_rates: Path | None = None,
    storage_bandwidth: float | None = None,
    async_checkpoint: bool | None = None,
    pue: float | None = None,
) -> dict[str, dict[str, Any]]:
    """The flags in the run-file layout (`analysis.runconfig.merge` skips the None ones);
    `moe` holds the MoE `Options` flags (moe_capacity_factor, ...)."""
    return {
        "model": {"name": model},
        "parallelism": {
            "tp": tp,
            "pp": pp,
            "vpp": vpp,
            "cp": cp,
            "dp": dp,
            "sp": sp,
            "zero": zero,
            "first_stage_layers": first_stage_layers,
            "last_stage_layers": last_stage_layers,
            "ep": ep,
            "etp": etp,
        },
        "training": {
            "seq_len": seq_len,
            "micro_batch": micro_batch,
            "global_batch": global_batch,
            "precision": precision,
            "recompute": recompute,
            "tokens": tokens,
        },
        "cluster": {
            "hardware": hardware,
            "gpus": gpus,
            "gpus_per_node": gpus_per_node,
            "pue": pue,
        },
        "options": {"stack": stack} | dict(moe or {}),
        "reliability": {
            "checkpoint_interval_s": checkpoint_interval,
            "mtbf_scale": mtbf_scale,
            "failure_rates": str(failure_rates) if failure_rates is not None else None,
            "storage_bandwidth_gb_per_s": storage_bandwidth,
            "async_checkpoint": async_checkpoint,
        },
    }


def des_options(
    engine: str, seed: int, jitter: float, speed_sigma: float, contention: bool
) -> dict[str, Any]:
    """Keyword arguments for the SimPy engine (empty for the closed form)."""
    if engine != "des":
        return {}
    number(jitter, "--jitter", minimum=0.0, maximum=MAX_SIGMA)
    number(speed_sigma, "--speed-sigma", minimum=0.0, maximum=MAX_SIGMA)
    number(seed, "--seed", minimum=0, maximum=2**63 - 1, integer=True)  # numpy SeedSequence
    return {"seed": seed, "jitter": jitter, "speed_sigma": speed_sigma, "contention": contention}
