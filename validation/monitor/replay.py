"""Replay a finished validation's monitor logs: a timeline per run (measured step time per
rank against the prediction and its alert band, alerts shaded) and a summary table.

``llmcap monitor REPORT_DIR`` reads ``REPORT_DIR/runs/<run>/[round<k>/]monitor/rank<R>.jsonl``.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from hwprofiles.errors import UserError
from hwprofiles.inputs import read_json
from validation.monitor.rank import LOG_DIR
from validation.monitor.stepmon import read_log


def find_logs(report_dir: Path) -> dict[str, dict[int, Path]]:
    """{run directory name (with its round): {rank: log path}} under `report_dir`."""
    root = Path(report_dir)
    if not root.is_dir():
        raise UserError("REPORT_DIR", str(report_dir), "is not a directory")
    out: dict[str, dict[int, Path]] = {}
    for log in sorted(root.glob(f"**/{LOG_DIR}/rank*.jsonl")):
        run_dir = log.parent.parent
        name = str(run_dir.relative_to(root / "runs") if (root / "runs") in run_dir.parents
                   else run_dir.relative_to(root))  # fmt: skip
        out.setdefault(name, {})[int(log.stem.removeprefix("rank"))] = log
    if not out:
        rule = f"holds no monitor logs ({LOG_DIR}/rank*.jsonl); run llmcap validate"
        raise UserError("REPORT_DIR", str(report_dir), rule)
    return out


def load(report_dir: Path) -> dict[str, dict[str, Any]]:
    """Per run: its steps per rank, its alerts, and its prediction."""
    runs: dict[str, dict[str, Any]] = {}
    for name, ranks in find_logs(report_dir).items():
        steps: dict[int, list[dict[str, Any]]] = {}
        alerts: list[dict[str, Any]] = []
        predicted = None
        for rank, path in sorted(ranks.items()):
            recs = read_log(path)
            steps[rank] = [r for r in recs if r.get("type") == "step"]
            alerts += [r for r in recs if r.get("type") == "alert"]
            predicted = predicted or next(
                (r["predicted_step_time_s"] for r in steps[rank] if r["predicted_step_time_s"]),
                None,
            )
        report = Path(next(iter(ranks.values()))).parent.parent / "report.json"
        if report.is_file():  # the launcher's list adds the cross-rank alerts
            alerts = read_json(report, "REPORT_DIR").get("alerts", alerts)
        runs[name] = {"steps": steps, "alerts": alerts, "predicted": predicted}
    return runs


def summary_rows(runs: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, r in runs.items():
        times = [s["step_time_s"] for v in r["steps"].values() for s in v if s["phase"] == "timed"]
        med = statistics.median(times) if times else None
        pred = r["predicted"]
        rows.append([
            name,
            str(len(r["steps"])),
            f"{med * 1e3:.1f}" if med else "-",
            f"{pred * 1e3:.1f}" if pred else "-",
            f"{(med / pred - 1) * 100:+.0f}%" if med and pred else "-",
            ", ".join(sorted({f"{a['metric']}@r{a['rank']}" for a in r["alerts"]})) or "none",
        ])  # fmt: skip
    return rows


def plot(runs: dict[str, dict[str, Any]], out: Path, step_time_rel: float = 0.15) -> Path:
    """Two panels per run: step time per rank with the prediction and the band it may
    reach before the step-time alert (+`step_time_rel`), and each rank's local compute
    (`compute_s`, what the straggler rule compares); alerts shaded over their step range.
    Written atomically (PNG)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwprofiles.outputs import write_atomic

    n = len(runs)
    fig, axes = plt.subplots(2 * n, 1, figsize=(10, 4.6 * n), squeeze=False, sharex=False)
    for i, (name, r) in enumerate(runs.items()):
        top, low = axes[2 * i, 0], axes[2 * i + 1, 0]
        for rank, steps in sorted(r["steps"].items()):
            xs = [s["step"] for s in steps]
            top.plot(xs, [s["step_time_s"] * 1e3 for s in steps], marker=".", lw=1,
                     label=f"rank {rank}")  # fmt: skip
            comp = [(s["step"], s["compute_s"] * 1e3) for s in steps if s.get("compute_s")]
            low.plot([c[0] for c in comp], [c[1] for c in comp], marker=".", lw=1,
                     label=f"rank {rank}")  # fmt: skip
        if r["predicted"]:
            p = r["predicted"] * 1e3
            top.axhline(p, color="k", lw=1, ls="--", label="predicted")
            band = f"tolerated (up to +{step_time_rel:.0%})"
            top.axhspan(p, p * (1 + step_time_rel), color="0.85", label=band)
        for ax in (top, low):
            for a in r["alerts"]:
                ax.axvspan(a["first_step"] - 0.5, a["last_step"] + 0.5, color="tab:red",
                           alpha=0.12)  # fmt: skip
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        for a in r["alerts"]:
            top.text(a["first_step"], top.get_ylim()[1] * 0.97, f"{a['metric']} (rank {a['rank']})",
                     color="tab:red", fontsize=8, va="top")  # fmt: skip
        top.set_title(f"{name}: step time", fontsize=10)
        top.set_ylabel("step time (ms)")
        low.set_title("local compute of the forward pass (straggler rule)", fontsize=9)
        low.set_ylabel("compute (ms)")
        low.set_xlabel("step (warm-up included)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_atomic(out, buf.getvalue())
    return out
