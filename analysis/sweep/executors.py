"""Where the points run: in this process (`local`) or as tasks on Dask distributed (`dask`).

Both yield (point, result) pairs as points complete. On Dask each point is one task keyed by
the point's hash; the scheduler re-runs the tasks of a worker that dies (up to its
`distributed.scheduler.allowed-failures`), and a task that still cannot finish is reported
as lost (not written, so a re-run retries it) instead of stopping the sweep.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from analysis.sweep.grid import Point
from analysis.sweep.point import evaluate, make_task
from hwprofiles.errors import UserError

EXECUTORS = ("local", "dask")
WINDOW = 1000
"""Tasks kept in flight on Dask at once (bounds client and scheduler memory for big grids)."""
RESUBMITS = 2
"""Times a point whose task failed outside `evaluate` is submitted again before it is lost."""
LOST = "lost"
"""The status of a point whose task did not finish (its workers died)."""


def run_local(base: dict[str, Any], points: Sequence[Point]) -> Iterator[tuple[Point, dict]]:
    for p in points:
        yield p, evaluate(make_task(base, p))


@contextmanager
def dask_client(scheduler: str | None, workers: int | None, timeout_s: float) -> Iterator[Any]:
    """A client on `scheduler`, or on a fresh `LocalCluster` of `workers` processes."""
    try:
        from distributed import Client, LocalCluster
    except ModuleNotFoundError as exc:
        raise UserError(
            f"executor: 'dask' needs {exc.name} (rule: pip install -e '.[sweep]')"
        ) from None
    cluster = None
    if scheduler is None:
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    else:
        if workers is not None:
            raise UserError(
                f"workers: {workers} is for a LocalCluster (rule: not with --scheduler)"
            )
        try:
            client = Client(scheduler, timeout=timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserError(
                f"scheduler: {scheduler!r} cannot be reached within {timeout_s:g} s "
                f"({type(exc).__name__}; rule: the address of a running Dask scheduler, "
                "e.g. tcp://host:8786)"
            ) from None
        try:
            client.wait_for_workers(1, timeout=timeout_s)
        except (OSError, TimeoutError):
            client.close()
            raise UserError(
                f"scheduler: {scheduler!r} has no workers after {timeout_s:g} s "
                "(rule: start dask workers with llmcap installed)"
            ) from None
    try:
        if scheduler is not None:
            _check_workers(client, scheduler)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def code_fingerprint() -> str:
    """A hash of llmcap's code and data files (hwprofiles, simulator, analysis) as installed."""
    if not _FINGERPRINT:
        h = hashlib.sha256()
        for pkg in ("hwprofiles", "simulator", "analysis"):
            root = Path(importlib.import_module(pkg).__file__ or "").parent
            for f in sorted(root.rglob("*")):
                if f.suffix in (".py", ".toml", ".json", ".csv") and "__pycache__" not in f.parts:
                    h.update(str(f.relative_to(root.parent)).encode() + b"\0" + f.read_bytes())
        _FINGERPRINT.append(h.hexdigest()[:16])
    return _FINGERPRINT[0]


_FINGERPRINT: list[str] = []


def _check_workers(client: Any, scheduler: str) -> None:
    """Every worker imports this llmcap, byte for byte the same code (else results differ)."""
    try:
        seen = client.run(code_fingerprint)
    except Exception as exc:
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise UserError(
            f"scheduler: {scheduler!r}: a worker cannot run llmcap ({msg}; rule: install "
            "llmcap[sweep] on every worker)"
        ) from None
    mine = code_fingerprint()
    for worker, theirs in sorted(seen.items()):
        if theirs != mine:
            raise UserError(
                f"scheduler: worker {worker} runs other llmcap code (fingerprint {theirs} != "
                f"{mine}; rule: the same llmcap on this machine and every worker)"
            )


def run_dask(
    client: Any, base: dict[str, Any], points: Sequence[Point]
) -> Iterator[tuple[Point, dict]]:
    """Submit `points` (at most `WINDOW` in flight) and yield each with its row as it completes.

    A task whose result cannot be had (its workers died more often than the scheduler retries,
    or its data went with a worker) is submitted again under a new key, `RESUBMITS` times,
    before its point is reported lost.
    """
    from distributed import as_completed

    todo = iter(points)
    pending: dict[str, tuple[Point, int]] = {}

    def submit(p: Point, attempt: int = 0) -> Any:
        key = f"llmcap-sweep-{p.key}" + (f"-retry{attempt}" if attempt else "")
        pending[key] = (p, attempt)
        return client.submit(evaluate, make_task(base, p), key=key, pure=False)

    running = as_completed(
        [submit(p) for p, _ in zip(todo, range(WINDOW), strict=False)], with_results=False
    )
    for fut in running:
        p, attempt = pending.pop(fut.key)
        try:
            result = fut.result()
        except Exception as exc:  # KilledWorker, lost data, cancelled
            fut.release()
            if attempt < RESUBMITS:
                running.add(submit(p, attempt + 1))
                continue
            result = {"status": LOST, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        fut.release()
        nxt = next(todo, None)
        if nxt is not None:
            running.add(submit(nxt))
        yield p, result
