"""Cross-rank checks while a run goes on, done by the launcher from the ranks' logs.

Per-rank rules (step time, power, memory against the prediction) run inside each rank
(`StepMonitor`); the launcher reads their ``monitor/rank<R>.jsonl`` as they grow and adds
what no single rank can see: a rank whose local compute is slower than the others'
(straggler) and a rank that stopped making progress (hang). It also applies an injected
mid-run link drop. Every alert reaches `on_alert` once, when it opens.
"""

from __future__ import annotations

import bisect
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from validation.monitor.config import LinkDrop
from validation.monitor.rank import log_path
from validation.monitor.rules import Alert, straggler_ranks
from validation.monitor.thresholds import Thresholds


class LiveWatch:
    """Reads the logs of `nranks` ranks under `run_dir` and raises cross-rank alerts."""

    def __init__(
        self,
        run: str,
        run_dir: Path,
        nranks: int,
        thresholds: Thresholds,
        predicted_step_s: float | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        link_drop: LinkDrop | None = None,
        set_rate: Callable[[float], None] | None = None,
    ) -> None:
        self.run, self.run_dir, self.nranks, self.t = run, run_dir, nranks, thresholds
        self.predicted_step_s = predicted_step_s
        self.on_alert = on_alert
        self.link_drop, self.set_rate = link_drop, set_rate
        self.offsets = [0] * nranks
        self.forward: dict[int, list[float]] = {r: [] for r in range(nranks)}
        self.forward_steps: dict[int, list[int]] = {r: [] for r in range(nranks)}
        self.judged = -1  # the last step the straggler rule was evaluated at
        self.last_step: dict[int, int] = {}
        self.alerts: list[Alert] = []
        self.open_straggler: dict[int, Alert] = {}
        self.hung: set[int] = set()
        self.events: list[dict[str, Any]] = []
        self.dropped = False

    def _read(self, rank: int) -> list[dict[str, Any]]:
        path = log_path(self.run_dir, rank)
        try:
            with open(path, encoding="utf-8") as fh:
                fh.seek(self.offsets[rank])
                chunk = fh.read()
        except OSError:
            return []
        complete = chunk[: chunk.rfind("\n") + 1]  # a line still being written waits
        self.offsets[rank] += len(complete.encode("utf-8"))
        out = []
        for line in complete.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def _fire(self, alert: Alert) -> None:
        self.alerts.append(alert)
        if self.on_alert is not None:
            self.on_alert(alert)

    def poll(self, progress: dict[int, tuple[int, int]], stalled_s: float) -> None:
        """Read what the ranks wrote since the last poll; `progress`: each rank's
        (phase, step) from its progress file; `stalled_s`: time since any rank moved."""
        for r in range(self.nranks):
            for rec in self._read(r):
                if rec.get("type") == "alert":
                    fields = {k: rec[k] for k in Alert.__dataclass_fields__}
                    self._fire(Alert(**fields))
                elif rec.get("type") == "step":
                    self.last_step[r] = int(rec["step"])
                    if rec.get("compute_s") is not None:
                        self.forward[r].append(float(rec["compute_s"]))
                        self.forward_steps[r].append(int(rec["step"]))
        self._stragglers()
        self._hang(progress, stalled_s)
        self._link(progress)

    def _stragglers(self) -> None:
        """Judge every step all ranks have logged, in step order, so an alert opens at the
        same step however often (or late) the logs are polled."""
        if any(not v for v in self.forward_steps.values()):
            return
        common = min(v[-1] for v in self.forward_steps.values())
        for step in range(self.judged + 1, common + 1):
            upto = {
                r: self.forward[r][: bisect.bisect_right(self.forward_steps[r], step)]
                for r in self.forward
            }
            self._judge(step, upto)
        self.judged = max(self.judged, common)

    def _judge(self, step: int, upto: dict[int, list[float]]) -> None:
        w = self.t.window
        slow = set(straggler_ranks(upto, self.t.straggler, w))
        for r in list(self.open_straggler):
            if r not in slow:
                del self.open_straggler[r]
        for r in slow:
            if r in self.open_straggler:
                self.open_straggler[r].last_step = step
                continue
            mine = statistics.median(upto[r][-w:])
            typical = statistics.median(
                statistics.median(v[-w:]) for q, v in upto.items() if q != r and len(v) >= w
            )
            alert = Alert(self.run, "straggler", r, step - w + 1, step, mine, typical,
                          self.t.straggler)  # fmt: skip
            self.open_straggler[r] = alert
            self._fire(alert)

    def _hang(self, progress: dict[int, tuple[int, int]], stalled_s: float) -> None:
        if stalled_s < self.t.hang_s or len(progress) < self.nranks:
            return
        behind = min(progress.values())
        for r, pos in sorted(progress.items()):
            if pos == behind and r not in self.hung:
                self.hung.add(r)
                self._fire(Alert(self.run, "hang", r, pos[1], pos[1], stalled_s,
                                 self.predicted_step_s or 0.0, self.t.hang_s))  # fmt: skip

    def _link(self, progress: dict[int, tuple[int, int]]) -> None:
        d = self.link_drop
        if d is None or self.dropped or self.set_rate is None or not progress:
            return
        now = max(step for _, step in progress.values())
        if now >= d.step:
            self.set_rate(d.bytes_per_s)
            self.dropped = True
            # `applied_at_step`: where the ranks really were (the launcher polls, so a fast
            # run can be a few steps past the step asked for); alerts are judged from it
            self.events.append({"event": "link_drop", "bytes_per_s": d.bytes_per_s,
                                "step": d.step, "applied_at_step": now})  # fmt: skip
