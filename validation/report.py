"""The validation report: one JSON document, rendered as markdown and as terminal tables.

`document` assembles everything (machine, runs, failures, comparisons, summary, method notes);
`markdown` and `tables` only render it, so the three views never disagree.
"""

from __future__ import annotations

import statistics
from typing import Any

from rich.table import Table

from simulator.costmodel.collectives import bus_factor
from simulator.result import round_sig
from validation.compare import TARGET_ABS_ERROR, Comparison
from validation.gptconfig import GPTConfig
from validation.guard import PROBE_HEADER, probe_rows
from validation.inplace import IN_RUN_HEADER, in_run_rows
from validation.launcher import Failure
from validation.linkcal import LinkFit, fits_from_rows
from validation.mapping import TCP_PAYLOAD_PER_FRAME, model_spec
from validation.measure import Measured
from validation.spec import RunSpec, format_rate
from validation.suite import Matrix, Record, SuiteResult

FORMAT = "llmcap-validation/1"
METHODS = [
    "Step time: for each timed step the slowest rank's time (a step ends when every rank is "
    "done); the run's figure is the median over the timed steps, warm-up excluded; spread is "
    "the interquartile range.",
    "Communication share is *exposed* communication over step time. DDP: interleaved pairs of "
    "the same step with and without the gradient all-reduce (`no_sync`), share = 1 - "
    "t(no_sync)/t(sync). FSDP: 1 - t(1 rank)/t(N ranks) against the 1-rank run of the same "
    "precision (the same per-rank work without collectives); this also counts anything else "
    "that slows N ranks down, and the 1-rank optimizer step updates all parameters where each "
    "FSDP rank updates 1/N.",
    "Speed-up is weak scaling: every rank trains the same micro-batch, so speed-up = "
    "N * t(1 rank)/t(N ranks) (throughput ratio). The seed formula m × k is read with m = N "
    "data-parallel replicas and k = 1 sub-model.",
    "bf16 runs use torch.autocast; DDP all-reduces fp32 gradients, FSDP gathers bf16 "
    "parameters and reduce-scatters fp32 gradients.",
    "CPU ranks run with glibc malloc keeping freed memory (GLIBC_TUNABLES mmap_threshold = "
    "32 MiB, trim_threshold = 16 GiB; validation.launcher.CPU_MALLOC_TUNABLES), as a GPU's "
    "caching allocator keeps its memory; unless the environment sets GLIBC_TUNABLES itself.",
    "Memory on CPU is a rank's peak resident set size, which includes the Python/torch "
    "runtime (about 0.3 GB); on GPU it is torch's peak allocated memory.",
    "CPU outside ranks: cores kept busy during the timed steps by anything but the ranks "
    "(machine busy time from /proc/stat minus the ranks' own CPU time, over the window): the "
    "torchrun agents, the kernel's packet processing for shaped links, and other processes. "
    "Much above zero on a loopback run means the machine was not quiet.",
    "Machine speed: after its timed steps every rank times the model's MLP up-projection GEMM "
    "(10 calls, all ranks at once) in the run's compute dtype; speed = the calibrated "
    "profile's time for that GEMM with the run's ranks busy / the measured time (1.0 = as "
    "calibrated). A step-time error that follows it is the machine's drift since the "
    "calibration, not the model's. The GEMM is one kernel: it tracks the cores' speed, not "
    "memory or network.",
    "error = predicted / measured - 1.",
]


def _run_row(rec: Any) -> dict[str, Any]:
    s = rec.spec
    row: dict[str, Any] = {
        "run": s.run_id,
        "strategy": s.strategy,
        "precision": s.precision,
        "nproc": s.nproc,
        "link_bytes_per_s": s.link_bytes_per_s,
        "status": "ok" if rec.failure is None else "failed",
        "wall_s": rec.wall_s,
    }
    if rec.failure is not None:
        f = rec.failure
        row["failure"] = {"rank": f.rank, "reason": f.reason, "others": f.others}
    if rec.measured is not None:
        row["measured"] = rec.measured.to_dict()
    if getattr(rec, "alerts", None) is not None:
        row["alerts"] = rec.alerts
    if getattr(rec, "events", None):
        row["events"] = rec.events
    return row


def document(
    matrix: Matrix,
    result: SuiteResult,
    comparisons: list[Comparison],
    summary: list[dict[str, Any]],
    *,
    diagnostics: list[dict[str, Any]] | None = None,
    speed: list[dict[str, Any]] | None = None,
    machine: dict[str, Any],
    hardware: dict[str, Any] | None,
    notes: list[str],
    command: str,
) -> dict[str, Any]:
    """The whole report as a JSON-ready dict (floats rounded to 6 significant digits)."""
    done = {r.spec.run_id for r in result.records}
    not_run = [s.run_id for s in matrix.specs() if s.run_id not in done]
    doc = {
        "format": FORMAT,
        "command": command,
        "machine": machine,
        "hardware": hardware,
        "model": matrix.model.to_dict() | {"num_params": model_spec(matrix.model).num_params()},
        "settings": {
            "steps": matrix.steps,
            "warmup": matrix.warmup,
            "comm_pairs": matrix.comm_pairs,
            "threads_per_rank": matrix.threads_per_rank,
            "seed": matrix.seed,
            "rounds": matrix.rounds,
            "device": matrix.device,
            "nprocs": list(matrix.nprocs),
            "strategies": list(matrix.strategies),
            "precisions": list(matrix.precisions),
            "links_bytes_per_s": list(matrix.links),
        },
        "runs": [_run_row(r) for r in result.records],
        "alerts": [a for r in result.records for a in (r.alerts or [])],
        "not_run": not_run,
        "interrupted": result.interrupted,
        "comparisons": [c.to_dict() for c in comparisons],
        "summary": summary,
        "diagnostics": diagnostics or [],
        "speed": speed or [],
        "link_fits": [f.to_dict() for f in result.link_fits],
        "suite_notes": list(result.notes),
        "target_abs_error": TARGET_ABS_ERROR,
        "methods": METHODS,
        "notes": notes,
    }
    return round_sig(doc)


def _refit_links(stored: list[dict[str, Any]]) -> list[LinkFit]:
    """The link fits of a report, fitted again from their stored rows (the rows are the
    measurement; the fit follows `linkcal`'s current method). Failure markers are kept."""
    out = []
    for d in stored:
        f = LinkFit.from_dict(d)
        if f.collective == "none" or len(f.rows) < 2:
            out.append(f)
            continue
        rows = [r | {"collective": f.collective, "world_size": f.world_size} for r in f.rows]
        out += fits_from_rows(rows, f.link_bytes_per_s)
    return out


def read_measurements(doc: dict[str, Any]) -> tuple[Matrix, SuiteResult]:
    """The matrix and the runs (measurements, failures) of a report document, so that its
    predictions can be redone without measuring again."""
    model = GPTConfig(**{k: v for k, v in doc["model"].items() if k != "num_params"})
    st = doc["settings"]
    matrix = Matrix(
        model,
        nprocs=tuple(st["nprocs"]),
        strategies=tuple(st["strategies"]),
        precisions=tuple(st["precisions"]),
        links=tuple(st["links_bytes_per_s"]),
        steps=st["steps"],
        warmup=st["warmup"],
        comm_pairs=st["comm_pairs"],
        device=st["device"],
        threads_per_rank=st["threads_per_rank"],
        seed=st["seed"],
        rounds=st.get("rounds", 1),
    )
    result = SuiteResult(
        interrupted=bool(doc["interrupted"]),
        link_fits=_refit_links(doc.get("link_fits", [])),
        notes=list(doc.get("suite_notes", [])),
    )
    for row in doc["runs"]:
        spec = RunSpec(
            model,
            row["strategy"],
            row["precision"],
            row["nproc"],
            steps=matrix.steps,
            warmup=matrix.warmup,
            comm_pairs=matrix.comm_pairs,
            link_bytes_per_s=row["link_bytes_per_s"],
            device=matrix.device,
            threads_per_rank=matrix.threads_per_rank,
            seed=matrix.seed,
        )
        m = Measured.from_dict(row["measured"]) if "measured" in row else None
        f = Failure(**row["failure"]) if "failure" in row else None
        rec = Record(spec, m, f, row["wall_s"], alerts=row.get("alerts"))
        rec.events = list(row.get("events", []))
        result.records.append(rec)
    return matrix, result


# ---- rendering --------------------------------------------------------------------------
def _t(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.3g} s"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:+.1f} %" if x < 0 else f"{x * 100:.1f} %"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.3g}"


def _link(bps: float | None) -> str:
    return "loopback" if bps is None else format_rate(bps)


UNSTEADY_ROUNDS = 0.2
"""A run whose round medians differ by more than this share of their median is flagged: the
machine's speed changed while the matrix ran, beyond what any prediction can follow."""


def round_spread(medians: list[float] | tuple[float, ...]) -> float:
    """(max - min) / median of a run's per-round medians (dimensionless)."""
    return (max(medians) - min(medians)) / statistics.median(medians)


def run_rows(doc: dict[str, Any]) -> list[list[str]]:
    """Measured figures per run, as display strings."""
    rows = []
    for r in doc["runs"]:
        m = r.get("measured")
        if m is None:
            reason = r["failure"]["reason"] if "failure" in r else "no measurement"
            head = [r["run"], str(r["nproc"]), _link(r["link_bytes_per_s"]), f"FAILED: {reason}"]
            rows.append(head + [""] * (len(RUN_HEADER) - len(head)))
            continue
        st = m["step"]
        rounds = m.get("round_medians_s") or []
        per_round = "–"
        if rounds:
            spread = round_spread(rounds)
            flag = " **unsteady**" if spread > UNSTEADY_ROUNDS else ""
            per_round = ", ".join(_t(x) for x in rounds) + f" (±{spread / 2:.0%}){flag}"
        comm = _pct(m["comm_fraction"]) + (f" ({m['comm_method']})" if m["comm_method"] else "")
        energy = _num(m["energy_per_step_j"]) + " J" if m["energy_per_step_j"] else "not measured"
        rows.append(
            [
                r["run"],
                str(r["nproc"]),
                _link(r["link_bytes_per_s"]),
                f"{_t(st['median_s'])} [{_t(st['q1_s'])}, {_t(st['q3_s'])}]",
                per_round,
                f"{m['tokens_per_s']:.0f}",
                comm,
                f"{m['peak_memory_bytes'] / 2**30:.2f} GiB",
                energy,
                _num(m["other_load_cores"]),
                f"{m['loss_first']:.3f} → {m['loss_last']:.3f}",
            ]
        )
    return rows


RUN_HEADER = [
    "run",
    "ranks",
    "link",
    "step time median [IQR]",
    "round medians",
    "tokens/s",
    "comm share (method)",
    "peak memory",
    "energy/step",
    "CPU outside ranks (cores)",
    "loss",
]
CMP_HEADER = ["metric", "run", "baseline", "engine", "measured", "predicted", "error"]
SUM_HEADER = ["metric", "engine", "scope", "n", "median abs. error", "max abs. error", "≤ 10 %?"]


def _fmt_metric(metric: str, x: float) -> str:
    if metric == "step_time_s":
        return _t(x)
    if metric == "comm_fraction":
        return _pct(x)
    return f"{x:.3f}"


def comparison_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [
        [
            c["metric"],
            c["run"],
            c.get("baseline") or "",
            c["engine"],
            _fmt_metric(c["metric"], c["measured"]),
            _fmt_metric(c["metric"], c["predicted"]),
            _pct(c["error"]),
        ]
        for c in doc["comparisons"]
    ]


def summary_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [
        [
            s["metric"],
            s["engine"],
            s["scope"],
            str(s["count"]),
            _pct(s["median_abs_error"]),
            _pct(s["max_abs_error"]),
            "yes" if s["meets_target"] else "no",
        ]
        for s in doc["summary"]
    ]


LINK_HEADER = ["link", "collective", "ranks", "α", "β → bandwidth", "nominal", "fit rel. RMS"]


def link_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for f in doc.get("link_fits", []):
        if f["collective"] == "none":
            continue
        rate = f["link_bytes_per_s"]
        bw = bus_factor(f["collective"], f["world_size"]) / f["beta_s_per_byte"]
        rows.append(
            [
                _link(rate),
                f["collective"],
                str(f["world_size"]),
                _t(f["alpha_s"]),
                f"{bw / 1e6:.1f} MB/s (bus)" if f["beta_s_per_byte"] > 0 else "–",
                f"{rate * TCP_PAYLOAD_PER_FRAME / 1e6:.1f} MB/s (payload)",
                f"{f['rel_rms']:.1%}",
            ]
        )
    return rows


SPEED_HEADER = [
    "run",
    "probe GEMM measured",
    "calibration's figure",
    "speed vs calibration",
    "per round",
]


def speed_rows(doc: dict[str, Any]) -> list[list[str]]:
    return [
        [
            s["run"],
            _t(s["measured_s"]),
            _t(s["predicted_s"]),
            f"{s['speed']:.2f}x",
            ", ".join(f"{x:.2f}x" for x in s["speed_by_round"]) or "–",
        ]
        for s in doc.get("speed", [])
    ]


DIAG_HEADER = [
    "run",
    "contention (no_sync step / 1-rank step)",
    "exposed comm measured",
    "exposed comm predicted",
]


def diagnostic_rows(doc: dict[str, Any]) -> list[list[str]]:
    rows = []
    for d in doc.get("diagnostics", []):
        pred = ", ".join(f"{_t(v)} ({e})" for e, v in d["predicted_exposed_comm_s"].items())
        rows.append(
            [
                d["run"],
                _num(d["contention"]) + "×" if d["contention"] else "–",
                _t(d["exposed_comm_s"]),
                pred or "–",
            ]
        )
    return rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _facts(doc: dict[str, Any]) -> list[str]:
    """The setup in a few bullet lines."""
    mc, hw, model, st = doc["machine"], doc["hardware"], doc["model"], doc["settings"]
    gpu = f", {mc['gpu_name']}" if "gpu_name" in mc else ""
    pred = "none (no hardware profile)"
    if hw:
        pred = f"profile `{hw['name']}` ({hw['kind']}{', ' + hw['date'] if hw['date'] else ''})"
    return [
        f"machine: {mc.get('cpu_model', '?')}, {mc.get('cpu_cores', '?')} cores{gpu}",
        f"torch {mc.get('torch', '?')}; {st['threads_per_rank']} thread(s) per rank; load "
        f"average (1 min) {mc.get('load_average_1m', '?')} before, "
        f"{mc.get('load_average_1m_end', '?')} after",
        f"model `{model['name']}`: {model['num_params']:,} parameters, "
        f"{model['num_hidden_layers']} layers, hidden {model['hidden_size']}, "
        f"{model['num_attention_heads']} heads, vocab {model['vocab_size']}, sequence "
        f"{model['seq_len']}, micro-batch {model['micro_batch_size']} per rank",
        f"steps: {st['warmup']} warm-up + {st['steps']} timed (+ {st['comm_pairs']} "
        "sync/no_sync pairs for DDP)"
        + (
            f" per run, in each of {st['rounds']} rounds over the whole matrix (steps pooled)"
            if st.get("rounds", 1) > 1
            else ""
        ),
        f"predictions: {pred}",
        *_steadiness(doc),
    ]


def _steadiness(doc: dict[str, Any]) -> list[str]:
    """One line on how many runs changed speed between rounds (none without rounds)."""
    spreads = [
        round_spread(m["round_medians_s"])
        for r in doc["runs"]
        if (m := r.get("measured")) and m.get("round_medians_s")
    ]
    if not spreads:
        return []
    unsteady = sum(s > UNSTEADY_ROUNDS for s in spreads)
    return [
        f"steadiness: {unsteady} of {len(spreads)} runs have round medians more than "
        f"{UNSTEADY_ROUNDS:.0%} apart (the machine's speed changed during the validation)"
    ]


def title_of(doc: dict[str, Any]) -> str:
    """ "Results on <device>, <date>" from the machine description."""
    mc = doc["machine"]
    what = mc.get("gpu_name") or f"{mc.get('cpu_model', '?')} ({mc.get('cpu_cores', '?')} cores)"
    return f"Results on {what}, {str(mc.get('date', '?'))[:10]}"


def markdown(doc: dict[str, Any], title: str | None = None) -> str:
    """The report as markdown: setup, measured runs, failures, summary, comparisons, method."""
    title = title or title_of(doc)
    out = [
        f"## {title}",
        "",
        f"Generated by `{doc['command']}` on {doc['machine'].get('date', '?')}.",
        "",
    ]
    out += [f"- {f}" for f in _facts(doc)]
    out += ["", "### Measured", "", _md_table(RUN_HEADER, run_rows(doc))]
    failed = [r for r in doc["runs"] if "failure" in r]
    if failed or doc["not_run"]:
        out += ["", "### Failures", ""]
        for r in failed:
            f = r["failure"]
            then = "".join(f"; then {o}" for o in f["others"])
            out.append(f"- `{r['run']}`: {f['reason']}{then}")
        if doc["not_run"]:
            out.append(f"- not run (interrupted): {', '.join(doc['not_run'])}")
    if any("alerts" in r for r in doc["runs"]):
        alerts = doc.get("alerts", [])
        out += ["", "### Monitor alerts", ""]
        if not alerts:
            out.append("None fired (thresholds: `llmcap validate --help`, `--alert`).")
        for a in alerts:
            out.append(
                f"- `{a['run']}` rank {a['rank']}: **{a['metric']}** steps {a['first_step']}-"
                f"{a['last_step']}, measured {a['measured']:.4g} vs {a['predicted']:.4g} "
                f"(threshold {a['threshold']:g})"
            )
    if doc["summary"]:
        target = f"{doc['target_abs_error'] * 100:.0f} %"
        out += ["", f"### Error summary (target: median absolute error ≤ {target})", ""]
        out.append(_md_table(SUM_HEADER, summary_rows(doc)))
    if doc.get("diagnostics"):
        out += ["", "### Where the error comes from (DDP, more than one rank)", ""]
        out.append(_md_table(DIAG_HEADER, diagnostic_rows(doc)))
    if link_rows(doc):
        out += ["", "### Collectives measured through the rate-limited links", ""]
        out.append(_md_table(LINK_HEADER, link_rows(doc)))
    if doc.get("drift"):
        out += ["", "### Component rates re-probed before the runs (vs the profile)", ""]
        out.append(_md_table(PROBE_HEADER, probe_rows(doc)))
    if doc.get("in_run"):
        out += ["", "### In-run component rates (between the steps; the prediction's rates)", ""]
        out.append(_md_table(IN_RUN_HEADER, in_run_rows(doc)))
    if doc.get("speed"):
        out += ["", "### Machine speed during each run (probe GEMM vs calibration)", ""]
        out.append(_md_table(SPEED_HEADER, speed_rows(doc)))
    if doc["comparisons"]:
        out += ["", "### Measured vs predicted", ""]
        out.append(_md_table(CMP_HEADER, comparison_rows(doc)))
    out += ["", "### Method", ""] + [f"- {m}" for m in doc["methods"]]
    if doc["notes"]:
        out += ["", "### Notes", ""] + [f"- {n}" for n in doc["notes"]]
    return "\n".join(out) + "\n"


def _sections(doc: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    return [
        ("measured", RUN_HEADER, run_rows(doc)),
        ("error summary", SUM_HEADER, summary_rows(doc)),
        ("where the error comes from", DIAG_HEADER, diagnostic_rows(doc)),
        ("component rates before the runs", PROBE_HEADER, probe_rows(doc)),
        ("in-run component rates", IN_RUN_HEADER, in_run_rows(doc)),
        ("machine speed vs calibration", SPEED_HEADER, speed_rows(doc)),
        ("collectives through the links", LINK_HEADER, link_rows(doc)),
        ("measured vs predicted", CMP_HEADER, comparison_rows(doc)),
    ]


# Columns the terminal drops first when a table is wider than the terminal (report.md and
# --json keep them all); the others go from the right.
_LEAST = ("round medians", "CPU outside ranks (cores)", "energy/step", "loss", "per round")
_MOST = {  # columns kept longest (higher stays); the rest go from the right
    "run": 100,
    "metric": 100,
    "step time median [IQR]": 90,
    "error": 90,
    "≤ 10 %?": 90,
    "engine": 80,
    "measured": 75,
    "predicted": 80,
    "speed vs calibration": 80,
    "exposed comm measured": 70,
    "exposed comm predicted": 70,
    "scope": 60,
    "median abs. error": 60,
}


def fitted_tables(doc: dict[str, Any], console: Any) -> list[tuple[Table, list[str]]]:
    """The tables for a terminal of `console`'s width, each with the headers left out to fit
    (numbers are never cut: see `analysis.report.fit`)."""
    from analysis.report.fit import Col, fit_table

    out = []
    for title, header, rows in _sections(doc):
        if not rows:
            continue
        cols = [
            Col(
                h.replace(" (", "\n(")
                .replace("median abs.", "median\nabs.")
                .replace(
                    "max abs.", "max\nabs."
                ),  # headers on two lines: the numbers below them are narrower
                "left" if i == 0 else "right",
                -100 if h in _LEAST else _MOST.get(h, -i),
            )
            for i, h in enumerate(header)
        ]
        out.append(fit_table(cols, rows, console, title=title))
    return out


def tables(doc: dict[str, Any]) -> list[Table]:
    """The same content as rich tables for the terminal."""
    out = []
    for title, header, rows in _sections(doc):
        if not rows:
            continue
        t = Table(title=title)
        for h in header:
            t.add_column(h)
        for row in rows:
            t.add_row(*row)
        out.append(t)
    return out
