"""One rank of a validation run: the entry point that `torchrun -m validation.worker` starts.

Usage (the launcher writes the spec): ``torchrun ... -m validation.worker RUN_DIR``.
Reads ``RUN_DIR/spec.json``, trains the validation GPT with DDP or FSDP (fully_shard, the
ZeRO-3 analogue) for warm-up + timed steps, and writes ``RUN_DIR/rank<R>.json``. While it
runs it keeps ``RUN_DIR/rank<R>.progress.json`` current (pid, phase, step) so the launcher
can tell a hung rank from a slow one; on an exception it writes ``rank<R>.error.json``.

Timing: every step starts after a barrier (outside the timed region) so ranks start
together; GPU steps are bracketed by `torch.cuda.synchronize`.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import nullcontext, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from analysis.cli.common import dumps, write_atomic
from hwprofiles.energy import measure, probe_energy_meter
from validation.gpt import GPT, synthetic_batches
from validation.inrun import InRunProbes
from validation.monitor.config import DROP_APPLIED, DROP_WAIT_S
from validation.monitor.rank import rank_monitor
from validation.monitor.stepmon import StepMonitor
from validation.spec import FAULT_EXIT_CODE, RunSpec

PR_SET_PDEATHSIG = 1  # prctl option number (linux/prctl.h)
N_BATCHES = 4
"""Distinct synthetic batches cycled through (generating tokens is not part of a step)."""
LEARNING_RATE = 1e-4  # AdamW step size; any small value keeps the loss finite
HANG_S = 3600.0  # how long a rank told to "hang" sleeps; the launcher kills it long before


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent (the torchrun agent) dies, so no
    rank outlives a killed launcher. torchrun starts ranks in their own sessions."""
    with suppress(OSError):  # not glibc/Linux: the launcher still kills ranks by pid
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Progress:
    """Writes ``rank<R>.progress.json``: the latest phase and step, for the launcher.

    Every step beats, so the record is one write in place of a fixed-width record (padded
    with spaces) into a file kept open, not a temporary file renamed into place: a rename
    per step cost the tiny model's 6 ms step 0.15-0.5 ms *outside* its timed region (the
    filesystem's work landing in the next step; AMD EPYC VM, 2026-12-03, quiet, 4 pairs of
    runs). A read racing the write sees the old or the new record, or invalid JSON, which
    the launcher's reader skips (`launcher._read_json`)."""

    WIDTH = 160
    """Bytes per record (a record is about 70)."""

    def __init__(self, run_dir: Path, rank: int) -> None:
        self.path = run_dir / f"rank{rank}.progress.json"
        self.rank = rank
        self.phase = "start"
        self.step = 0
        """Index of the step being run (counting warm-up)."""
        self._fd: int | None = None

    def beat(self, phase: str | None = None) -> None:
        self.phase = phase or self.phase
        rec = {"rank": self.rank, "pid": os.getpid(), "phase": self.phase, "step": self.step}
        data = json.dumps(rec).encode().ljust(self.WIDTH)
        if self._fd is None:
            write_atomic(self.path, data)  # the first record: the file appears whole
            self._fd = os.open(self.path, os.O_WRONLY)
            return
        os.pwrite(self._fd, data, 0)


def wrap_model(
    model: torch.nn.Module, spec: RunSpec, device: torch.device, group: Any = None
) -> torch.nn.Module:
    """DDP (gradient buckets, all-reduce in fp32) or FSDP2 full-shard per transformer block,
    over the default process group or `group` (the in-run probes' 1-rank groups).

    Under bf16 FSDP gathers parameters in bf16 and reduce-scatters gradients in fp32, the
    mixed-precision convention llmcap's cost model assumes (16-bit weights, fp32 gradients).
    """
    if spec.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, process_group=group)
    from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if group is None:
        mesh = init_device_mesh(device.type, (spec.nproc,))
    else:
        mesh = DeviceMesh.from_group(group, device.type)
    mp = MixedPrecisionPolicy()
    if spec.precision == "bf16":
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for block in model.blocks:  # type: ignore[union-attr]
        fully_shard(block, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return model


def make_step(
    model: torch.nn.Module,
    spec: RunSpec,
    device: torch.device,
    progress: Progress,
    monitor: StepMonitor | None = None,
) -> Callable[[bool], tuple[float, float]]:
    """A function running one training step (sync=False: DDP `no_sync`), returning
    (seconds, loss). The injected fault, if any, fires at its step; an injected slowdown
    adds local work after the forward pass; the monitor, if any, records every step."""
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    rank = dist.get_rank()
    batches = synthetic_batches(spec.model, N_BATCHES, spec.seed + rank, device)
    bf16 = spec.precision == "bf16"
    fault = spec.fault if spec.fault is not None and spec.fault.rank == rank else None
    slow = spec.slow if spec.slow is not None and spec.slow.rank == rank else None
    drop = spec.link_drop if rank == 0 else None  # the others wait at the step's barrier
    cuda = device.type == "cuda"
    tokens = spec.model.micro_batch_size * spec.model.seq_len
    meters: list[Any] = []
    """The rank's energy meter once probed (`step.meters.append(meter)`): per-step power."""

    def step(sync: bool) -> tuple[float, float]:
        if fault is not None and progress.step == fault.step:
            inject(fault.kind)
        progress.beat()
        if drop is not None and progress.step == drop.step:
            await_drop(progress.path.parent / DROP_APPLIED)
        x, y = batches[progress.step % N_BATCHES]
        if spec.nproc > 1:
            dist.barrier()
        if cuda:
            torch.cuda.synchronize(device)
        e0 = meters[0].read_j() if meters and monitor is not None else None
        t0, c0 = time.perf_counter(), time.process_time()
        ctx = nullcontext() if sync else model.no_sync()  # type: ignore[operator]
        with ctx:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = model(x, y)
            clock = time.perf_counter if cuda else time.process_time
            if cuda:
                torch.cuda.synchronize(device)
            if slow is not None and progress.step >= slow.step:
                # a straggler: (factor - 1) x its forward + backward (about 3 forwards) of
                # extra local work (no collective, so FSDP's gathers stay matched)
                busy((slow.factor - 1.0) * 3.0 * (clock() - (t0 if cuda else c0)), clock, device)
            # the forward's local compute: CPU seconds on a CPU rank (time-slicing by other
            # processes does not count), synchronized wall seconds on a GPU
            compute_s = clock() - (t0 if cuda else c0)
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        if monitor is not None:
            monitor.record(
                dt,
                tokens=tokens,
                compute_s=compute_s,
                peak_memory_bytes=peak_memory(device)[0],
                energy_j=meters[0].read_j() - e0 if e0 is not None else None,
                phase=progress.phase,
            )
        progress.step += 1
        return dt, float(loss.detach())

    step.meters = meters  # type: ignore[attr-defined]
    return step


def busy(seconds: float, clock: Callable[[], float], device: torch.device) -> None:
    """Keep this rank computing (small local GEMMs, no collective) for `seconds` of `clock`."""
    a = torch.ones(128, 128, device=device)
    end = clock() + seconds
    while clock() < end:
        a = torch.mm(a, a).clamp_(-1.0, 1.0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)


PROBE_CALLS = 10
"""Timed samples of the speed probe's GEMM pair (after 2 untimed ones)."""
PROBE_SAMPLE_S = 2e-3
"""A sample loops the pair for about this long, as the calibration times a kernel (looped
samples, `hwprofiles/calibration/workload.py`): a single 50 us fp32 call timed alone read
0.5-0.85x the calibration's figure in every chain of 2026-12-03 while the model's GEMMs
re-probed the calibration's way read 0.97-0.99x."""


def probe_gemm(spec: RunSpec, device: torch.device) -> list[float]:
    """Seconds per call of the model's MLP GEMMs in the run's compute dtype, the up- and the
    down-projection forward in turn, each in the layout `nn.Linear` runs it (X @ W^T), timed
    on every rank at once: the machine's speed during this run, to set against the
    calibration's figure for the same GEMMs, which is the mean of the two (equal FLOPs;
    `profile.GemmTiming`). A drift of the machine, not of the model, shows here. (A plain
    X @ W, as this probe ran before 2026-12-03, is another kernel on a CPU without a 16-bit
    matrix unit, which the profile does not time: its bf16 speed read 3.9x.)"""
    cfg = spec.model
    dtype = torch.bfloat16 if spec.precision == "bf16" else torch.float32
    gen = torch.Generator(device=device).manual_seed(spec.seed)
    tokens, h, f = cfg.micro_batch_size * cfg.seq_len, cfg.hidden_size, cfg.ffn_size
    x_up = torch.randn(tokens, h, generator=gen, device=device).to(dtype)
    w_up = torch.randn(f, h, generator=gen, device=device).to(dtype)
    x_down = torch.randn(tokens, f, generator=gen, device=device).to(dtype)
    w_down = torch.randn(h, f, generator=gen, device=device).to(dtype)
    pairs = [(x_up, w_up), (x_down, w_down)]
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    if spec.nproc > 1:
        dist.barrier()

    def pair_once() -> None:
        for x, w in pairs:
            torch.mm(x, w.t())

    sync()
    t0 = time.perf_counter()
    pair_once()
    sync()
    inner = max(1, min(1000, round(PROBE_SAMPLE_S / max(time.perf_counter() - t0, 1e-9))))
    out = []
    for i in range(PROBE_CALLS + 2):
        sync()
        t0 = time.perf_counter()
        for _ in range(inner):
            pair_once()
        sync()
        if i >= 2:  # per call, the mean of up and down
            out.append((time.perf_counter() - t0) / (2 * inner))
    return out


def await_drop(flag: Path, poll_s: float = 0.002) -> None:
    """Hold (before the step's clock starts) until the launcher has applied the injected
    link drop and written `flag`, for at most `DROP_WAIT_S`."""
    end = time.monotonic() + DROP_WAIT_S
    while not flag.exists() and time.monotonic() < end:
        time.sleep(poll_s)


def inject(kind: str) -> None:
    """Fail on purpose (launcher tests): exit without a word, raise, or hang."""
    if kind == "exit":
        os._exit(FAULT_EXIT_CODE)
    if kind == "raise":
        raise RuntimeError("injected fault")
    time.sleep(HANG_S)


def machine_busy_s(stat: Path = Path("/proc/stat")) -> float | None:
    """CPU-seconds all cores of the machine have been busy since boot (user, nice, system,
    irq, softirq; not idle, iowait or steal), from /proc/stat (proc(5)); None if unreadable."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def peak_memory(device: torch.device) -> tuple[int, str]:
    """Peak memory of this rank in bytes and what it counts."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda_max_allocated"
    # ru_maxrss is in KiB on Linux (getrusage(2)); it includes the Python/torch runtime
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "max_rss"


def train_and_measure(spec: RunSpec, progress: Progress) -> dict[str, Any]:
    """Build, wrap and train the model; return this rank's measurements."""
    rank, local_rank = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}") if spec.device == "cuda" else torch.device("cpu")
    torch.manual_seed(spec.seed)  # the same initial weights on every rank
    model = wrap_model(GPT(spec.model).to(device), spec, device)
    monitor = rank_monitor(spec, rank, progress.path.parent)
    step = make_step(model, spec, device, progress, monitor)

    progress.beat("warmup")
    losses = [step(True)[1] for _ in range(spec.warmup)]
    # one package meter covers every rank on a CPU; each GPU has its own
    metered = spec.device == "cuda" or local_rank == 0
    meter, why = probe_energy_meter(spec.device, index=local_rank) if metered else (None, "")
    if meter is not None and spec.device == "cuda":  # a package meter on a CPU is shared
        step.meters.append(meter)  # type: ignore[attr-defined]
    probes = InRunProbes(spec, device, rank)
    progress.beat("timed")
    times: list[float] = []
    inrun: list[tuple[float, float | None, float | None, dict[str, float]]] = []
    busy0, cpu0 = machine_busy_s(), time.process_time()
    # the probes' own CPU time, wall time and energy, and those of the untimed step after
    # them, are taken out of the window's figures
    probe_cpu = probe_wall = probe_j = 0.0
    with measure(meter) as window:
        for _ in range(spec.steps):
            dt, loss = step(True)
            times.append(dt)
            losses.append(loss)
            c0, w0 = time.process_time(), time.perf_counter()
            e0 = meter.read_j() if meter is not None else 0.0
            inrun.append(probes.sample())  # outside the step's clock (`validation.inrun`)
            step(True)  # untimed: the next timed step follows a step, not the probes
            probe_j += (meter.read_j() if meter is not None else 0.0) - e0
            probe_cpu += time.process_time() - c0
            probe_wall += time.perf_counter() - w0
    busy1, cpu_s = machine_busy_s(), time.process_time() - cpu0 - probe_cpu
    window_s = window.seconds - probe_wall
    pairs_sync: list[float] = []
    pairs_nosync: list[float] = []
    if spec.measures_comm_by_no_sync:
        progress.beat("comm")
        for _ in range(spec.comm_pairs):
            pairs_sync.append(step(True)[0])
            pairs_nosync.append(step(False)[0])
    if monitor is not None:
        monitor.close()
    progress.beat("probe")
    probe = probe_gemm(spec, device)
    mem, mem_kind = peak_memory(device)
    return {
        "rank": rank,
        "world_size": dist.get_world_size(),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "device": str(device),
        "backend": dist.get_backend(),
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "step_times_s": times,
        "pair_sync_s": pairs_sync,
        "pair_nosync_s": pairs_nosync,
        "probe_gemm_s": probe,
        "inrun_gemm_s": [x[0] for x in inrun],
        "inrun_pass_s": [x[1] for x in inrun if x[1] is not None],
        "inrun_optimizer_s": [x[2] for x in inrun if x[2] is not None],
        "inrun_collective_s": {k: [x[3][k] for x in inrun] for k in (inrun[0][3] if inrun else {})},
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "peak_memory_bytes": mem,
        "peak_memory_kind": mem_kind,
        "timed_window_s": window_s,
        "timed_cpu_s": cpu_s,
        # the other ranks' probes taken as this rank's (they run the same probes at once)
        "timed_machine_busy_s": busy1 - busy0 - probe_cpu * spec.nproc
        if busy0 is not None and busy1 is not None
        else None,
        "energy_metered": metered,
        "energy_j": window.joules - probe_j if window.joules is not None else None,
        "energy_window_s": window_s,
        "energy_meter": window.meter,
        "energy_reason": why,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point under torchrun (RANK, WORLD_SIZE, MASTER_ADDR/PORT set by it)."""
    args = sys.argv[1:] if argv is None else argv
    run_dir = Path(args[0])
    spec = RunSpec.from_dict(json.loads((run_dir / "spec.json").read_text()))
    rank = int(os.environ["RANK"])
    die_with_parent()
    progress = Progress(run_dir, rank)
    progress.beat("start")
    try:
        torch.set_num_threads(spec.threads_per_rank)
        timeout = timedelta(seconds=spec.collective_timeout_s)
        if spec.device == "cuda":
            dev = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
            torch.cuda.set_device(dev)
            dist.init_process_group("nccl", timeout=timeout, device_id=dev)
        else:
            dist.init_process_group("gloo", timeout=timeout)
        result = train_and_measure(spec, progress)
        write_atomic(run_dir / f"rank{rank}.json", dumps(result))
        progress.beat("done")
        dist.destroy_process_group()
        return 0
    except BaseException as exc:
        err = {
            "rank": rank,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=-6),
        }
        write_atomic(run_dir / f"rank{rank}.error.json", dumps(err))
        raise


if __name__ == "__main__":
    sys.exit(main())
