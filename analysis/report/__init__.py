"""Plan reports: markdown and self-contained HTML with figures, plus CSV/JSON of every candidate.

`render_reports` builds every file in memory; `write_reports` then writes each atomically, so
a failure while rendering leaves nothing half-written. The report's date is today (UTC) unless
`SOURCE_DATE_EPOCH` is set (the reproducible-builds convention), so identical inputs can give
byte-identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from pathlib import Path

from analysis.cli.common import dumps, staged_dir, write_atomic
from analysis.planner.result import PlanResult
from analysis.report import content, html, markdown
from analysis.report.figures import render_all
from hwprofiles.errors import UserError

FILES = {
    "report.md": "this report (markdown; figures in figures/)",
    "report.html": "this report, self-contained (figures embedded)",
    "candidates.csv": "one row per candidate (hardware, GPUs, precision), feasible or not",
    "plan.json": "everything: inputs, candidates with their best layouts and full step results",
}


def report_date() -> str:
    """ISO date: from SOURCE_DATE_EPOCH when set, else today (UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            when = dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc)
        except ValueError:
            raise UserError(f"SOURCE_DATE_EPOCH: {epoch!r} must be an integer") from None
    else:
        when = dt.datetime.now(tz=dt.timezone.utc)
    return when.date().isoformat()


def candidates_csv(result: PlanResult) -> str:
    """Every candidate's flat row (`Candidate.row`), one per line."""
    rows = result.rows()
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def render_reports(result: PlanResult, date: str | None = None) -> dict[str, bytes]:
    """Every output file, by path relative to the output folder."""
    date = date or report_date()
    pngs = render_all(result)
    fig_paths = {name: f"figures/{name}.png" for name in pngs}
    blocks = content.build(result, date, FILES)
    doc = result.to_dict() | {"date": date}
    out = {
        "report.md": markdown.render(blocks, fig_paths).encode(),
        "report.html": html.render(blocks, pngs).encode(),
        "candidates.csv": candidates_csv(result).encode(),
        "plan.json": dumps(doc).encode(),
    }
    out |= {fig_paths[name]: data for name, data in pngs.items()}
    return out


def write_reports(result: PlanResult, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Render everything, then write the folder `out_dir` atomically (`staged_dir`)."""
    files = render_reports(result)
    with staged_dir(out_dir, "--out") as tmp:
        for rel, data in sorted(files.items()):
            write_atomic(tmp / rel, data)
    return [Path(out_dir) / rel for rel in sorted(files)]
