"""A calibration profile as Markdown, ready to paste into docs/ (units converted for people).

``python -m hwprofiles.calibration.report DIR [COMMAND]`` prints it; the GPU script uses it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd

from hwprofiles.calibration.loader import read_summary

UNRESOLVED_BYTES_PER_S = 1e13  # 10 TB/s: far above any link or memory measured here


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _gemm(path: Path, s: dict[str, Any]) -> str:
    g = pd.read_csv(path / "compute" / "gemm.csv")
    sq = g[g["kind"] == "square"].pivot_table(index="m", columns="dtype", values="flops_per_s")
    dtypes = list(s["device"]["dtypes"])
    rows = [[str(m)] + [f"{sq.loc[m, d] / 1e12:.3g}" for d in dtypes] for m in sq.index]
    peaks = s["compute"]["peak_flops"]
    rows.append(["**measured peak**"] + [f"**{peaks[d] / 1e12:.3g}**" for d in dtypes])
    out = "GEMM throughput, TFLOP/s (square m = n = k; peak = best of all shapes):\n\n"
    out += _table(["m=n=k", *dtypes], rows)
    tr = g[g["kind"] == "transformer"]
    if not tr.empty:
        by = tr.groupby(["name", "dtype"])["flops_per_s"].median().unstack("dtype") / 1e12
        rows = [[n] + [f"{by.loc[n, d]:.3g}" for d in dtypes] for n in by.index]
        out += "\n\nTransformer-layer GEMMs, median of fwd / dX / dW, TFLOP/s:\n\n"
        out += _table(["GEMM", *dtypes], rows)
    if "bf16" in peaks and "fp32" in peaks:
        out += f"\n\nbf16 / fp32 measured peak: **{peaks['bf16'] / peaks['fp32']:.2f}x**"
    return out


def _curves(s: dict[str, Any]) -> str:
    rows = []
    for d, c in s["compute"]["matmul_efficiency"].items():
        rows.append([f"GEMM {d}", f"{c['max_fraction']:.2f}", f"{c['half_size']:.3g}",
                     f"{c['exponent']:.2f}", f"{c['rel_rms']:.2f}"])  # fmt: skip
    att = s["compute"].get("attention")
    if att:
        c = att["efficiency"]
        rows.append([f"SDPA {att['dtype']}", f"{c['max_fraction']:.2f}", f"{c['half_size']:.3g}",
                     f"{c['exponent']:.2f}", f"{c['rel_rms']:.2f}"])  # fmt: skip
    head = ["curve", "f_max (of peak)", "half size (FLOP)", "exponent p", "fit rel. RMS"]
    out = "Efficiency fits f(s) = f_max / (1 + (s_half / s)^p):\n\n" + _table(head, rows)
    shapes = s["compute"].get("attention_shapes", [])
    if shapes:
        rows = [
            [f"{t['batch']}x{t['heads']}x{t['seq']}x{t['head_dim']}", t["dtype"],
             f"{t['fwd_s'] * 1e3:.3g}", f"{t['bwd_s'] * 1e3:.3g}",
             f"{t['bwd_s'] / t['fwd_s']:.2g}" if t["fwd_s"] > 0 else "–"]
            for t in shapes
        ]  # fmt: skip
        out += "\n\nCausal attention at the workload's shapes (priced as measured), ms/call:\n\n"
        out += _table(["batch x heads x seq x head_dim", "dtype", "fwd", "bwd", "bwd / fwd"], rows)
    return out


def _memory(path: Path, s: dict[str, Any]) -> str:
    mem = pd.read_csv(path / "compute" / "memory.csv")
    piv = mem.pivot_table(index="array_bytes", columns="op", values="bytes_per_s") / 1e9
    ops = [o for o in ("copy", "triad", "fresh_copy") if o in piv.columns]
    rows = [[f"{b / 2**20:g}"] + [f"{r[o]:.3g}" for o in ops] for b, r in piv.iterrows()]
    out = "Memory bandwidth, GB/s (STREAM byte counting; fresh_copy: into a new buffer):\n\n"
    out += _table(["array MiB", *ops], rows)
    ew = s["compute"].get("elementwise_bytes_per_s", {})
    if ew:
        ops = list(next(iter(ew.values())))
        rows = [[d] + [f"{v[o] / 1e9:.3g}" for o in ops] for d, v in ew.items()]
        out += "\n\nMemory-bound operators at the largest shape, GB/s:\n\n"
        out += _table(["dtype", *ops], rows)
    return out


def _inverse_beta(beta_s_per_byte: float) -> str:
    """1/β in GB/s; β ~ 0 (time flat in size over the measured range) shows as unresolved."""
    if beta_s_per_byte <= 1 / UNRESOLVED_BYTES_PER_S:
        return f"> {UNRESOLVED_BYTES_PER_S / 1e9:g} (β ≈ 0)"
    return f"{1 / beta_s_per_byte / 1e9:.3g}"


def _network(s: dict[str, Any]) -> str:
    rows = [
        [f["collective"], str(f["world_size"]), f["backend"], f"{f['alpha_s'] * 1e6:.3g}",
         _inverse_beta(f["beta_s_per_byte"]),
         f"{f['max_busbw_bytes_per_s'] / 1e9:.3g}", f"{f['rel_rms']:.2f}"]
        for f in s["network"]["fits"]
    ]  # fmt: skip
    head = ["collective", "n", "backend", "α (µs)", "1/β (GB/s)", "max busbw (GB/s)", "rel. RMS"]
    up = s["network"]["scale_up"]
    return (
        "Collectives, α-β fit t = α + β·S (S as nccl-tests counts it):\n\n"
        + _table(head, rows)
        + f"\n\nScale-up link derived for the models: {up['bandwidth_bytes_per_s'] / 1e9:.3g} "
        f"GB/s per direction, {up['latency_s'] * 1e6:.3g} µs per step ({up['source']})."
    )


def markdown_report(path: str | Path, command: str = "") -> str:
    """Markdown summary of the calibration profile directory `path`."""
    path = Path(path)
    s = read_summary(path)
    m = s["machine"]
    what = m.get("gpu_name") or m.get("cpu_model")
    p = s["power"]
    power = (
        f"measured ({p['source']}): idle {p['idle_w']:.3g} W, full load {p['tdp_w']:.3g} W"
        if p["measured"]
        else f"**{p['note']}**: idle {p['idle_w']:.3g} W, max {p['tdp_w']:.3g} W ({p['source']})"
    )
    n = s["noise"]
    parts = [
        f"### {s['name']}: {what}, {s['device']['kind']}, level {s['level']}, {m['date']}",
        f"Machine: {m.get('cpu_model')} ({m.get('cpu_cores')} cores), torch {m.get('torch')}"
        + (f", GPU {m['gpu_name']}, driver {m.get('driver')}" if "gpu_name" in m else "")
        + f"; {s['device']['threads_per_rank']} thread(s) per rank, "
        f"{s['device']['ranks_per_node']} ranks per node; load average at start "
        f"{m.get('load_average_1m', '?')}.",
        f"Command: `{command}`" if command else "",
        _gemm(path, s),
        _curves(s),
        _memory(path, s),
        _network(s),
        f"Power per device: {power}.",
        f"Noise: {n['noisy']} of {n['measurements']} measurements have (max - min) / median "
        f"> {n['threshold']} (listed in profile.toml).",
    ]
    return "\n\n".join(x for x in parts if x) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown_report(sys.argv[1], " ".join(sys.argv[2:])))
