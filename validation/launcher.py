"""Start the ranks of one run with torchrun, watch them, and stop every one of them.

Every rank gets its own torchrun agent (``--nnodes N --node-rank R --nproc-per-node 1``,
static rendezvous at rank 0's address), so a rank can live in its own network namespace and
a failing agent names the failing rank. Agents run in their own sessions and process groups;
ranks are killed by their parent's death (PR_SET_PDEATHSIG) and, as a second net, by the pid
each rank reports in its progress file.

Failure rules, checked every `POLL_S`:
- an agent exits non-zero: that rank failed (its error file, or its exit status, says why);
  when several fail close together, a rank whose error is a lost peer connection is taken
  to be a consequence, not the cause;
- no rank reaches the warm-up within `start_timeout_s`: the ranks still starting failed;
- no rank makes progress for `hang_timeout_s`: the rank furthest behind hung (unless every
  rank has already written its results: then only the shutdown stalled).
Then every rank is stopped (SIGTERM, `GRACE_S`, SIGKILL) before `launch` returns.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from analysis.cli.common import dumps, write_atomic
from validation.monitor.config import DROP_APPLIED
from validation.monitor.rules import Alert
from validation.monitor.watch import LiveWatch
from validation.spec import RunSpec

POLL_S = 0.2  # launcher polling period (s): bounded polling of processes and progress files
GRACE_S = 5.0  # time between SIGTERM and SIGKILL when stopping ranks (s)
PHASES = ("start", "warmup", "timed", "comm", "probe", "done")
"""What a rank reports doing, in order (`worker.Progress.beat`)."""
_PEER_LOST = re.compile(r"DistBackendError|Connection (closed|reset)|peer|Broken pipe", re.I)
_WORKER_EXIT = re.compile(r"exitcode\s*:\s*(-?\d+)")


@dataclass(frozen=True)
class Network:
    """Where ranks run and how they find rank 0: one command prefix per rank (e.g.
    ``ip netns exec NS``), rank 0's address and port, and the interface gloo must use."""

    master_addr: str
    master_port: int
    ifname: str
    prefixes: tuple[tuple[str, ...], ...] = ()
    set_rate: Callable[[float], None] | None = field(default=None, compare=False)
    """Change the links' rate mid-run (bytes/s per direction); None on loopback."""

    def prefix(self, rank: int) -> list[str]:
        return list(self.prefixes[rank]) if self.prefixes else []


def loopback() -> Network:
    """All ranks on this host's loopback interface, on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return Network("127.0.0.1", port, "lo")


@dataclass
class Failure:
    """Which rank failed (None: not attributable to one) and why, in one line."""

    rank: int | None
    reason: str
    others: list[str] = field(default_factory=list)
    """What happened to other ranks afterwards (usually consequences)."""


@dataclass
class Outcome:
    """What came back from one run: per-rank results, and the failure if any."""

    spec: RunSpec
    run_dir: Path
    results: dict[int, dict[str, Any]]
    failure: Failure | None
    wall_s: float
    alerts: list[dict[str, Any]] = field(default_factory=list)
    """Monitor alerts (`validation.monitor`), each with its run, rank and step range."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Injected events that happened (a link drop, with its step)."""

    @property
    def ok(self) -> bool:
        return self.failure is None and len(self.results) == self.spec.nproc


def agent_command(spec: RunSpec, rank: int, run_dir: Path, net: Network) -> list[str]:
    """The torchrun command line of one rank's agent."""
    return [
        *net.prefix(rank),
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        str(spec.nproc),
        "--node-rank",
        str(rank),
        "--nproc-per-node",
        "1",
        "--master-addr",
        net.master_addr,
        "--master-port",
        str(net.master_port),
        "--max-restarts",
        "0",
        "-m",
        "validation.worker",
        str(run_dir),
    ]


CPU_MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184"
"""glibc malloc settings for CPU ranks (`GLIBC_TUNABLES`, glibc manual "Memory Allocation
Tunables"): blocks up to 32 MiB come from the heap and freed memory is kept (trim above
16 GiB), as torch's CUDA caching allocator keeps GPU memory. By default glibc returns large
freed blocks to the kernel, and every re-allocation page-faults: 1-rank FSDP fp32 of `small`
took 8-16 k minor page faults per step (about 200 with these settings), and its step was
9-77 ms longer in each of five paired runs on the 2-core Xeon of 2026-11-29 (medians 280 vs
241 ms).
The cost model prices a caching allocator, and `benchmarks/validate_cpu.sh` calibrates under
the same settings."""


def agent_env(spec: RunSpec, net: Network) -> dict[str, str]:
    """The environment of a rank's torchrun agent (and so of the rank): its threads, the
    interface its collectives use and, on CPU, a caching malloc unless one is set."""
    env = dict(os.environ)
    if spec.device == "cpu":
        env.setdefault("GLIBC_TUNABLES", CPU_MALLOC_TUNABLES)
    threads = str(spec.threads_per_rank)
    env.update(
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        GLOO_SOCKET_IFNAME=net.ifname,
        NCCL_SOCKET_IFNAME=net.ifname,
        PYTHONUNBUFFERED="1",
    )
    return env


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has exited


class Watch:
    """The agents of one run and what the launcher has seen of them."""

    def __init__(self, spec: RunSpec, run_dir: Path, net: Network) -> None:
        self.spec, self.run_dir = spec, run_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs = []
        for r in range(spec.nproc):
            log = open(run_dir / f"rank{r}.log", "wb")  # noqa: SIM115 - closed in stop()
            self.logs.append(log)
            cmd = agent_command(spec, r, run_dir, net)
            self.procs.append(
                subprocess.Popen(
                    cmd,
                    env=agent_env(spec, net),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        self.progress: dict[int, tuple[int, int]] = {}
        self.pids: set[int] = set()

    def read_progress(self) -> bool:
        """Refresh each rank's (phase, step); True if any rank moved."""
        moved = False
        for r in range(self.spec.nproc):
            rec = _read_json(self.run_dir / f"rank{r}.progress.json")
            if rec is None:
                continue
            self.pids.add(int(rec["pid"]))
            pos = (PHASES.index(rec["phase"]), int(rec["step"]))
            if self.progress.get(r) != pos:
                self.progress[r] = pos
                moved = True
        return moved

    def why_exited(self, rank: int, code: int) -> str:
        err = _read_json(self.run_dir / f"rank{rank}.error.json")
        if err is not None:
            return str(err["error"])
        log = (self.run_dir / f"rank{rank}.log").read_text(errors="replace")
        found = _WORKER_EXIT.findall(log)
        if found:
            wc = int(found[-1])
            if wc < 0:
                return f"killed by {signal.Signals(-wc).name}"
            return f"exited with status {wc} without an error report"
        return f"torchrun agent exited with status {code}"

    def stop(self, grace_s: float = GRACE_S) -> None:
        """SIGTERM every agent's process group, wait `grace_s`, then SIGKILL agents and any
        rank still alive; wait until they are gone."""
        self.read_progress()
        for p in self.procs:
            if p.poll() is None:
                _signal_group(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(p.poll() is None for p in self.procs):
            time.sleep(POLL_S)
        for p in self.procs:
            if p.poll() is None:
                _signal_group(p.pid, signal.SIGKILL)
            p.wait()
        for pid in self.pids:
            if pid_alive(pid):
                _signal_pid(pid, signal.SIGKILL)
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and any(pid_alive(pid) for pid in self.pids):
            time.sleep(POLL_S)
        for log in self.logs:
            log.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, sig)


def _exit_failure(w: Watch, codes: list[int | None]) -> Failure:
    failed = [r for r, c in enumerate(codes) if c not in (None, 0)]
    why = {r: w.why_exited(r, codes[r]) for r in failed}  # type: ignore[arg-type]
    cause = sorted(failed, key=lambda r: (bool(_PEER_LOST.search(why[r])), r))[0]
    others = [f"rank {r}: {why[r]}" for r in failed if r != cause]
    return Failure(cause, f"rank {cause} failed: {why[cause]}", others)


def _stall_failure(w: Watch, stalled_s: float) -> Failure:
    behind = min(w.progress.values()) if len(w.progress) == w.spec.nproc else (0, 0)
    lagging = [r for r in range(w.spec.nproc) if w.progress.get(r, (0, 0)) == behind]
    ahead = max(w.progress.values(), default=behind)
    rank = lagging[0] if len(lagging) == 1 else None
    who = f"rank {rank}" if rank is not None else "ranks " + ",".join(map(str, lagging))
    note = f" while others began step {ahead[1]}" if ahead != behind else ""
    return Failure(
        rank,
        f"{who} hung: no progress for {stalled_s:.0f} s; last began step {behind[1]} "
        f"({PHASES[behind[0]]}, counting warm-up){note}",
    )


def launch(
    spec: RunSpec,
    run_dir: Path,
    net: Network | None = None,
    *,
    start_timeout_s: float = 180.0,
    hang_timeout_s: float = 120.0,
    on_alert: Callable[[Alert], None] | None = None,
) -> Outcome:
    """Run `spec` with one torchrun agent per rank; always stop every rank before returning.

    `start_timeout_s` bounds the time until every rank is training (imports, rendezvous,
    model set-up); `hang_timeout_s` bounds the time without any rank finishing a step.
    Ctrl-C (KeyboardInterrupt) also stops every rank, then propagates. A monitored run
    (`spec.monitor`) is watched across ranks as it goes (`monitor.watch.LiveWatch`); each
    alert reaches `on_alert` when it opens and the outcome lists them all.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob("rank*"):
        stale.unlink()
    (run_dir / DROP_APPLIED).unlink(missing_ok=True)
    write_atomic(run_dir / "spec.json", dumps(spec.to_dict()))
    net = net or loopback()
    t0 = time.monotonic()
    w = Watch(spec, run_dir, net)
    live = None
    if spec.monitor is not None:
        live = LiveWatch(
            spec.run_id, run_dir, spec.nproc, spec.monitor.thresholds,
            spec.monitor.predicted_step_time_s, on_alert, spec.link_drop,
            partial(_drop_rate, net, run_dir),
        )  # fmt: skip
    try:
        failure = _watch(w, t0, start_timeout_s, hang_timeout_s, live)
    finally:
        try:
            w.stop()
        except KeyboardInterrupt:  # a second Ctrl-C while stopping: kill at once, then go
            w.stop(grace_s=0.0)
            raise
    results = {}
    for r in range(spec.nproc):
        rec = _read_json(run_dir / f"rank{r}.json")
        if rec is not None:
            results[r] = rec
    if failure is None and len(results) < spec.nproc:
        missing = [r for r in range(spec.nproc) if r not in results]
        failure = Failure(missing[0], f"rank {missing[0]} exited without writing its results")
    alerts, events = [], []
    if live is not None:
        live.poll(w.progress, 0.0)  # what the ranks wrote last
        alerts = [a.to_dict() for a in live.alerts]
        events = live.events
        write_atomic(run_dir / "report.json", dumps({"run": spec.run_id, "alerts": alerts,
                                                     "events": events}))  # fmt: skip
    return Outcome(spec, run_dir, results, failure, time.monotonic() - t0, alerts, events)


def _drop_rate(net: Network, run_dir: Path, bytes_per_s: float) -> None:
    """Apply an injected link drop, then tell the holding rank it is in place."""
    net.set_rate(bytes_per_s)
    write_atomic(run_dir / DROP_APPLIED, "")


def _watch(
    w: Watch,
    t0: float,
    start_timeout_s: float,
    hang_timeout_s: float,
    live: LiveWatch | None = None,
) -> Failure | None:
    last_move = time.monotonic()
    while True:
        codes = [p.poll() for p in w.procs]
        if any(c not in (None, 0) for c in codes):
            time.sleep(POLL_S)  # let the consequences land, then pick the cause
            return _exit_failure(w, [p.poll() for p in w.procs])
        if all(c == 0 for c in codes):
            return None
        now = time.monotonic()
        if w.read_progress():
            last_move = now
        if live is not None:
            live.poll(w.progress, now - last_move)
        started = len(w.progress) == w.spec.nproc and min(w.progress.values())[0] > 0
        if not started and now - t0 > start_timeout_s:
            slow = [r for r in range(w.spec.nproc) if w.progress.get(r, (0, 0))[0] == 0]
            return Failure(
                slow[0] if len(slow) == 1 else None,
                f"rank(s) {','.join(map(str, slow))} did not start training within "
                f"{start_timeout_s:g} s",
            )
        if started and now - last_move > hang_timeout_s:
            if all((w.run_dir / f"rank{r}.json").exists() for r in range(w.spec.nproc)):
                return None  # every rank reported; only the shutdown stalls: stop() ends it
            return _stall_failure(w, now - last_move)
        time.sleep(POLL_S)
