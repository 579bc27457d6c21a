"""Strong scaling: one model and global batch over a list of GPU counts (and link speeds).

For each GPU count the layout keeps its model-parallel degrees (tp, pp, cp) and gives the rest
to data parallelism; the global batch stays fixed. Each point reports

- speed-up = T_1 / T_N, where T_1 is the ideal one-GPU time of the same global batch (compute
  only, no memory limit; `StepResult.single_gpu_step_time_s`);
- scaling efficiency = speed-up / N;
- communication share = exposed communication / step time;
- the seed document's linear speed-up ``m × k`` (m data-parallel replicas, k model-parallel
  sub-models; `analysis.seed.speedup_linear`), which is N: the upper bound the gap is read from.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from analysis.cli.common import write_atomic
from analysis.closed_form import Options
from analysis.predict import predict
from analysis.render import parallel_text
from analysis.seed import speedup_linear
from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile
from simulator.parallel import Workload
from simulator.result import round_sig

BITS_PER_BYTE = 8


@dataclass(frozen=True)
class ScalePoint:
    """One (GPU count, link speed) point of a scaling sweep."""

    gpus: int
    dp: int
    scale_out_gbps: float
    """Per-NIC line rate (Gb/s per direction) of this point's hardware."""
    step_time_s: float
    speedup: float
    efficiency: float
    comm_share: float
    linear_speedup: float
    """Seed document: m × k."""
    tokens_per_s: float
    mfu: float
    fits_in_memory: bool
    saturated_links: tuple[str, ...] = ()
    layout: str = ""
    """The point's layout, e.g. "tp8 pp4 dp32 mb1 gbs512 zero1 sp rc-selective"."""


def with_scale_out_gbps(hw: HardwareProfile, gbps: float) -> HardwareProfile:
    """`hw` with each NIC's line rate set to `gbps` gigabits per second per direction."""
    if gbps <= 0:
        raise UserError(f"scale-out bandwidth: {gbps} Gb/s must be > 0")
    link = replace(
        hw.node.scale_out,
        bandwidth_bytes_per_s=gbps * 1e9 / BITS_PER_BYTE,
        name=f"{hw.node.scale_out.name}@{gbps:g}Gbps",
    )
    return replace(hw, node=replace(hw.node, scale_out=link))


def sweep(
    make_workload: Callable[[int], Workload],
    hw: HardwareProfile,
    gpu_counts: Sequence[int],
    engine: str = "analytic",
    options: Options | None = None,
    scale_out_gbps: Sequence[float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **engine_options: Any,
) -> list[ScalePoint]:
    """Predict every (GPU count, NIC speed) point; `make_workload(n)` builds the layout for n.

    `progress(done, total)` is called after each point."""
    if not gpu_counts:
        raise UserError("gpus: give at least one GPU count")
    speeds = list(scale_out_gbps) if scale_out_gbps else [None]
    out: list[ScalePoint] = []
    for gbps in speeds:
        h = hw if gbps is None else with_scale_out_gbps(hw, gbps)
        rate = h.node.scale_out.bandwidth_bytes_per_s * BITS_PER_BYTE / 1e9
        for n in sorted(set(gpu_counts)):
            if progress is not None:
                progress(len(out), len(speeds) * len(set(gpu_counts)))
            w = make_workload(n)
            r = predict(w, h, engine, options, **engine_options)
            p = w.parallel
            t1 = r.single_gpu_step_time_s or 0.0
            speedup = t1 / r.step_time_s
            out.append(
                ScalePoint(
                    gpus=n,
                    dp=p.dp,
                    scale_out_gbps=rate,
                    step_time_s=r.step_time_s,
                    speedup=speedup,
                    efficiency=speedup / n,
                    comm_share=r.comm_fraction,
                    linear_speedup=speedup_linear(p.dp, p.model_parallel),
                    tokens_per_s=r.tokens_per_s,
                    mfu=r.mfu,
                    fits_in_memory=r.fits_in_memory,
                    saturated_links=tuple(r.extra.get("saturated_links", ())),
                    layout=parallel_text(asdict(p)),
                )
            )
    return out


def to_records(points: Sequence[ScalePoint]) -> list[dict[str, Any]]:
    """JSON-ready rows (floats rounded as the `llmcap simulate` contract rounds them)."""
    return [round_sig(asdict(p) | {"saturated_links": list(p.saturated_links)}) for p in points]


def plot(points: Sequence[ScalePoint], path: str | Path, title: str = "") -> Path:
    """Speed-up (with the seed's linear m × k line), efficiency and communication share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    speeds = sorted({p.scale_out_gbps for p in points})
    many = len(speeds) > 1
    for i, s in enumerate(speeds):
        pts = [p for p in points if p.scale_out_gbps == s]
        g = [p.gpus for p in pts]
        c = f"C{i}"
        tag = f", {s:g} Gb/s NICs" if many else ""
        ax1.plot(g, [p.speedup for p in pts], "o-", color=c, label="llmcap" + tag)
        ax2.plot(g, [p.efficiency for p in pts], "o-", color=c, label="scaling efficiency" + tag)
        ax2.plot(g, [p.comm_share for p in pts], "s--", color=c, label="communication share" + tag)
    lin = sorted({(p.gpus, p.linear_speedup) for p in points})
    ax1.plot([g for g, _ in lin], [v for _, v in lin], "k:", label="seed: linear m × k")
    ax1.set(yscale="log", ylabel="speed-up over one ideal GPU")
    ax2.set(ylabel="fraction", ylim=(0, 1.05))
    ticks = sorted({p.gpus for p in points})
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("GPUs")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return write_atomic(path, buf.getvalue())
