"""Collective benchmarks as real multi-process groups (gloo on CPU, NCCL on GPU).

Each world size runs as `world_size` fresh Python processes (`collective_worker`), joined by a
file store in a private temporary directory. Each worker is the leader of its own process
session, so a worker that dies, hangs or is interrupted is stopped with its whole process
group: nothing outlives `run_collective_group`, and the caller gets one clear error.

Sizes and bandwidths follow nccl-tests (doc/PERFORMANCE.md): ``bytes`` is the size S that
nccl-tests prints (all_gather: the gathered output, reduce_scatter: the full input, others:
the buffer), ``algbw = S / t`` and ``busbw = algbw * factor(collective, n)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hwprofiles.calibration.timing import Repeats
from hwprofiles.errors import UserError

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "send_recv")
COLLECTIVE_COLUMNS = (
    "collective", "backend", "world_size", "bytes", "median_s", "min_s", "max_s", "count",
    "noisy", "algbw_bytes_per_s", "busbw_bytes_per_s",
)  # fmt: skip
MET_COLUMNS = (
    "collective", "backend", "world_size", "bytes", "gap_s", "mean_s", "median_s", "min_s",
    "max_s", "count",
)  # fmt: skip
"""Rows of collectives timed *as a training step meets them* (`GroupConfig.gap_s`)."""
MET_COLLECTIVES = ("all_reduce", "all_gather")
"""What DDP (all-reduce) and FSDP (all-gather; gloo reduce-scatters by all-reducing) call."""
MET_SIZES = (64 * 1024, 256 * 1024, 1024 * 1024)
"""The validation models' gradient buckets and FSDP units: 0.1-0.5 MB (tiny and small)."""
MET_GAP_S = 5e-3
"""Compute each rank runs before each timed call (s): between the tiny model's per-unit
forward (~0.7 ms fp32) and its bf16 backward (~17 ms), as DDP's bucket and FSDP's units meet
their collectives on the 2-vCPU VM."""
MET_SAMPLES = 30
"""Single calls per collective and size (a choice): with 25-60 % of calls hitting a 3-4 ms
wake-up, the mean of 30 moves by about a tenth between calibrations; 30 x (5 ms + the
call) is about 0.3 s per size, 2 s for the 6 rows."""
ELEMENT_BYTES = 4  # collectives move fp32 buffers
POLL_S = 0.05  # how often the supervisor checks its workers (s)


class CollectiveError(RuntimeError):
    """A collective benchmark failed: a worker died, hung past the timeout, or could not start."""


def bus_factor(collective: str, world_size: int) -> float:
    """nccl-tests busbw/algbw factor: 2(n-1)/n all-reduce, (n-1)/n all-gather and
    reduce-scatter, 1 broadcast and send/recv (nccl-tests doc/PERFORMANCE.md); 0 for a single
    rank, where nothing crosses a bus (as `simulator.costmodel.collectives.bus_factor`)."""
    n = world_size
    if collective not in COLLECTIVES:
        raise UserError(f"collective: {collective!r} is not one of {', '.join(COLLECTIVES)}")
    if n < 2:
        return 0.0
    if collective == "all_reduce":
        return 2.0 * (n - 1) / n
    if collective in ("all_gather", "reduce_scatter"):
        return (n - 1) / n
    return 1.0  # broadcast, send_recv


def message_bytes(size: int, world_size: int) -> int:
    """`size` rounded up to whole fp32 elements divisible by `world_size` (>= one each)."""
    quantum = ELEMENT_BYTES * world_size
    return max(quantum, -(-size // quantum) * quantum)


@dataclass(frozen=True)
class Fault:
    """Test hook: make `rank` "die" (exit 3) or "hang" (sleep) after its first measurement."""

    kind: str
    rank: int


@dataclass(frozen=True)
class GroupConfig:
    """What one group of workers measures (serialised to JSON for the workers)."""

    world_size: int
    backend: str
    device: str
    collectives: tuple[str, ...]
    sizes: tuple[int, ...]
    repeats: Repeats
    threads_per_rank: int
    timeout_s: float
    fault: Fault | None = None
    prefixes: tuple[tuple[str, ...], ...] = ()
    """Per rank, a command prefix to start it with (``ip netns exec NS``: ranks in network
    namespaces joined by shaped links); empty: plain processes on this host."""
    ifname: str | None = None
    """The network interface gloo must use (``GLOO_SOCKET_IFNAME``); None: gloo's choice."""
    gap_s: float = 0.0
    """0: back-to-back calls (nccl-tests' way). > 0: each timed call is one call, issued after
    every rank computed for this long (a GEMM loop), as a training step meets its
    collectives; rows of `MET_COLUMNS` with the mean per call (`collective_worker`)."""


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    picked = errors[-1] if errors else next((ln for ln in reversed(lines) if ln), "")
    return picked[:300]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGKILL every worker's process group that is still alive, then reap it."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        p.wait()


def run_collective_group(cfg: GroupConfig) -> list[dict[str, object]]:
    """Run one world size's collectives; rows of `COLLECTIVE_COLUMNS`.

    Raises `CollectiveError` naming the rank and what happened if a worker exits non-zero or
    the group is still running after `cfg.timeout_s` seconds; every worker is stopped first.
    """
    if cfg.world_size < 1:
        raise UserError(f"world_size: {cfg.world_size} must be >= 1")
    with tempfile.TemporaryDirectory(prefix="llmcap-comm-") as tmp:
        tmpdir = Path(tmp)
        conf = tmpdir / "config.json"
        out = tmpdir / "rows.json"
        payload = asdict(cfg) | {"store": str(tmpdir / "store"), "out": str(out)}
        conf.write_text(json.dumps(payload))
        env = os.environ | {"OMP_NUM_THREADS": str(cfg.threads_per_rank)}
        if cfg.ifname:
            env |= {"GLOO_SOCKET_IFNAME": cfg.ifname, "NCCL_SOCKET_IFNAME": cfg.ifname}
        procs: list[subprocess.Popen[bytes]] = []
        logs = [tmpdir / f"rank{r}.log" for r in range(cfg.world_size)]
        try:
            for rank in range(cfg.world_size):
                with open(logs[rank], "wb") as log:
                    cmd = [sys.executable, "-m", "hwprofiles.calibration.collective_worker"]
                    cmd = [*(cfg.prefixes[rank] if cfg.prefixes else ()), *cmd]
                    procs.append(
                        subprocess.Popen(
                            [*cmd, str(conf), str(rank)],
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=env,
                            start_new_session=True,
                        )
                    )
            _supervise(procs, logs, cfg)
        finally:
            _stop(procs)
        return json.loads(out.read_text())


def _supervise(procs: list[subprocess.Popen[bytes]], logs: list[Path], cfg: GroupConfig) -> None:
    where = f"world_size={cfg.world_size} ({cfg.backend})"
    deadline = time.monotonic() + cfg.timeout_s
    while True:
        codes = [p.poll() for p in procs]
        failed = [
            f"rank {rank} exited with code {code} ({_last_line(logs[rank]) or 'no output'})"
            for rank, code in enumerate(codes)
            if code not in (None, 0)
        ]
        if failed:
            raise CollectiveError(f"collectives: {where}: {'; '.join(failed)}; stopped all ranks")
        if all(code == 0 for code in codes):
            return
        if time.monotonic() > deadline:
            alive = [str(r) for r, c in enumerate(codes) if c is None]
            raise CollectiveError(
                f"collectives: {where} did not finish within {cfg.timeout_s:g} s "
                f"(rank(s) {', '.join(alive)} still running: hung peer?); stopped all ranks"
            )
        time.sleep(POLL_S)
