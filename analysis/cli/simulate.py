"""`llmcap simulate`: predict one training step (closed form or SimPy) for one setup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analysis.cli import runopts as ro
from analysis.cli.common import echo_json, fail, run_guarded
from hwprofiles.errors import UserError


def register(app: typer.Typer) -> None:
    """Register `llmcap simulate`."""

    @app.command()
    def simulate(
        model: ro.Model = None,
        hardware: ro.Hardware = None,
        gpus: Annotated[int | None, typer.Option(help="Total GPUs")] = None,
        gpus_per_node: ro.GpusPerNode = None,
        tp: ro.Tp = None,
        pp: ro.Pp = None,
        vpp: ro.Vpp = None,
        cp: ro.Cp = None,
        dp: Annotated[int | None, typer.Option(help="Data-parallel degree (-1 = the rest)")] = None,
        sp: ro.Sp = None,
        zero: ro.Zero = None,
        ep: ro.Ep = None,
        etp: ro.Etp = None,
        moe_capacity_factor: ro.CapacityFactor = None,
        moe_imbalance: ro.Imbalance = None,
        moe_a2a_overlap: ro.A2aOverlap = None,
        ep_on_nvlink: ro.EpScaleUp = None,
        micro_batch: ro.MicroBatch = None,
        global_batch: Annotated[int | None, typer.Option(help="Global batch (sequences)")] = None,
        seq_len: ro.SeqLen = None,
        precision: ro.Precision = None,
        recompute: ro.Recompute = None,
        tokens: Annotated[
            float | None, typer.Option(help="Training tokens (time to train)")
        ] = None,
        engine: ro.Engine = "analytic",
        config: ro.Config = None,
        seed: ro.Seed = 0,
        jitter: ro.Jitter = 0.0,
        speed_sigma: ro.SpeedSigma = 0.0,
        contention: ro.Contention = True,
        trace: Annotated[Path | None, typer.Option(help="DES: write a Perfetto trace")] = None,
        json_out: ro.JsonOut = False,
    ) -> None:
        """Predict step time, throughput, MFU, communication, memory and energy."""

        def go():
            from analysis.predict import predict
            from analysis.runconfig import build_run, merge, read_run_file

            file_spec = read_run_file(config) if config else None
            over = ro.overrides(
                model=model,
                hardware=hardware,
                gpus=gpus,
                gpus_per_node=gpus_per_node,
                tp=tp,
                pp=pp,
                vpp=vpp,
                cp=cp,
                dp=dp,
                sp=sp,
                zero=zero,
                micro_batch=micro_batch,
                global_batch=global_batch,
                seq_len=seq_len,
                precision=precision,
                recompute=recompute,
                tokens=tokens,
                ep=ep,
                etp=etp,
                moe={
                    "moe_capacity_factor": moe_capacity_factor,
                    "moe_imbalance": moe_imbalance,
                    "moe_a2a_overlap": moe_a2a_overlap,
                    "moe_ep_on_scale_up": ep_on_nvlink,
                },
            )
            run = build_run(merge(file_spec, over))
            kw = ro.des_options(engine, seed, jitter, speed_sigma, contention)
            if engine == "des":
                kw["trace"] = str(trace) if trace else None
            elif trace is not None:
                raise UserError("trace: --trace needs --engine des")
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
