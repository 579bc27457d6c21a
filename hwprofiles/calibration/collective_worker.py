"""One rank of a collective benchmark: ``python -m hwprofiles.calibration.collective_worker
CONFIG RANK``. Started and supervised by `collectives.run_collective_group`; not for users.

Per collective and size: warm-up, then samples of `inner` back-to-back calls, each sample
opened by a barrier. Every rank times its own samples; the slowest rank's time of each sample
is kept (a collective is finished when its last rank is), as nccl-tests reports.

With a gap (`GroupConfig.gap_s` > 0) each sample is one call, issued after a barrier and
`gap_s` of compute on every rank (a small GEMM in a loop): the collective as a training step
meets it, its ranks coming from compute rather than from the previous call. On a shared-core
host the difference is the point: on the 2-vCPU VM (2026-12-03, quiet) a 0.4 MB gloo
all-reduce took a median 0.8-0.9 ms back to back, 0.9-2.7 ms after 5 ms of compute and
3.4 ms after 20 ms, bimodal (0.5-0.8 ms, or 3-4 ms when a rank's wake-up is late) with the
ranks' arrival skew under 0.2 ms. Such rows carry the mean per call: the expected cost a step
pays, hiccups included.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwprofiles.calibration.collectives import ELEMENT_BYTES, bus_factor, message_bytes
from hwprofiles.calibration.timing import Timing

HANG_S = 3600.0  # a "hang" fault sleeps this long; the supervisor's timeout ends it first
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): signal this process when its parent dies


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker if the supervisor dies (even by SIGKILL), since the
    worker leads its own session and nothing else would stop it."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux/glibc: best effort
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def make_op(collective: str, nbytes: int, rank: int, ws: int, device: str) -> Callable[[], Any]:
    import torch
    import torch.distributed as dist

    n = nbytes // ELEMENT_BYTES
    if collective == "all_reduce":
        buf = torch.ones(n, device=device)
        return lambda: dist.all_reduce(buf)
    if collective == "all_gather":
        out, inp = torch.empty(n, device=device), torch.ones(n // ws, device=device)
        return lambda: dist.all_gather_into_tensor(out, inp)
    if collective == "reduce_scatter":
        inp, out = torch.ones(n, device=device), torch.empty(n // ws, device=device)
        return lambda: dist.reduce_scatter_tensor(out, inp)
    if collective == "broadcast":
        buf = torch.ones(n, device=device)
        return lambda: dist.broadcast(buf, src=0)
    if collective == "send_recv":
        send, recv = torch.ones(n, device=device), torch.empty(n, device=device)

        def ring() -> None:
            ops = [dist.isend(send, (rank + 1) % ws), dist.irecv(recv, (rank - 1) % ws)]
            for op in ops:
                op.wait()

        return ring
    raise ValueError(f"collective: {collective!r} unknown")


def _measure(
    op: Callable[[], Any], rep: dict[str, Any], sync: Callable[[], None], device: str
) -> Timing:
    import torch
    import torch.distributed as dist

    t0 = time.perf_counter()
    for _ in range(max(1, rep["warmup"])):
        op()
    sync()
    # All ranks must loop the same number of times: agree on the slowest rank's estimate.
    # (NCCL reduces device tensors only, hence device= here and below.)
    est = torch.tensor([(time.perf_counter() - t0) / max(1, rep["warmup"])], device=device)
    dist.all_reduce(est, op=dist.ReduceOp.MAX)
    one = max(float(est[0].item()), 1e-9)
    inner = max(1, min(10_000, math.ceil(rep["sample_s"] / one)))
    fit = int(rep["budget_s"] / (one * inner))
    count = max(rep["min_samples"], min(rep["samples"], fit))
    local = []
    for _ in range(count):
        dist.barrier()
        s0 = time.perf_counter()
        for _ in range(inner):
            op()
        sync()
        local.append((time.perf_counter() - s0) / inner)
    times = torch.tensor(local, dtype=torch.float64, device=device)
    dist.all_reduce(times, op=dist.ReduceOp.MAX)
    return Timing.from_samples(times.cpu().tolist())


def _inject(fault: dict[str, Any] | None, rank: int) -> None:
    if not fault or fault["rank"] != rank:
        return
    if fault["kind"] == "die":
        os._exit(3)
    if fault["kind"] == "hang":
        time.sleep(HANG_S)


def met_call(op: Callable[[], Any], gap_s: float, a: Any, sync: Callable[[], None]) -> float:
    """This rank's seconds for one call of `op` after a barrier and `gap_s` of compute
    (`a @ a` in a loop): the collective as a training step meets it."""
    import torch.distributed as dist

    dist.barrier()
    end = time.perf_counter() + gap_s
    while time.perf_counter() < end:
        a @ a
    sync()
    s0 = time.perf_counter()
    op()
    sync()
    return time.perf_counter() - s0


def _measure_met(
    op: Callable[[], Any], rep: dict[str, Any], gap_s: float, sync: Callable[[], None], device: str
) -> list[float]:
    """Seconds of single calls, each after a barrier and `gap_s` of compute (the slowest
    rank's time per call)."""
    import torch
    import torch.distributed as dist

    a = torch.ones(64, 64, device=device)
    for _ in range(max(1, rep["warmup"])):
        op()
    sync()
    local = [met_call(op, gap_s, a, sync) for _ in range(max(rep["min_samples"], rep["samples"]))]
    times = torch.tensor(local, dtype=torch.float64, device=device)
    dist.all_reduce(times, op=dist.ReduceOp.MAX)
    return [float(t) for t in times.cpu().tolist()]


def main(argv: list[str]) -> int:
    import torch
    import torch.distributed as dist

    die_with_parent()
    cfg = json.loads(Path(argv[0]).read_text())
    rank, ws = int(argv[1]), int(cfg["world_size"])
    torch.set_num_threads(int(cfg["threads_per_rank"]))
    device = cfg["device"]
    extra: dict[str, Any] = {}
    if device == "cuda":
        local = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(local)
        extra["device_id"] = local  # binds NCCL to this GPU (barriers need to know it)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    dist.init_process_group(
        cfg["backend"],
        init_method=f"file://{cfg['store']}",
        rank=rank,
        world_size=ws,
        timeout=datetime.timedelta(seconds=float(cfg["timeout_s"])),
        **extra,
    )
    rows = []
    for collective in cfg["collectives"]:
        if collective == "send_recv" and ws < 2:
            continue  # a send needs a peer
        for size in cfg["sizes"]:
            nbytes = message_bytes(int(size), ws)
            op = make_op(collective, nbytes, rank, ws, device)
            gap = float(cfg.get("gap_s") or 0.0)
            if gap > 0:
                samples = _measure_met(op, cfg["repeats"], gap, sync, device)
                timing = Timing.from_samples(samples)
                rows.append(
                    {
                        "collective": collective,
                        "backend": cfg["backend"],
                        "world_size": ws,
                        "bytes": nbytes,
                        "gap_s": gap,
                        "mean_s": sum(samples) / len(samples),
                        "median_s": timing.median_s,
                        "min_s": timing.min_s,
                        "max_s": timing.max_s,
                        "count": len(samples),
                    }
                )
                continue
            timing = _measure(op, cfg["repeats"], sync, device)
            _inject(cfg.get("fault"), rank)
            algbw = nbytes / timing.median_s
            rows.append(
                {
                    "collective": collective,
                    "backend": cfg["backend"],
                    "world_size": ws,
                    "bytes": nbytes,
                    **timing.as_row(),
                    "algbw_bytes_per_s": algbw,
                    "busbw_bytes_per_s": algbw * bus_factor(collective, ws),
                }
            )
    if rank == 0:
        tmp = Path(cfg["out"] + ".tmp")
        tmp.write_text(json.dumps(rows))
        os.replace(tmp, cfg["out"])
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
