"""A simulated step as a Chrome trace (JSON), which Perfetto and chrome://tracing open.

Format: the Trace Event Format ("traceEvents" list; "X" complete events with microsecond
`ts`/`dur`, "M" metadata naming processes and threads, "C" counters). One process per
simulated device (pipeline rank), one thread per stream, a power counter per device.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwprofiles.outputs import write_atomic
from simulator.des.engine import Row

STREAM_ORDER = ("compute", "tp", "cp", "pp", "dp", "zero3 gather", "zero3 reduce")


def chrome_trace(
    rows: Sequence[Row],
    labels: Mapping[int, str],
    power_logs: Mapping[int, list[tuple[float, float]]] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The trace as a JSON-ready dict; `labels` names each rank's process."""
    tids = {s: i for i, s in enumerate(STREAM_ORDER)}
    events: list[dict[str, Any]] = []
    for rank, label in sorted(labels.items()):
        events.append(
            {"name": "process_name", "ph": "M", "pid": rank, "tid": 0, "args": {"name": label}}
        )
        events.append(
            {
                "name": "process_sort_index",
                "ph": "M",
                "pid": rank,
                "tid": 0,
                "args": {"sort_index": rank},
            }
        )
    seen: set[tuple[int, str]] = set()
    for r in rows:
        tid = tids.setdefault(r.stream, len(tids))
        if (r.rank, r.stream) not in seen:
            seen.add((r.rank, r.stream))
            events.append(
                {
                    "name": "thread_name",
                    "ph": "M",
                    "pid": r.rank,
                    "tid": tid,
                    "args": {"name": r.stream},
                }
            )
        events.append(
            {
                "name": r.name,
                "cat": r.category,
                "ph": "X",
                "pid": r.rank,
                "tid": tid,
                "ts": round(r.start * 1e6, 3),
                "dur": round((r.end - r.start) * 1e6, 3),
                "args": {"microbatch": r.mb, "layer": r.layer},
            }
        )
    for rank, log in sorted((power_logs or {}).items()):
        for t, w in log:
            events.append(
                {"name": "power", "ph": "C", "pid": rank, "ts": round(t * 1e6, 3), "args": {"W": w}}
            )
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": dict(metadata or {})}


def write_trace(path: str | os.PathLike[str], trace: Mapping[str, Any]) -> Path:
    """Write `trace` atomically (`hwprofiles.outputs.write_atomic`)."""
    text = json.dumps(trace, separators=(",", ":"), allow_nan=False)  # C encoder: fast
    return write_atomic(path, text)
