"""`llmcap simulate`: predict one training step (closed form or SimPy) for one setup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analysis.cli import runopts as ro
from analysis.cli.common import check_output, echo_json, fail, run_guarded
from analysis.cli.parse import parse_count
from hwprofiles.errors import UserError


def register(app: typer.Typer) -> None:
    """Register `llmcap simulate`."""

    @app.command()
    def simulate(
        model: ro.Model = None,
        hardware: ro.Hardware = None,
        gpus: Annotated[int | None, typer.Option(help="Total GPUs \\[default: 1024]")] = None,
        gpus_per_node: ro.GpusPerNode = None,
        tp: ro.Tp = None,
        pp: ro.Pp = None,
        vpp: ro.Vpp = None,
        first_stage_layers: ro.FirstStageLayers = None,
        stack: ro.Stack = None,
        last_stage_layers: ro.LastStageLayers = None,
        cp: ro.Cp = None,
        dp: Annotated[
            int | None, typer.Option(help="Data-parallel degree \\[default: -1, the rest]")
        ] = None,
        sp: ro.Sp = None,
        zero: ro.Zero = None,
        ep: ro.Ep = None,
        etp: ro.Etp = None,
        moe_capacity_factor: ro.CapacityFactor = None,
        moe_imbalance: ro.Imbalance = None,
        moe_a2a_overlap: ro.A2aOverlap = None,
        moe_a2a_overlap_1f1b: ro.A2aOverlap1f1b = None,
        ep_on_nvlink: ro.EpScaleUp = None,
        micro_batch: ro.MicroBatch = None,
        global_batch: ro.GlobalBatch = None,
        seq_len: ro.SeqLen = None,
        precision: ro.Precision = None,
        recompute: ro.Recompute = None,
        tokens: ro.Tokens = None,
        engine: ro.Engine = "analytic",
        config: ro.Config = None,
        seed: ro.Seed = 0,
        jitter: ro.Jitter = 0.0,
        speed_sigma: ro.SpeedSigma = 0.0,
        contention: ro.Contention = True,
        trace: Annotated[
            Path | None, typer.Option(help="DES: write a Perfetto trace \\[default: none]")
        ] = None,
        checkpoint_interval: ro.CheckpointInterval = None,
        mtbf_scale: ro.MtbfScale = None,
        failure_rates: ro.FailureRates = None,
        storage_bandwidth: ro.StorageBandwidth = None,
        async_checkpoint: ro.AsyncCheckpoint = None,
        pue: ro.Pue = None,
        json_out: ro.JsonOut = False,
        require_fit: ro.RequireFit = False,
        pool_plan: Annotated[
            str | None,
            typer.Option(
                help="Pools (--hardware a:N,b:M): pipeline (stages per pool), data (replicas "
                "per pool) or auto, the faster \\[default: auto]"
            ),
        ] = None,
        pool_uplink: Annotated[
            float | None,
            typer.Option(
                help="Pools: pool-to-pool uplink, GB/s per direction \\[default: the smallest "
                "pool's NICs / 7]"
            ),
        ] = None,
    ) -> None:
        """Predict step time, throughput, MFU, communication, memory and energy."""

        def go():
            from analysis.predict import predict
            from analysis.runconfig import build_run, merge, read_run_file

            if trace is not None:
                check_output(trace, "--trace")  # before the work, not after it
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
                tokens=None if tokens is None else parse_count(tokens),
                first_stage_layers=first_stage_layers,
                stack=stack,
                last_stage_layers=last_stage_layers,
                checkpoint_interval=checkpoint_interval,
                mtbf_scale=mtbf_scale,
                failure_rates=failure_rates,
                storage_bandwidth=storage_bandwidth,
                async_checkpoint=async_checkpoint,
                pue=pue,
                ep=ep,
                etp=etp,
                moe={
                    "moe_capacity_factor": moe_capacity_factor,
                    "moe_imbalance": moe_imbalance,
                    "moe_a2a_overlap": moe_a2a_overlap,
                    "moe_a2a_overlap_1f1b": moe_a2a_overlap_1f1b,
                    "moe_ep_on_scale_up": ep_on_nvlink,
                },
            )
            from analysis.cli.pools_step import pools_from_file, simulate_pools

            pools = pools_from_file(file_spec)
            if hardware is not None and ":" in hardware:
                pools = hardware  # the flag wins over the file
            if pools is not None:  # a job over several pools
                for name, value in (("jitter", jitter), ("speed_sigma", speed_sigma)):
                    if value:
                        raise UserError(name, value, "is not modelled for a job over pools (use 0)")
                if trace is not None:
                    raise UserError("trace", str(trace), "is not written for a job over pools")
                result = simulate_pools(
                    file_spec, over, pools, engine, contention, seed, pool_plan, pool_uplink
                )
                return result, None
            if pool_plan is not None or pool_uplink is not None:
                raise UserError(
                    "pool_plan" if pool_plan is not None else "pool_uplink",
                    pool_plan if pool_plan is not None else pool_uplink,
                    "needs pools (--hardware NAME:GPUS,NAME:GPUS or [[cluster.pool]])",
                )
            run = build_run(merge(file_spec, over))
            kw = ro.des_options(engine, seed, jitter, speed_sigma, contention)
            if engine == "des":
                kw["trace"] = str(trace) if trace else None
            elif trace is not None:
                raise UserError("trace: --trace needs --engine des")
            step = predict(
                run.workload,
                run.hardware,
                engine,
                run.options,
                run.tokens,
                reliability=run.reliability,
                **kw,
            )
            step.inputs["stack"] = run.stack
            return step, run

        result, run = run_guarded(go)
        if run is None:  # pools: its own result, not the one-hardware StepResult contract
            from analysis.cli.pools_step import render

            echo_json(result) if json_out else render(result)
            return
        if json_out:
            echo_json(result.to_dict())
        else:
            from analysis.render import render_step

            render_step(result, layout_note=run.layout_note, seq_note=run.seq_len_note)
        if not result.fits_in_memory:
            # the prediction above is complete; a layout over memory is still a valid layout
            # (real runs use allocator tricks the model may not see): a warning, exit 0, unless
            # the user asks for a fit
            note = next((n for n in result.notes if n.startswith("does not fit")), "does not fit")
            if require_fit:
                fail(f"memory: {note}")
            typer.echo(f"llmcap: warning: memory: {note}", err=True)
