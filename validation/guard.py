"""Which runs a drifted profile keeps out of the headline, and the re-check of stored probes.

The pre-run probes (`validation.drift`: GEMMs and host contention; `validation.components`:
attention, memory-bound kernels, collectives) are rows with a verdict (`drifted`). A run is
left out of the error summary (its comparisons are still reported) when a probe it rests on
drifted: a GEMM or attention probe of its compute dtype, a memory-bound or copy probe (every
run), a cast probe (bf16 runs), a collective probe (runs of more than one rank on loopback);
for a component probe, only where its measured figure moves the run's predicted step by more
than `MATERIAL` (`material`).
Host-contention rows are noted, never withheld: the re-probe's few alone/busy pairs
(`drift.CONTENTION_ROUNDS`) are too noisy to gate on (on the quiet machine of 2026-12-03 the
streaming factor read 0.51 and 1.00 in two chains a few minutes apart, from one pair each,
against the profile's 0.67; docs/validation.md).

`recheck` sets a report's stored probes against another profile (`llmcap validate
--repredict`): the measurements stay what the machine ran before those runs; the profile's
figures, speeds and verdicts are recomputed, so a re-prediction on a profile that does not
match the machine of the runs is not headlined either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hwprofiles.host import HostProfile
from hwprofiles.profile import HardwareProfile
from simulator.costmodel.timing import gemm_dtype
from validation.spec import RunSpec

COMPONENTS = ("attention", "memory", "cast", "copy", "collective")


def kind(row: dict[str, Any]) -> str:
    """A probe row's kind: gemm (rows written before the field existed), contention or one
    of `COMPONENTS`."""
    return str(row.get("probe", "gemm"))


def rests_on(row: dict[str, Any], spec: RunSpec) -> bool:
    """Whether the run `spec` is priced with the figure this probe checked."""
    k = kind(row)
    if k == "contention":
        return False
    if row.get("scope") == "multi-rank loopback runs" and (
        spec.nproc < 2 or spec.link_bytes_per_s is not None
    ):
        return False
    return row["dtype"] in ("any", gemm_dtype(spec.precision))


def withheld_runs(rows: list[dict[str, Any]], specs: list[RunSpec]) -> set[str]:
    """Run ids resting on a drifted probe (module docstring)."""
    off = [r for r in rows if r.get("drifted")]
    return {s.run_id for s in specs if any(rests_on(r, s) for r in off)}


MATERIAL = 0.05
"""A drifted component withholds a run only if putting its measured figure in place moves the
run's predicted step by more than this share (`material`): a buffer copy drifted to 0.78x is
under 2 % of the tiny model's step, and withholding every run for it left the README chain
with no headline on a quiet machine (2026-12-03)."""


def material(
    rows: list[dict[str, Any]],
    specs: list[RunSpec],
    hw: HardwareProfile,
    step_time: Callable[[list[RunSpec], HardwareProfile], dict[str, float]],
) -> tuple[set[str], list[str]]:
    """The runs a drift keeps out of the headline, and one note per run it no longer does.

    A run resting on a drifted GEMM or contention row stays withheld (its figure cannot be put
    in place without measuring again); one resting only on drifted component rows is kept when
    `step_time` (run id -> predicted seconds) with those rows' measured figures in place
    (`components.replaced`) differs from the profile's by at most `MATERIAL`."""
    from validation.components import replaced

    off = withheld_runs(rows, specs)
    if not off:
        return off, []
    drifted = [r for r in rows if r.get("drifted")]
    pending = [
        s for s in specs
        if s.run_id in off and all(kind(r) in COMPONENTS for r in drifted if rests_on(r, s))
    ]  # fmt: skip
    if not pending:
        return off, []
    was = step_time(pending, hw)
    now = step_time(pending, replaced(hw, [r for r in drifted if kind(r) in COMPONENTS]))
    notes = []
    for s in pending:
        moved = now[s.run_id] / was[s.run_id] - 1.0 if was.get(s.run_id) else float("inf")
        if abs(moved) <= MATERIAL:
            off = off - {s.run_id}
            notes.append(
                f"{s.run_id} headlined although a component it rests on drifted: the measured "
                f"figure in place moves its predicted step by {moved * 100:+.1f} % "
                f"(within ±{MATERIAL * 100:.0f} %)"
            )
    return off, notes


def drifted_during(speed: list[dict[str, Any]]) -> tuple[set[str], list[str]]:
    """Runs measured while the machine ran beyond the tolerance from its calibrated speed,
    by the probe GEMMs each run times right after its steps (`compare.speed_probes`), and a
    note naming each: the pre-run probes cannot see a slow spell that starts later (on
    2026-12-03 08:00 UTC a fresh chain's 1-rank bf16 DDP step took 44 ms against 28-31 ms in
    the chains before, its probe reading 0.69x)."""
    from validation.drift import TOLERANCE

    off, notes = set(), []
    for row in speed:
        s = float(row["speed"])
        if not (1 / (1 + TOLERANCE) <= s <= 1 + TOLERANCE):
            off.add(row["run"])
            notes.append(
                f"{row['run']} not headlined: the machine ran its probe GEMMs at {s:.2f}x the "
                f"calibrated speed right after the run's steps (tolerance ±{TOLERANCE:.0%})"
            )
    return off, notes


def component_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per drifted component probe (which runs are withheld), one per component
    re-measured in place."""
    out = []
    for r in rows:
        if kind(r) not in COMPONENTS:
            continue
        who = {"any": "every run's", "bf16": "the bf16 runs'", "fp32": "the fp32 runs'"}.get(
            r["dtype"], f"the {r['dtype']} runs'"
        )
        who = f"the {r['scope']}'" if r["scope"] != "all runs" else who
        if r.get("remeasured"):
            out.append(
                f"{r['probe']} ({r['what']}) re-measured in place before the runs: the profile "
                f"had drifted ({r['speed_before']:.2f}x)"
            )
        elif r["drifted"]:
            out.append(
                f"profile drifted for {r['probe']}: {r['what']} runs at {r['speed']:.2f}x the "
                f"profile's speed (tolerance ±25%); {who} comparisons are not headlined. "
                "Recalibrate (llmcap calibrate --quick), or rerun with --remeasure-drifted"
            )
    return out


def after_replacement(hw: HardwareProfile, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The component rows once their drifted figures are in `hw` (`components.replaced`):
    repriced (speed 1.0 by construction), marked `remeasured`, with the speed before."""
    from validation.components import reprice

    out = []
    for r, new in zip(rows, reprice(hw, rows), strict=True):
        out.append(new | {"remeasured": True, "speed_before": r["speed"]} if r["drifted"] else r)
    return out


def recheck(hw: HardwareProfile, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored probe rows set against `hw` (module docstring); rows that cannot be repriced
    (no size recorded) are dropped."""
    from validation.components import reprice
    from validation.drift import TOLERANCE, gemm_price

    def verdict(speed: float) -> bool:
        return not (1 / (1 + TOLERANCE) <= speed <= 1 + TOLERANCE)

    out = []
    for r in rows:
        k = kind(r)
        if k in COMPONENTS:
            out.extend(reprice(hw, [r]))
        elif k == "gemm":
            dims = str(r.get("gemm", "")).rsplit(" ", 1)[-1].split("x")
            if len(dims) != 3 or not all(d.isdigit() for d in dims):
                continue
            m, kk, n = (int(d) for d in dims)
            price = gemm_price(hw, r["dtype"], 2.0 * m * kk * n)
            speed = price / float(r["measured_s"])
            out.append(
                {key: v for key, v in r.items() if key != "remeasured"}
                | {"profile_s": price, "speed": speed, "drifted": verdict(speed)}
            )
        elif k == "framework":  # measured before the runs, not a profile figure
            out.append(r)
        elif k == "contention":
            was = (hw.host or HostProfile()).contention_of(r["kernel"], r["dtype"])
            if was is None:
                continue
            ratio = float(r["measured"]) / was
            out.append(
                {key: v for key, v in r.items() if key != "remeasured"}
                | {"profile": was, "ratio": ratio, "drifted": verdict(ratio)}
            )
    return out


PROBE_HEADER = ["probe", "what", "measured", "profile", "speed vs profile", "verdict"]


def probe_rows(doc: dict[str, Any]) -> list[list[str]]:
    """The report's pre-run probes as table rows (component rates beside the steps)."""
    out = []
    for r in doc.get("drift", []):
        k = kind(r)
        if k == "contention":
            what, meas, prof = r["kernel"], f"{r['measured']:.2f}", f"{r['profile']:.2f}"
            speed = r["ratio"]
        else:
            what = r.get("what") or r.get("gemm", "?")
            rate = k in ("memory", "cast", "copy")
            meas, prof = (
                (f"{1 / r['measured_s'] / 1e9:.3g} GB/s", f"{1 / r['profile_s'] / 1e9:.3g} GB/s")
                if rate
                else (f"{r['measured_s'] * 1e3:.3g} ms", _ms(r["profile_s"]))
            )
            speed = r["speed"]
        state = "DRIFTED" if r["drifted"] else "re-measured" if r.get("remeasured") else "ok"
        dtype = "" if r["dtype"] == "any" or k == "contention" else f" {r['dtype']}"
        shown = "–" if speed is None else f"{speed:.2f}x"
        out.append([f"{k}{dtype}", str(what), meas, prof, shown, state])
    return out


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.3g} ms"
