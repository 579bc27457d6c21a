"""Load a calibration profile directory into a `HardwareProfile`.

Only ``profile.toml`` is read (the CSVs are the evidence, the summary holds the fits). Mapping:
measured GEMM peaks -> `Accelerator.peak_flops` (a *measured* peak, not a datasheet's);
fitted curves -> `matmul_efficiency_by_dtype` / `attention_efficiency`; best of copy/triad ->
`memory_bandwidth_bytes_per_s` with `memory_efficiency = 1.0` (already achieved); ranks that
fit on the machine -> `Node.gpus_per_node`; the all-reduce α-β fit -> the scale-up `Link`;
every (collective, world size >= 2) fit -> `CollectiveFit` (world size 1 stays in the CSV
and TOML as a software-overhead reference: frameworks skip one-rank collectives); power
measured or modelled, labelled as such. What belongs to the host goes to the profile's
`HostProfile` (`hwprofiles.host`): the collective library (gloo on CPU, NCCL on CUDA), host
contention factors, the fresh-buffer copy rate, and host times per optimizer tensor and per
FSDP2 unit (CPU profiles) -> `optimizer_tensor_s`, `dtensor_optimizer_tensor_s`,
`fsdp_unit_s`, `fsdp_tensor_s`.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from hwprofiles.calibration.store import FORMAT, PROFILE_FILE
from hwprofiles.errors import UserError
from hwprofiles.host import HostProfile
from hwprofiles.inputs import path_kind, read_toml
from hwprofiles.profile import (
    Accelerator,
    AttentionTiming,
    CollectiveFit,
    EfficiencyCurve,
    Fabric,
    GemmTiming,
    HardwareProfile,
    Link,
    Node,
    PowerModel,
    Provenance,
)


def _get(doc: Mapping[str, Any], dotted: str, path: Path) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise UserError(f"{path}: field {dotted!r} is missing (not a calibration profile?)")
        node = node[part]
    return node


def _curve(c: Mapping[str, Any], where: str) -> EfficiencyCurve:
    try:
        return EfficiencyCurve(tuple(c["sizes"]), tuple(c["fractions"]), c.get("source", where))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: bad efficiency curve ({exc})") from exc


def _check_finite(node: Any, where: str) -> None:
    """`UserError` for a NaN or infinite number anywhere in the parsed profile.toml."""
    if isinstance(node, float) and not math.isfinite(node):
        raise UserError(where, node, "must be a finite number")
    if isinstance(node, Mapping):
        for k, v in node.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_finite(v, f"{where}[{i}]")


def read_summary(path: str | Path) -> dict[str, Any]:
    """The parsed profile.toml of a profile directory (or the file itself)."""
    path = Path(path)
    file = path / PROFILE_FILE if path_kind(path) == "dir" else path
    if path_kind(file) != "file":
        raise UserError(f"hardware: {path} has no {PROFILE_FILE} (not a calibration)")
    doc = read_toml(file, "hardware")
    _check_finite(doc, PROFILE_FILE)
    if doc.get("format") != FORMAT:
        raise UserError(f"{file}: field 'format' is {doc.get('format')!r}, expected {FORMAT!r}")
    return doc


FRAMEWORK_FIELDS = (
    "optimizer_tensor_s",
    "dtensor_optimizer_tensor_s",
    "fsdp_unit_s",
    "fsdp_tensor_s",
    "ddp_tensor_s",
    "ddp_step_s",
    "layer_host_s",
)
"""Host times per optimizer tensor and per FSDP2 unit (`framework` table, CPU profiles)."""


CAST_SOURCE = "calibrated: median over dtypes of an fp32 <-> 16-bit cast's rate at the largest \
elementwise shape (compute/elementwise.csv)"
TIMINGS_SOURCE = (
    "calibrated: SDPA forward and backward timed at the workload's shapes "
    "(compute/attention_passes.csv)"
)
GEMM_TIMINGS_SOURCE = (
    "calibrated: linear layers' forward, dX and dW GEMMs timed at the workload's shapes, "
    "interleaved until settled (compute/gemm.csv, kind = workload)"
)


def _attention_timings(rows: list[dict[str, Any]]) -> tuple[AttentionTiming, ...]:
    keys = ("batch", "heads", "seq", "head_dim")
    return tuple(
        AttentionTiming(
            str(r["dtype"]),
            *(int(r[k]) for k in keys),
            bool(r["causal"]),
            float(r["fwd_s"]),
            float(r["bwd_s"]),
        )
        for r in rows
    )


def load_calibrated_profile(path: str | Path) -> HardwareProfile:
    """A `HardwareProfile` from a calibration directory written by `llmcap calibrate`."""
    path = Path(path)
    doc = read_summary(path)
    g = lambda key: _get(doc, key, path)  # noqa: E731
    machine = {str(k): str(v) for k, v in g("machine").items()}
    dev = g("device")
    comp = g("compute")
    peaks = {str(k): float(v) for k, v in g("compute.peak_flops").items()}
    curves = {
        d: _curve(c, f"{path}: compute.matmul_efficiency.{d}")
        for d, c in g("compute.matmul_efficiency").items()
    }
    default = comp.get("default_dtype", next(iter(curves)))
    att = comp.get("attention")
    att_curve = _curve(att["efficiency"], f"{path}: attention") if att else curves[default]
    power = g("power")
    kind = "measured" if power.get("measured") else "modelled"
    psrc = str(power.get("source", ""))
    psrc = psrc if psrc.startswith(kind) else f"{kind}: {psrc}"
    what = machine.get("gpu_name") or machine.get("cpu_model", "unknown")
    if dev["kind"] == "cpu":
        what = f"{what} ({dev['threads_per_rank']} thread(s) per rank)"
    mem = g("memory")
    fw = doc.get("framework", {})
    bw = float(mem["bandwidth_bytes_per_s"])
    # memory-bound kernels (norms, activations, softmax, loss) run at the measured elementwise
    # rate, not at STREAM copy speed: their efficiency is the median rate over bandwidth
    per_op = comp.get("elementwise_bytes_per_s", {})
    ew = [float(v) for per in per_op.values() for k, v in per.items() if k != "cast"]
    casts = [float(per["cast"]) for per in per_op.values() if "cast" in per]
    mem_eff = min(1.0, statistics.median(ew) / bw) if ew else 1.0
    acc = Accelerator(
        name=what,
        peak_flops=peaks,
        memory_bytes=float(dev["memory_bytes"]),
        memory_bandwidth_bytes_per_s=bw,
        tdp_w=float(power["tdp_w"]),
        idle_w=float(power["idle_w"]),
        matmul_efficiency=curves[default],
        attention_efficiency=att_curve,
        memory_efficiency=mem_eff,
        copy_bytes_per_s=_opt_float(mem.get("buffer_copy_bytes_per_s")),
        cast_bytes_per_s=statistics.median(casts) if casts else None,
        attention_timings=_attention_timings(comp.get("attention_shapes", [])),
        gemm_timings=tuple(
            GemmTiming(str(r["dtype"]), int(r["flops"]), float(r["fwd_s"]), float(r["bwd_s"]))
            for r in comp.get("gemm_layers", [])
        ),
        matmul_efficiency_by_dtype=curves,
        attention_efficiency_by_dtype={
            d: _curve(a["efficiency"], f"{path}: attention_by_dtype.{d}")
            for d, a in comp.get("attention_by_dtype", {}).items()
        },
        sources={
            "peak_flops": str(comp.get("peak_source", "calibrated: best measured GEMM")),
            "memory_bandwidth_bytes_per_s": str(mem.get("source", "calibrated")),
            "memory_efficiency": "calibrated: median measured elementwise throughput (norms, "
            "activations, softmax, loss) / measured bandwidth"
            if ew
            else "1.0: the bandwidth is already an achieved figure",
            **({"copy_bytes_per_s": str(mem["copy_source"])} if "copy_source" in mem else {}),
            **({"cast_bytes_per_s": CAST_SOURCE} if casts else {}),
            **({"attention_timings": TIMINGS_SOURCE} if comp.get("attention_shapes") else {}),
            **({"gemm_timings": GEMM_TIMINGS_SOURCE} if comp.get("gemm_layers") else {}),
            "tdp_w": psrc,
            "idle_w": psrc,
        },
    )
    net = g("network")
    up, out = net["scale_up"], net["scale_out"]
    node = Node(
        name=machine.get("hostname", "calibrated"),
        gpus_per_node=int(dev["ranks_per_node"]),
        scale_up=_link("scale-up", up),
        scale_out=_link("scale-out", out),
        nics_per_node=1,
        source=f"calibrated on {machine.get('hostname', '?')}",
    )
    fits = tuple(
        CollectiveFit(
            collective=f["collective"],
            world_size=int(f["world_size"]),
            alpha_s=float(f["alpha_s"]),
            beta_s_per_byte=float(f["beta_s_per_byte"]),
            backend=f.get("backend", ""),
            source=f"calibrated: alpha-beta fit, {path.name}/network/collectives.csv",
        )
        for f in net.get("fits", [])
        if int(f["world_size"]) >= 2  # a one-rank "collective" is skipped by frameworks
    )
    measured = ["peak_flops", "matmul_efficiency", "memory_bandwidth_bytes_per_s"]
    measured += ["attention_efficiency"] if att else []
    measured += ["attention_timings"] if comp.get("attention_shapes") else []
    measured += ["gemm_timings"] if comp.get("gemm_layers") else []
    measured += ["cast_bytes_per_s"] if casts else []
    measured += ["memory_efficiency"] if ew else []
    measured += ["copy_bytes_per_s", "fresh_copy_bytes_per_s"] if "copy_source" in mem else []
    measured += ["collectives"] if fits else []
    # the scale-up link is derived from the all-reduce fit; otherwise it is the placeholder
    measured += ["scale_up"] if str(up.get("source", "")).startswith("calibrated") else []
    measured += [k for k in FRAMEWORK_FIELDS if k in fw]
    measured += ["host_contention"] if doc.get("contention", {}).get("factor") else []
    measured += ["power"] if kind == "measured" else []
    return HardwareProfile(
        name=str(doc.get("name") or path.name),
        accelerator=acc,
        node=node,
        fabric=Fabric(source="placeholder: one calibrated machine, no cluster fabric measured"),
        power=PowerModel(idle_w=acc.idle_w, tdp_w=acc.tdp_w, source=psrc),
        provenance=Provenance(
            kind="calibrated",
            date=machine.get("date", ""),
            measured=tuple(measured),
            machine=machine,
            notes=f"level={doc.get('level')}; power {kind}; {power.get('note', '')}",
            steadiness=_steadiness(doc.get("stability", {})),
        ),
        collectives=fits,
        host=replace(_host(doc, dev["kind"], mem, fw), fastest_s=_fastest(path)),
    )


def _host(
    doc: Mapping[str, Any], kind: str, mem: Mapping[str, Any], fw: Mapping[str, Any]
) -> HostProfile:
    """The host side of a calibration: its collective library, contention factors, fresh-buffer
    copy rate and framework host times, each None / empty where not measured."""
    contention = doc.get("contention", {})
    return HostProfile(
        collective_backend="nccl" if kind == "cuda" else "gloo",
        contention=dict(contention.get("factor", {})),
        memory_contention=_opt_float(contention.get("memory_factor")),
        fresh_copy_bytes_per_s=_opt_float(mem.get("fresh_copy_bytes_per_s")),
        optimizer_tensor_s=_opt_float(fw.get("optimizer_tensor_s")),
        dtensor_optimizer_tensor_s=_opt_float(fw.get("dtensor_optimizer_tensor_s")),
        fsdp_unit_s=_opt_float(fw.get("fsdp_unit_s")),
        fsdp_tensor_s=_opt_float(fw.get("fsdp_tensor_s")),
        ddp_tensor_s=_opt_float(fw.get("ddp_tensor_s")),
        ddp_step_s=_opt_float(fw.get("ddp_step_s")),
        layer_host_s=_opt_float(fw.get("layer_host_s")),
        sources={
            **({"fresh_copy_bytes_per_s": str(mem["copy_source"])} if "copy_source" in mem else {}),
            **{k: str(fw["source"]) for k in FRAMEWORK_FIELDS if k in fw},
        },
    )


def _fastest(path: Path) -> dict[str, float]:
    """`HostProfile.fastest_s` from the calibration's CSVs (absent files: none)."""
    out: dict[str, float] = {}
    coll, mem = path / "network" / "collectives.csv", path / "compute" / "memory.csv"
    if coll.is_file():
        with coll.open(newline="") as f:
            for r in csv.DictReader(f):
                if int(r["world_size"]) >= 2 and r.get("min_s"):
                    key = f"collective:{r['collective']}:{r['world_size']}:{r['bytes']}"
                    out[key] = float(r["min_s"])
    if mem.is_file():
        with mem.open(newline="") as f:
            for r in csv.DictReader(f):
                if r["op"] == "copy" and r.get("min_s"):
                    out[f"copy:{r['array_bytes']}"] = float(r["min_s"])
    return out


def _link(name: str, table: Mapping[str, Any]) -> Link:
    """A link of the summary; `efficiency` 1.0 where absent (profiles before it was written:
    a fitted bandwidth is already achieved)."""
    eff = float(table.get("efficiency", 1.0))
    return Link(name, table["bandwidth_bytes_per_s"], table["latency_s"], eff, table["source"])


def _steadiness(st: Mapping[str, Any]) -> str:
    """ "steady", "unsteady: <reasons>", or "" when the profile records no verdict."""
    verdict = str(st.get("verdict", ""))
    if verdict in ("", "unknown"):
        return ""
    reasons = [str(r) for r in st.get("reasons", [])]
    return verdict + (f": {'; '.join(reasons)}" if reasons else "")


def _opt_float(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]
