"""`RunSpec`: one validation run (model, strategy, precision, ranks, link), as the launcher
writes it for the workers to read. Validated at construction; plain JSON on disk."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hwprofiles.errors import UserError
from simulator.limits import MAX_LOCAL_RANKS
from validation.gptconfig import GPTConfig
from validation.monitor.config import LinkDrop, MonitorSpec, Slowdown

STRATEGIES = ("ddp", "fsdp")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("cpu", "cuda")
FAULT_KINDS = ("exit", "raise", "hang")
FAULT_EXIT_CODE = 3
"""Exit status of a rank told to fail with kind "exit" (any non-zero value would do)."""


def format_rate(bytes_per_s: float) -> str:
    """A link rate for run names and tables, in bits per second: "200Mbit", "1Gbit"."""
    bits = bytes_per_s * 8
    for unit, scale in (("Gbit", 1e9), ("Mbit", 1e6), ("kbit", 1e3)):
        if bits >= scale:
            return f"{bits / scale:g}{unit}"
    return f"{bits:g}bit"


@dataclass(frozen=True)
class Fault:
    """A deliberate failure for testing the launcher: rank `rank` fails at training step
    `step` (counting warm-up) by exiting, raising, or hanging."""

    rank: int
    kind: str
    step: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise UserError(f"fault.kind: {self.kind!r} must be one of {FAULT_KINDS}")
        if self.rank < 0 or self.step < 0:
            raise UserError(f"fault: rank {self.rank} and step {self.step} must be >= 0")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """ "RANK:KIND[:STEP]", e.g. "1:exit:2"."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts[::2]):
            raise UserError(f"fault: {text!r} must be RANK:KIND[:STEP]")
        return cls(int(parts[0]), parts[1], int(parts[2]) if len(parts) == 3 else 0)


@dataclass(frozen=True)
class RunSpec:
    """One run: `nproc` ranks train `model` with `strategy` at `precision`.

    Steps: `warmup` untimed steps, then `steps` timed steps (step time, energy), then, for
    DDP with more than one rank, `comm_pairs` interleaved pairs of a normal step and the same
    step under `no_sync()` (no gradient all-reduce), from which the exposed communication share
    is measured.
    """

    model: GPTConfig
    strategy: str
    precision: str
    nproc: int
    steps: int = 20
    warmup: int = 3
    comm_pairs: int = 10
    link_bytes_per_s: float | None = None
    """Per-direction rate of each rank's port (tc tbf), or None for the host's loopback."""
    device: str = "cpu"
    threads_per_rank: int = 1
    """torch intra-op threads per rank: a CPU "device" is one rank with this many threads."""
    seed: int = 0
    collective_timeout_s: float = 300.0
    """Backstop for a collective that never completes (the launcher stops ranks sooner)."""
    fault: Fault | None = field(default=None)
    monitor: MonitorSpec | None = None
    """Live monitoring against the prediction (`validation.monitor`); None: not watched."""
    slow: Slowdown | None = None
    """An injected straggler (tests of the monitor)."""
    link_drop: LinkDrop | None = None
    """An injected mid-run drop of the rate-limited links (tests of the monitor)."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UserError(f"strategy: {self.strategy!r} must be one of {STRATEGIES}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision: {self.precision!r} must be one of {PRECISIONS}")
        if self.device not in DEVICES:
            raise UserError(f"device: {self.device!r} must be one of {DEVICES}")
        for name in ("nproc", "steps", "threads_per_rank"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise UserError(f"{name}: {v!r} must be an integer >= 1")
        if self.nproc > MAX_LOCAL_RANKS:
            raise UserError(
                "nproc", self.nproc, f"is above llmcap's limit of {MAX_LOCAL_RANKS} local ranks"
            )
        for name in ("warmup", "comm_pairs", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise UserError(f"{name}: {v!r} must be an integer >= 0")
        if self.link_bytes_per_s is not None and self.link_bytes_per_s <= 0:
            raise UserError(f"link-bandwidth: {self.link_bytes_per_s} B/s must be > 0")
        if self.fault is not None and self.fault.rank >= self.nproc:
            raise UserError(f"fault.rank: {self.fault.rank} must be < nproc = {self.nproc}")
        if self.link_drop is not None and (self.link_bytes_per_s is None or self.nproc < 2):
            raise UserError(
                "--inject link-drop", self.link_drop.bytes_per_s,
                "needs rate-limited links (--link-bandwidth) and at least 2 ranks",
            )  # fmt: skip

    @property
    def run_id(self) -> str:
        """e.g. "ddp-fp32-n2" or "fsdp-bf16-n2@200Mbit"."""
        rid = f"{self.strategy}-{self.precision}-n{self.nproc}"
        if self.link_bytes_per_s is not None:
            rid += f"@{format_rate(self.link_bytes_per_s)}"
        return rid

    @property
    def measures_comm_by_no_sync(self) -> bool:
        return self.strategy == "ddp" and self.nproc > 1 and self.comm_pairs > 0

    @property
    def tokens_per_step(self) -> int:
        """Tokens trained per step by all ranks together (weak scaling)."""
        return self.model.micro_batch_size * self.model.seq_len * self.nproc

    def with_(self, **changes: Any) -> RunSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = dict(d)
        d["model"] = GPTConfig(**d["model"])
        if d.get("fault") is not None:
            d["fault"] = Fault(**d["fault"])
        if d.get("monitor") is not None:
            d["monitor"] = MonitorSpec.from_dict(d["monitor"])
        if d.get("slow") is not None:
            d["slow"] = Slowdown(**d["slow"])
        if d.get("link_drop") is not None:
            d["link_drop"] = LinkDrop(**d["link_drop"])
        return cls(**d)
