"""From measured tables to the profile summary (the content of profile.toml).

The summary holds what the models need without reading the CSVs: measured peaks per dtype,
fitted and sampled efficiency curves, memory bandwidth, α-β fits per collective and world
size, the scale-up link derived from them, power (measured or modelled), and noise flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hwprofiles.calibration.collectives import bus_factor
from hwprofiles.calibration.fit import fit_alpha_beta, fit_efficiency
from hwprofiles.calibration.framework import host_overheads
from hwprofiles.calibration.power import DevicePower
from hwprofiles.calibration.store import FORMAT
from hwprofiles.calibration.timing import NOISY_SPREAD
from hwprofiles.catalogue import list_links
from hwprofiles.profile import Link

SIG_DIGITS = 6  # measurements are noisier than 1e-6; keeps profile.toml readable
TRAINING_DTYPES = ("bf16", "fp16", "tf32", "fp32")
"""Preference order for the profile's default matmul and attention curves."""
PLACEHOLDER_SCALE_OUT = "ethernet-10"
"""Catalogue link (hwprofiles/data/links.toml) standing in for the NICs of one calibrated
machine, which calibration does not measure: one 10 GbE port through TCP."""
PLACEHOLDER_SCALE_UP = "shm"
"""Catalogue link whose latency and efficiency stand in for the ranks' shared-memory link when
no collective at world size >= 2 was measured (the bandwidth is the measured copy rate)."""
FILES = {
    "gemm": "compute/gemm.csv",
    "attention": "compute/attention.csv",
    "attention_passes": "compute/attention_passes.csv",
    "elementwise": "compute/elementwise.csv",
    "memory": "compute/memory.csv",
    "collectives": "network/collectives.csv",
    "collectives_met": "network/collectives_met.csv",
    "contention": "compute/contention.csv",
    "framework": "compute/framework.csv",
    "power": "power.csv",
}


@dataclass
class Measurements:
    """Everything one calibration measured, as tidy rows per table, plus context."""

    name: str
    level: str
    device: str
    dtypes: tuple[str, ...]
    world_sizes: tuple[int, ...]
    threads_per_rank: int
    ranks_per_node: int
    memory_bytes: float
    machine: dict[str, str]
    power: DevicePower
    power_note: str
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stability: dict[str, Any] = field(default_factory=dict)
    """`workload.measure_workloads`' record plus the load averages at start and end."""


def _curve(sizes: pd.Series, fractions: pd.Series, what: str) -> dict[str, Any]:
    fit = fit_efficiency(sizes.tolist(), fractions.tolist())
    s, f = fit.sample()
    return {
        "max_fraction": fit.max_fraction,
        "half_size": fit.half_size,
        "exponent": fit.exponent,
        "rel_rms": fit.rel_rms,
        "min_size": fit.min_size,
        "max_size": fit.max_size,
        "sizes": list(s),
        "fractions": list(f),
        "source": f"calibrated: Hill fit to {what} (f = f_max / (1 + (s_half/s)^p))",
    }


def _compute(m: Measurements) -> dict[str, Any]:
    gemm = pd.DataFrame(m.tables["gemm"])
    peaks: dict[str, float] = {}
    at: dict[str, str] = {}
    curves: dict[str, Any] = {}
    for dtype, g in gemm.groupby("dtype", sort=False):
        best = g.loc[g["flops_per_s"].idxmax()]
        peaks[str(dtype)] = float(best["flops_per_s"])
        dims = f"m={best['m']} n={best['n']} k={best['k']}"
        at[str(dtype)] = f"{best['name']} {best['pass']} ({dims})"
        frac = (g["flops_per_s"] / peaks[str(dtype)]).clip(upper=1.0)
        curves[str(dtype)] = _curve(g["flops"], frac, f"compute/gemm.csv {dtype} FLOP/s / peak")
    default = next(d for d in (*TRAINING_DTYPES, *peaks) if d in peaks)
    out: dict[str, Any] = {
        "peak_flops": peaks,
        "peak_source": "calibrated: best measured GEMM FLOP/s per dtype (the measured peak)",
        "peak_at": at,
        "default_dtype": default,
        "matmul_efficiency": curves,
    }
    att = pd.DataFrame(m.tables["attention"])
    nc = att[~att["causal"].astype(bool)]
    if "pass" in nc and (nc["pass"] == "fwd+bwd").any():
        nc = nc[nc["pass"] == "fwd+bwd"]  # what a training step runs
    what = "training (fwd+bwd)" if "pass" in att and (att["pass"] == "fwd+bwd").any() else "fwd"
    by_dtype: dict[str, Any] = {}
    for dt, a in nc.groupby("dtype", sort=False):
        if dt not in peaks:
            continue
        frac = (a["flops_per_s"] / peaks[dt]).clip(upper=1.0)
        by_dtype[str(dt)] = {
            "best_flops_per_s": float(a["flops_per_s"].max()),
            "efficiency": _curve(a["flops"], frac, f"non-causal SDPA {what} {dt} / {dt} peak"),
        }
    adt = next((d for d in (*TRAINING_DTYPES, *peaks) if d in by_dtype), None)
    if adt is not None:
        out["attention"] = {"dtype": adt, **by_dtype[adt]}
        out["attention_by_dtype"] = by_dtype
    passes = m.tables.get("attention_passes", [])
    if passes:
        out["attention_shapes"] = [
            {k: r[k] for k in ("dtype", "batch", "heads", "seq", "head_dim", "causal")}
            | {"fwd_s": float(r["fwd_s"]), "bwd_s": float(r["bwd_s"])}
            for r in passes
        ]
    layers = gemm_layers(gemm)
    if layers:
        out["gemm_layers"] = layers
    ew = pd.DataFrame(m.tables["elementwise"])
    if not ew.empty:
        largest = ew[ew["bytes"] == ew.groupby(["op", "dtype"])["bytes"].transform("max")]
        out["elementwise_bytes_per_s"] = {
            str(d): {str(r["op"]): float(r["bytes_per_s"]) for _, r in g.iterrows()}
            for d, g in largest.groupby("dtype", sort=False)
        }
    return out


def gemm_layers(gemm: pd.DataFrame) -> list[dict[str, Any]]:
    """Per dtype and FLOP count, the workload layers' measured forward GEMM and backward
    (dX + dW) seconds; layers of equal FLOPs averaged (`profile.GemmTiming`)."""
    if "kind" not in gemm or not (gemm["kind"] == "workload").any():
        return []
    w = gemm[gemm["kind"] == "workload"]
    per_layer = w.pivot_table(index=["dtype", "name", "flops"], columns="pass", values="median_s")
    per_layer = per_layer.dropna(subset=["fwd", "bwd_dx", "bwd_dw"]).reset_index()
    per_layer["bwd"] = per_layer["bwd_dx"] + per_layer["bwd_dw"]
    out = []
    for (dtype, flops), g in per_layer.groupby(["dtype", "flops"], sort=True):
        out.append(
            {
                "dtype": str(dtype),
                "flops": int(flops),
                "fwd_s": float(g["fwd"].mean()),
                "bwd_s": float(g["bwd"].mean()),
                "layers": ", ".join(sorted(str(n) for n in g["name"])),
            }
        )
    return out


def _memory(m: Measurements) -> dict[str, Any]:
    mem = pd.DataFrame(m.tables["memory"])
    big = mem[mem["array_bytes"] == mem["array_bytes"].max()].set_index("op")["bytes_per_s"]
    out = {
        "array_bytes": int(mem["array_bytes"].max()),
        "copy_bytes_per_s": float(big["copy"]),
        "triad_bytes_per_s": float(big["triad"]),
        "bandwidth_bytes_per_s": float(big[["copy", "triad"]].max()),
        "source": "calibrated: best of copy/triad (STREAM byte counting) at the largest array",
    }
    # framework buffers span cache-sized to DRAM-sized arrays: the median over the sizes
    median = mem.groupby("op")["bytes_per_s"].median()
    if "fresh_copy" in median:
        out["buffer_copy_bytes_per_s"] = float(median["copy"])
        out["fresh_copy_bytes_per_s"] = float(median["fresh_copy"])
        out["copy_source"] = (
            "calibrated: median over array sizes of a copy into an existing buffer and into a "
            "newly allocated one (STREAM byte counting)"
        )
    return out


def placeholder_links() -> dict[str, Link]:
    """The catalogue links calibration falls back on: {"scale_out": ..., "scale_up": ...}."""
    links = list_links()
    return {"scale_out": links[PLACEHOLDER_SCALE_OUT], "scale_up": links[PLACEHOLDER_SCALE_UP]}


def as_met(
    met: pd.DataFrame, collective: str, world_size: int, alpha_s: float, beta_s_per_byte: float
) -> dict[str, Any]:
    """The fit's latency as a training step meets the collective, where it was timed so
    (`GroupConfig.gap_s`): the median over the timed sizes of (mean per call - bytes x the
    back-to-back fit's beta), in place of the back-to-back fit's alpha; the latter is kept as
    `alpha_back_to_back_s`. Nothing where it was not timed."""
    if met.empty:
        return {}
    g = met[(met["collective"] == collective) & (met["world_size"] == world_size)]
    if g.empty:
        return {}
    alpha = float(np.median(np.maximum(g["mean_s"] - g["bytes"] * beta_s_per_byte, 0.0)))
    gap = float(g["gap_s"].max())
    return {"alpha_s": alpha, "alpha_back_to_back_s": alpha_s, "alpha_gap_s": gap}


def _network(m: Measurements, copy_bw: float) -> dict[str, Any]:
    placeholder = placeholder_links()
    col = pd.DataFrame(m.tables.get("collectives", []))
    met = pd.DataFrame(m.tables.get("collectives_met", []))
    fits = []
    for (coll, ws), g in [] if col.empty else col.groupby(["collective", "world_size"]):
        ab = fit_alpha_beta(g["bytes"].tolist(), g["median_s"].tolist())
        fit = {
            "collective": str(coll),
            "world_size": int(ws),
            "backend": str(g["backend"].iloc[0]),
            "alpha_s": ab.alpha_s,
            "beta_s_per_byte": ab.beta_s_per_byte,
            "rel_rms": ab.rel_rms,
            "points": ab.points,
            "max_busbw_bytes_per_s": float(g["busbw_bytes_per_s"].max()),
        }
        fits.append(fit | as_met(met, str(coll), int(ws), ab.alpha_s, ab.beta_s_per_byte))
    ar = [f for f in fits if f["collective"] == "all_reduce" and f["world_size"] >= 2]
    if ar:
        top = max(ar, key=lambda f: f["world_size"])
        n = top["world_size"]
        beta = max(top["beta_s_per_byte"], 1e-30)
        # A ring all-reduce takes 2(n-1) latency steps and moves S * 2(n-1)/n per rank
        # (simulator.costmodel.collectives), so the link that reproduces the fit has:
        steps = 2 * (n - 1)
        bw = bus_factor("all_reduce", n) / beta
        capped = bw > copy_bw  # beta ~ 0 when only small messages were measured
        scale_up = {
            "bandwidth_bytes_per_s": min(bw, copy_bw),
            "latency_s": top["alpha_s"] / steps,
            "efficiency": 1.0,  # the fit's bandwidth is an achieved one
            "source": f"calibrated: {top['backend']} all_reduce alpha-beta fit at world_size={n}"
            f"; bandwidth = 2(n-1)/n / beta, latency = alpha / 2(n-1) (ring steps)"
            + ("; bandwidth capped at the measured memory bandwidth" if capped else ""),
        }
    else:
        shm = placeholder["scale_up"]
        scale_up = {
            "bandwidth_bytes_per_s": copy_bw,
            "latency_s": shm.latency_s,
            "efficiency": 1.0,  # the copy bandwidth is an achieved rate already
            "preset": PLACEHOLDER_SCALE_UP,
            "source": "placeholder (not measured): measured copy bandwidth (efficiency 1.0: "
            f"an achieved rate); latency of the catalogue link {PLACEHOLDER_SCALE_UP!r} "
            f"({shm.source})",
        }
    net = placeholder["scale_out"]
    scale_out = {
        "bandwidth_bytes_per_s": net.bandwidth_bytes_per_s,
        "latency_s": net.latency_s,
        "efficiency": net.efficiency,
        "preset": PLACEHOLDER_SCALE_OUT,
        "source": f"placeholder (not measured): the catalogue link {PLACEHOLDER_SCALE_OUT!r} "
        f"({net.source})",
    }
    backend = "nccl" if m.device == "cuda" else "gloo"
    return {"backend": backend, "fits": fits, "scale_up": scale_up, "scale_out": scale_out}


def _noise(m: Measurements) -> dict[str, Any]:
    noisy, total = [], 0
    for table, rows in m.tables.items():
        for r in rows:
            if "noisy" not in r:
                continue
            total += 1
            if r["noisy"]:
                names = ("name", "pass", "op", "collective", "dtype", "bench", "variant")
                key = [str(r[k]) for k in r if k in names]
                size = r.get("bytes", r.get("flops"))
                key += [] if size is None else [f"{size:g}"]
                noisy.append(f"{table}: " + " ".join(key))
    return {"threshold": NOISY_SPREAD, "rule": "(max - min) / median > threshold",
            "measurements": total, "noisy": len(noisy), "noisy_configs": noisy[:200]}  # fmt: skip


def _stability(m: Measurements) -> dict[str, Any]:
    """The steadiness verdict: "steady" only when every workload kernel settled (see
    `workload.py` for the rule) and the load average stayed below the cores at both ends."""
    st = dict(m.stability)
    reasons = []
    if st.get("verdict") == "unsteady":
        reasons.append(f"{st['kernels'] - st['settled']} of {st['kernels']} kernels did not settle")
    cores = float(m.machine.get("cpu_cores", 0) or 0)
    for end in ("start", "end"):
        load = st.get(f"load_average_1m_{end}", "")
        if m.device == "cpu" and cores and load and float(load) > cores:
            reasons.append(f"load average {load} at the {end} on {cores:g} cores")
    if "verdict" not in st:
        st["verdict"] = "unknown"
        reasons.append("no workload kernels measured")
    elif reasons:
        st["verdict"] = "unsteady"
    st["reasons"] = reasons
    return st


def round_floats(x: Any, digits: int = SIG_DIGITS) -> Any:
    """`x` with every float (recursively) rounded to `digits` significant digits."""
    if isinstance(x, float):
        return float(f"{x:.{digits}g}")
    if isinstance(x, dict):
        return {k: round_floats(v, digits) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [round_floats(v, digits) for v in x]
    return x


def _contention(m: Measurements) -> dict[str, Any]:
    """Throughput factors with every rank of the host busy (1.0: none measured): per dtype
    for GEMMs (`factor`), and for memory-bound streaming (`memory_factor`)."""
    rows = m.tables.get("contention") or []
    if not rows:
        return {"measured": False, "note": "one rank per host: no contention to measure"}
    gemm = [r for r in rows if r.get("kernel", "gemm") == "gemm"]
    stream = [r for r in rows if r.get("kernel") == "stream"]
    out = {
        "measured": True,
        "ranks": int(rows[0]["ranks"]),
        "factor": {r["dtype"]: r["factor"] for r in gemm},
        "source": "calibrated: each dtype's GEMMs and an fp32 streaming pass alone vs on "
        "every rank at once (hwprofiles/calibration/contention.py)",
    }
    if stream:
        out["memory_factor"] = stream[0]["factor"]
    return out


def _framework(m: Measurements) -> dict[str, Any]:
    """Host seconds per optimizer tensor (plain, DTensor) and per FSDP2 unit, if measured."""
    rows = m.tables.get("framework") or []
    if not rows:
        return {"measured": False, "note": "measured on CPU ranks only"}
    return {
        "measured": True,
        **host_overheads(rows),
        "source": "calibrated: AdamW over tiny tensors, plain and DTensor, and tiny FSDP2 "
        "units and DDP-wrapped models against the same layers unwrapped "
        "(hwprofiles/calibration/framework.py)",
    }


def summarise(m: Measurements) -> dict[str, Any]:
    """The profile summary (TOML-ready: no None values, floats to 6 digits) of a calibration."""
    memory = _memory(m)
    p = m.power
    power: dict[str, Any] = {
        "measured": p.kind == "measured",
        "kind": p.kind,
        "idle_w": p.idle_w,
        "tdp_w": p.tdp_w,
        "source": p.source,
        "note": m.power_note,
    }
    if p.load_w:
        power["load_w"] = p.load_w
    files = {k: v for k, v in FILES.items() if m.tables.get(k)}
    return round_floats(
        {
            "format": FORMAT,
            "name": m.name,
            "level": m.level,
            "machine": m.machine,
            "device": {
                "kind": m.device,
                "dtypes": list(m.dtypes),
                "threads_per_rank": m.threads_per_rank,
                "ranks_per_node": m.ranks_per_node,
                "memory_bytes": m.memory_bytes,
                "world_sizes": list(m.world_sizes),
            },
            "compute": _compute(m),
            "memory": memory,
            "network": _network(m, memory["bandwidth_bytes_per_s"]),
            "power": power,
            "contention": _contention(m),
            "framework": _framework(m),
            "noise": _noise(m),
            "stability": _stability(m),
            "files": files,
        }
    )
