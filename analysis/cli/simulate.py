"""`llmcap simulate`: predict one training step (closed form or SimPy) for one setup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analysis.cli.common import echo_json, fail, run_guarded

Opt = typer.Option


def register(app: typer.Typer) -> None:
    """Register `llmcap simulate`."""

    @app.command()
    def simulate(
        model: Annotated[str | None, Opt(help="Preset name or HF config.json")] = None,
        hardware: Annotated[str | None, Opt(help="Preset, hardware TOML or profile dir")] = None,
        gpus: Annotated[int | None, Opt(help="Total GPUs")] = None,
        gpus_per_node: Annotated[int | None, Opt(help="Override GPUs per node")] = None,
        tp: Annotated[int | None, Opt(help="Tensor-parallel degree")] = None,
        pp: Annotated[int | None, Opt(help="Pipeline stages")] = None,
        vpp: Annotated[int | None, Opt(help="Virtual stages per rank (interleaved)")] = None,
        cp: Annotated[int | None, Opt(help="Context-parallel degree")] = None,
        dp: Annotated[int | None, Opt(help="Data-parallel degree (-1 = the rest)")] = None,
        sp: Annotated[bool | None, Opt("--sp/--no-sp", help="Sequence parallel")] = None,
        zero: Annotated[int | None, Opt(help="ZeRO stage 0-3 (3 = FSDP)")] = None,
        micro_batch: Annotated[int | None, Opt(help="Micro-batch (sequences)")] = None,
        global_batch: Annotated[int | None, Opt(help="Global batch (sequences)")] = None,
        seq_len: Annotated[int | None, Opt(help="Sequence length (tokens)")] = None,
        precision: Annotated[str | None, Opt(help="fp32|tf32|fp16|bf16|fp8")] = None,
        recompute: Annotated[str | None, Opt(help="none|selective|full")] = None,
        tokens: Annotated[float | None, Opt(help="Training tokens (time to train)")] = None,
        engine: Annotated[str, Opt(help="analytic (closed form) or des (SimPy)")] = "analytic",
        config: Annotated[Path | None, Opt(help="Run TOML file")] = None,
        seed: Annotated[int, Opt(help="DES seed")] = 0,
        jitter: Annotated[float, Opt(help="DES per-op jitter (relative sigma)")] = 0.0,
        speed_sigma: Annotated[float, Opt(help="DES per-device speed sigma")] = 0.0,
        contention: Annotated[bool, Opt("--contention/--no-contention")] = True,
        trace: Annotated[Path | None, Opt(help="DES: write a Perfetto trace")] = None,
        json_out: Annotated[bool, Opt("--json", help="JSON on stdout")] = False,
    ) -> None:
        """Predict step time, throughput, MFU, communication, memory and energy."""

        def go():
            from analysis.predict import predict
            from analysis.runconfig import build_run, merge, read_run_file

            file_spec = read_run_file(config) if config else None
            over = {
                "model": {"name": model},
                "parallelism": {
                    "tp": tp,
                    "pp": pp,
                    "vpp": vpp,
                    "cp": cp,
                    "dp": dp,
                    "sp": sp,
                    "zero": zero,
                },
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
            run = build_run(merge(file_spec, over))
            kw = {}
            if engine == "des":
                kw = {
                    "seed": seed,
                    "jitter": jitter,
                    "speed_sigma": speed_sigma,
                    "contention": contention,
                    "trace": str(trace) if trace else None,
                }
            elif trace is not None:
                raise ValueError("trace: --trace needs --engine des")
            return predict(run.workload, run.hardware, engine, run.options, run.tokens, **kw)

        result = run_guarded(go)
        if json_out:
            echo_json(result.to_dict())
        else:
            from analysis.render import render_step

            render_step(result)
        if not result.fits_in_memory:
            # the report above is complete; the exit code says the layout cannot run
            fail(f"memory: {result.notes[0]}")
