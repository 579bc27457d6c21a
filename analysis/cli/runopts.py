"""Command-line options shared by the commands that describe one run (`simulate`, `scale`).

Each option is declared once here as an `Annotated` type; a command lists the ones it takes.
`overrides` turns them into the run-file layout of `analysis.runconfig` (None = not given).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

Opt = typer.Option

Model = Annotated[str | None, Opt(help="Preset name or HF config.json")]
Hardware = Annotated[str | None, Opt(help="Preset, hardware TOML or profile dir")]
GpusPerNode = Annotated[int | None, Opt(help="Override GPUs per node")]
Tp = Annotated[int | None, Opt(help="Tensor-parallel degree")]
Pp = Annotated[int | None, Opt(help="Pipeline stages")]
Vpp = Annotated[int | None, Opt(help="Virtual stages per rank (interleaved)")]
Cp = Annotated[int | None, Opt(help="Context-parallel degree")]
Sp = Annotated[bool | None, Opt("--sp/--no-sp", help="Sequence parallel")]
Zero = Annotated[int | None, Opt(help="ZeRO stage 0-3 (3 = FSDP)")]
Ep = Annotated[int | None, Opt(help="Expert-parallel degree (MoE models)")]
Etp = Annotated[int | None, Opt(help="Expert tensor-parallel degree (default 1)")]
CapacityFactor = Annotated[
    float | None, Opt(help="MoE capacity factor (default: dropless routing)")
]
Imbalance = Annotated[float | None, Opt(help="MoE hottest-rank load / mean (dropless)")]
A2aOverlap = Annotated[
    bool | None,
    Opt("--moe-a2a-overlap/--no-moe-a2a-overlap", help="MoE dispatch beside shared experts"),
]
EpScaleUp = Annotated[
    bool | None,
    Opt("--ep-on-nvlink/--ep-anywhere", help="Require the EP group inside one NVLink domain"),
]
MicroBatch = Annotated[int | None, Opt(help="Micro-batch (sequences)")]
SeqLen = Annotated[int | None, Opt(help="Sequence length (tokens)")]
Precision = Annotated[str | None, Opt(help="fp32|tf32|fp16|bf16|fp8|mxfp8|nvfp4")]
Recompute = Annotated[str | None, Opt(help="none|selective|full")]
Config = Annotated[Path | None, Opt(help="Run TOML file")]
Engine = Annotated[str, Opt(help="analytic (closed form) or des (SimPy)")]
Seed = Annotated[int, Opt(help="DES seed")]
Jitter = Annotated[float, Opt(help="DES per-op jitter (lognormal sigma)")]
SpeedSigma = Annotated[float, Opt(help="DES per-device speed sigma")]
Contention = Annotated[bool, Opt("--contention/--no-contention", help="DES link sharing")]
JsonOut = Annotated[bool, Opt("--json", help="JSON on stdout")]


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
            "ep": ep,
            "etp": etp,
        },
        "options": dict(moe or {}),
        "training": {
            "seq_len": seq_len,
            "micro_batch": micro_batch,
            "global_batch": global_batch,
            "precision": precision,
            "recompute": recompute,
            "tokens": tokens,
        },
        "cluster": {"hardware": hardware, "gpus": gpus, "gpus_per_node": gpus_per_node},
    }


def des_options(
    engine: str, seed: int, jitter: float, speed_sigma: float, contention: bool
) -> dict[str, Any]:
    """Keyword arguments for the SimPy engine (empty for the closed form)."""
    if engine != "des":
        return {}
    return {"seed": seed, "jitter": jitter, "speed_sigma": speed_sigma, "contention": contention}
