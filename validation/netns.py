"""Links of a chosen bandwidth: every rank in its own network namespace, joined by a bridge
whose ports are rate-limited with `tc tbf`, torn down afterwards whatever happens.

Scenario (N ranks, rate R bytes/s per direction)::

    ns <tag>r0 [lc0 10.213.0.1] ==veth== p0 ─┐
    ns <tag>r1 [lc0 10.213.0.2] ==veth== p1 ─┼─ bridge lcbr in ns <tag>h
    ...                                      ┘

`tc tbf` shapes the rank's egress (lc0, rank -> bridge) and the bridge port's egress (pK,
bridge -> rank), so each rank sends and receives at most R. The bridge lives in its own
namespace and the veth ends are created directly inside the namespaces: nothing is added to
the host's network namespace and no traffic leaves the machine. Deleting the namespaces
deletes the veths and the bridge with them.

Needs root (CAP_NET_ADMIN) and iproute2 (`ip`, `tc`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from types import TracebackType

from hwprofiles.errors import UserError
from validation.launcher import Network

TAG_PREFIX = "llmcap"
SUBNET = "10.213.0"
"""Private /24 (RFC 1918) used only inside the namespaces; the host never sees it."""
IFNAME = "lc0"
MASTER_PORT = 29500  # torchrun's default port; free in a fresh namespace
MTU_FRAME_BYTES = 1514  # one full Ethernet frame as tbf counts it on a veth (MTU 1500 + 14)
MIN_BURST_BYTES = 16 * MTU_FRAME_BYTES
"""tbf bucket: at least a few frames so that TSO segments pass (tc-tbf(8): burst >= MTU)."""
BURST_S = 1e-3
"""Bucket depth as time at the line rate: 1 ms, so bursts barely exceed the rate."""
QUEUE_LATENCY = "50ms"
"""tbf queue bound (tc-tbf(8) `latency`): deep enough for TCP to keep the link busy."""
NO_SLOW_START_AFTER_IDLE = "net.ipv4.tcp_slow_start_after_idle=0"
"""Per-namespace sysctl: keep TCP's congestion window across the compute phases between
collectives (Linux default 1 restarts slow start after an idle RTO, RFC 5681 Sec. 4.1), so
the link behaves as the steady pipe the alpha-beta model assumes."""
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmg]?)(bit|b/s)\s*$", re.I)
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


def parse_rate(text: str) -> float:
    """A link rate in bytes/s from "200Mbit", "1Gbit" (bits/s) or "25MB/s" (bytes/s); SI
    prefixes (k = 1e3)."""
    m = _RATE.match(text)
    if m is None:
        raise UserError(f"link-bandwidth: {text!r} must be a rate like 200Mbit, 1Gbit or 25MB/s")
    value = float(m.group(1)) * _SCALE[m.group(2).lower()]
    bytes_per_s = value / 8 if m.group(3).lower() == "bit" else value
    if bytes_per_s <= 0:
        raise UserError(f"link-bandwidth: {text!r} must be > 0")
    return bytes_per_s


def check_can_link() -> None:
    """Raise PermissionError (with what is missing) unless namespaces can be made here."""
    if os.geteuid() != 0:
        raise PermissionError(
            f"link-bandwidth: needs root for network namespaces and tc (running as uid "
            f"{os.geteuid()})"
        )
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            raise PermissionError(f"link-bandwidth: needs iproute2's `{tool}` on PATH")


def _run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def namespaces() -> list[str]:
    """Names of all network namespaces on the host (`ip netns list`)."""
    return [line.split()[0] for line in _run("ip", "netns", "list").splitlines() if line.strip()]


def leftovers(tag: str = TAG_PREFIX) -> list[str]:
    """Namespaces whose name starts with `tag` (after a run: should be none of ours)."""
    return [n for n in namespaces() if n.startswith(tag)]


def remove_stale() -> list[str]:
    """Delete namespaces left by llmcap processes that no longer exist (e.g. SIGKILLed)."""
    removed = []
    for name in leftovers(TAG_PREFIX):
        m = re.match(rf"^{TAG_PREFIX}(\d+)", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            removed.append(name)
    return removed


class RateLimitedLinks:
    """Context manager: namespaces and rate-limited links for `nranks` ranks.

    ``with RateLimitedLinks(2, 25e6) as net: launch(spec, run_dir, net)``; on exit (normal,
    exception, KeyboardInterrupt) every namespace it made is deleted.
    """

    def __init__(self, nranks: int, rate_bytes_per_s: float, tag: str | None = None) -> None:
        if nranks < 1 or nranks > 250:
            raise UserError(f"nproc: {nranks} must be in 1..250 for one /24 subnet")
        self.rate = rate_bytes_per_s
        self.tag = tag or f"{TAG_PREFIX}{os.getpid()}"
        self.hub = f"{self.tag}h"
        self.ranks = [f"{self.tag}r{r}" for r in range(nranks)]
        self.addresses = [f"{SUBNET}.{r + 1}" for r in range(nranks)]

    def tbf(self, ns: str, dev: str, verb: str = "add") -> None:
        burst = max(MIN_BURST_BYTES, int(self.rate * BURST_S))
        rate = f"{int(self.rate * 8)}bit"
        _run(
            "tc",
            "-n",
            ns,
            "qdisc",
            verb,
            "dev",
            dev,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            str(burst),
            "latency",
            QUEUE_LATENCY,
        )

    def create(self) -> Network:
        """Make the hub namespace with its bridge, then one namespace and shaped veth per rank."""
        _run("ip", "netns", "add", self.hub)
        _run("ip", "-n", self.hub, "link", "add", "lcbr", "type", "bridge")
        _run("ip", "-n", self.hub, "link", "set", "lcbr", "up")
        for r, (ns, addr) in enumerate(zip(self.ranks, self.addresses, strict=True)):
            port = f"p{r}"
            _run("ip", "netns", "add", ns)
            _run(
                "ip",
                "link",
                "add",
                IFNAME,
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                "name",
                port,
                "netns",
                self.hub,
            )
            _run("ip", "-n", self.hub, "link", "set", port, "master", "lcbr")
            _run("ip", "-n", self.hub, "link", "set", port, "up")
            _run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", IFNAME)
            _run("ip", "-n", ns, "link", "set", IFNAME, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "netns", "exec", ns, "sysctl", "-qw", NO_SLOW_START_AFTER_IDLE)
            self.tbf(ns, IFNAME)
            self.tbf(self.hub, port)
        prefixes = tuple(("ip", "netns", "exec", ns) for ns in self.ranks)
        return Network(self.addresses[0], MASTER_PORT, IFNAME, prefixes, self.set_rate)

    def set_rate(self, rate_bytes_per_s: float) -> None:
        """Change every shaped port to `rate_bytes_per_s` (per direction) while ranks run
        (an injected link drop).

        The qdisc is deleted and added again, not changed in place: a `tc qdisc change` to
        a smaller bucket leaves any queued GSO packet larger than the new bucket in the
        queue for ever (tbf only splits oversized packets as they arrive), which stalled
        the ranks' gloo connections in about one run in three here. The few packets the
        delete drops are retransmitted by TCP."""
        self.rate = rate_bytes_per_s
        for ns, dev in [(ns, IFNAME) for ns in self.ranks] + [
            (self.hub, f"p{r}") for r in range(len(self.ranks))
        ]:
            _run("tc", "-n", ns, "qdisc", "del", "dev", dev, "root")
            self.tbf(ns, dev)

    def delete(self) -> list[str]:
        """Delete every namespace of this instance; return those that could not be deleted."""
        for ns in [*self.ranks, self.hub]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        mine = {*self.ranks, self.hub}
        return [n for n in namespaces() if n in mine]

    def __enter__(self) -> Network:
        check_can_link()
        remove_stale()
        try:
            return self.create()
        except BaseException:
            self.delete()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        left = self.delete()
        if left and exc_type is None:
            raise RuntimeError(f"link-bandwidth: could not delete namespaces {left}")
