"""Per-run errors of a `llmcap validate` report (analytic engine), for issue 21's table:
step time per run and its median, the bf16/fp32 time ratio per strategy and ranks and its
median, and what the report headlined.

    python benchmarks/chain_errors.py DIR/report.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(path: str) -> int:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = [c for c in doc["comparisons"] if c["engine"] == "analytic"]
    for metric in ("step_time_s", "bf16_fp32_time_ratio"):
        got = sorted((c for c in rows if c["metric"] == metric), key=lambda c: c["run"])
        if not got:
            continue
        cells = ", ".join(f"{c['run']} {c['error'] * 100:+.1f} %" for c in got)
        med = statistics.median(abs(c["error"]) for c in got) * 100
        print(f"{metric}: {cells}; median {med:.1f} %")
    in_run = sorted(doc.get("in_run", []), key=lambda r: r["run"])
    if in_run:  # the headline above is in place; what the calibration's rates alone gave:
        errs = [r["predicted_as_calibrated_s"] / r["measured_step_s"] - 1 for r in in_run]
        cells = ", ".join(f"{r['run']} {e * 100:+.1f} %" for r, e in zip(in_run, errs, strict=True))
        med = statistics.median(abs(e) for e in errs) * 100
        print(f"step_time_s as calibrated: {cells}; median {med:.1f} %")

        def ratio(r: dict, k: str) -> str:
            now, before = r[f"{k}_measured_s"], r[f"{k}_before_s"]
            return f"{now / before:.2f}" if now and before else "-"

        rates = ", ".join(
            f"{r['run']} {r['gemm_speed']:.2f}/{ratio(r, 'pass')}/{ratio(r, 'optimizer')}"
            for r in in_run
        )
        print(f"in-run GEMM speed / pass, optimizer over before the runs: {rates}")
        colls = ", ".join(
            f"{r['run']} {c['collective']} {c['measured_s'] / c['profile_s']:.2f}"
            for r in in_run
            for c in r.get("collectives", [])
        )
        print(f"in-run collectives over the profile's: {colls or '-'}")
    head = [s for s in doc["summary"] if s["engine"] == "analytic"]
    held = ", ".join(
        f"{s['metric']} {s['count']} runs {s['median_abs_error'] * 100:.1f} %" for s in head
    )
    print(f"headlined: {held or 'none (drift flagged)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
