"""Before a validation runs: the profile's other component rates, re-probed.

`validation.drift` re-probes the GEMMs; a step also rests on fused attention, memory-bound
kernels (norms, activations, softmax, loss, casts, buffer copies) and, for more than one rank,
gloo's collectives. Each is timed again here, in seconds, *at the sizes the calibration timed
it* (a drift is the machine having changed, so the re-probe must measure what the profile
measured, not the model's own sizes where the profile never looked), and set against the
profile's figure for the same thing:

    speed = profile's time / measured time     (1.0 = as calibrated)

- attention: the model's SDPA call, causal, forward + backward, per dtype (calibrations time
  the validation models' own shapes), against `attention_timings` at that shape, else the
  curve; rests under that dtype's runs;
- memory: add, gelu, layernorm, softmax and cross-entropy at the calibration level's shapes
  and dtypes, median rate, against `memory_bandwidth x memory_efficiency` (the calibration's
  median elementwise rate); under every run;
- cast: fp32 <-> bf16 casts the same way, against `cast_bytes_per_s`; under bf16 runs;
- copy: a copy into an existing buffer at the level's array sizes, median rate, against
  `copy_bytes_per_s`; under every run;
- collective: gloo all-reduce at the model's gradient bytes (one DDP bucket at most) and
  all-gather at one block's parameters, 2 ranks, against the profile's alpha-beta fit; under
  multi-rank loopback runs (a rate-limited link's runs use collectives measured through it).

Where the profile records the calibration's fastest samples (`HostProfile.fastest_s`), the two
noisiest probes are repeated the way the calibration measured them and compared fastest
sample to fastest sample (a scheduler hiccup only ever adds time, so the fastest of several
samples is what one hiccup cannot move; a median of five samples of a 0.2-2 ms gloo call is
not): the copy at the calibration's array sizes (median over sizes of the fastest sample per
byte), and each collective at the calibration's measured size nearest above the model's bytes
and at least `MIN_COLLECTIVE_BYTES` (sub-MiB gloo calls on a shared host are mostly wake-up
latency), against that size's fastest sample rather than the alpha-beta fit. Stopping rule:
one round of samples (the calibration level's repeats); a probe that reads drifted is timed
once more and its figure is the faster of the two rounds; it is flagged only if that still
lies beyond the tolerance (two rounds at most). Profiles without the record keep the
median-against-profile comparison below.

A row whose speed is beyond `drift.TOLERANCE` either way has drifted. `reprice` sets stored
rows against another profile (`llmcap validate --repredict`); `replaced` puts the measured
figures in place of the profile's (`--remeasure-drifted`; nothing is written to disk).
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections.abc import Callable
from typing import Any

from hwprofiles.profile import AttentionTiming, CollectiveFit, HardwareProfile
from validation.gptconfig import GPTConfig

SCOPE_ALL, SCOPE_MULTI = "all runs", "multi-rank loopback runs"
MIN_COLLECTIVE_BYTES = 1 << 20
"""Smallest collective size the fastest-sample comparison probes (bytes): at 1 MiB a 2-rank
gloo all-reduce takes ~1.2 ms on the 2-core VM (calibration 2026-12-03), several scheduler
quanta shorter calls do not reach."""
Timer = Callable[[list[dict[str, Any]]], list[float]]
"""Seconds per unit (call, or byte for rates) of each probe spec; tests pass a fake."""


def attention_flops(b: int, h: int, s: int, d: int) -> float:
    """Causal SDPA forward + backward FLOPs (calibration/attention.py: 4bhs^2d / 2, x3.5)."""
    return 4.0 * b * h * s * s * d / 2 * 3.5


def block_params(cfg: GPTConfig) -> int:
    """Parameters of one transformer block of `validation/gpt.py`: QKV and projection with
    bias (4h^2 + 4h), MLP up and down with bias (2 h f + f + h), two LayerNorms (4h)."""
    h, f = cfg.hidden_size, cfg.ffn_size
    return 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h


def gradient_bytes(cfg: GPTConfig) -> int:
    """fp32 gradient bytes of the whole model (blocks, token and position embeddings, final
    LayerNorm; the output matrix is tied), capped at one torch DDP bucket."""
    from validation.mapping import TORCH_DDP_BUCKET_BYTES

    h = cfg.hidden_size
    params = block_params(cfg) * cfg.num_hidden_layers + (cfg.vocab_size + cfg.seq_len) * h + 2 * h
    return min(4 * params, TORCH_DDP_BUCKET_BYTES)


def calibrated_as(hw: HardwareProfile) -> dict[str, Any]:
    """The calibration's level and dtypes (its memory-bound rates are medians over them)."""
    m = re.search(r"level=(\w+)", hw.provenance.notes or "")
    dtypes = sorted(d for d in hw.accelerator.peak_flops if d in ("fp32", "bf16", "fp16"))
    return {"level": m.group(1) if m else "quick", "dtypes": dtypes or ["fp32"]}


def probe_specs(
    cfg: GPTConfig, dtypes: list[str], multi_rank: bool, calibrated: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """What to re-probe for a matrix of `dtypes` (GEMM dtypes) and, if `multi_rank`, ranks > 1;
    `calibrated` (`calibrated_as`): the level and dtypes whose sizes the rates are taken at."""
    at = calibrated or {"level": "quick", "dtypes": ["fp32"]}
    b, h, s, d = (int(v) for v in cfg.attention_shape().split("x"))
    specs: list[dict[str, Any]] = [
        {"probe": "attention", "dtype": dt, "scope": SCOPE_ALL, "shape": [b, h, s, d],
         "what": f"sdpa {b}x{h}x{s}x{d} causal fwd+bwd"}
        for dt in dtypes
    ]  # fmt: skip
    specs.append({"probe": "memory", "dtype": "any", "scope": SCOPE_ALL, **at,
                  "what": "elementwise ops, median rate (per byte)"})  # fmt: skip
    if "bf16" in dtypes:
        specs.append({"probe": "cast", "dtype": "bf16", "scope": SCOPE_ALL, **at,
                      "what": "fp32<->bf16 casts, median rate (per byte)"})  # fmt: skip
    specs.append({"probe": "copy", "dtype": "any", "scope": SCOPE_ALL, **at,
                  "what": "buffer copy, median rate (per byte)"})  # fmt: skip
    if multi_rank:
        for coll, nbytes in (("all_reduce", gradient_bytes(cfg)),
                             ("all_gather", 4 * block_params(cfg))):  # fmt: skip
            specs.append({"probe": "collective", "dtype": "any", "scope": SCOPE_MULTI,
                          "collective": coll, "bytes": int(nbytes), "world_size": 2,
                          "what": f"gloo {coll} {nbytes / 2**20:.2f} MiB, 2 ranks"})  # fmt: skip
    return specs


def profile_time(hw: HardwareProfile, spec: dict[str, Any]) -> float:
    """The profile's seconds for one probe (rates: seconds per byte)."""
    import numpy as np

    from simulator.costmodel.network import group_collective_time
    from simulator.costmodel.timing import compute_time

    acc = hw.accelerator
    kind = spec["probe"]
    if spec.get("fastest"):
        t = _fastest_time(hw, spec)
        if t is not None:
            return t
    if kind == "attention":
        b, h, s, d = spec["shape"]
        t = acc.measured_attention(spec["dtype"], b, h, s, d, causal=True)
        if t is not None:
            return t.fwd_s + t.bwd_s
        return float(compute_time(acc, attention_flops(b, h, s, d), spec["dtype"], "attention"))
    if kind == "memory":
        return 1.0 / (acc.memory_bandwidth_bytes_per_s * acc.memory_efficiency)
    if kind == "cast":
        rate = acc.cast_bytes_per_s
        return 1.0 / (rate or acc.memory_bandwidth_bytes_per_s * acc.memory_efficiency)
    if kind == "copy":
        rate = acc.copy_bytes_per_s
        return 1.0 / (rate or acc.memory_bandwidth_bytes_per_s * acc.memory_efficiency)
    if kind == "collective":
        t = group_collective_time(hw, spec["collective"], spec["bytes"], spec["world_size"], 1)
        return float(np.asarray(t))
    raise ValueError(f"probe: {kind!r} is not a component probe")


def rows_for(
    hw: HardwareProfile, specs: list[dict[str, Any]], measured: list[float]
) -> list[dict[str, Any]]:
    """The probe rows: spec, measured and profile time, speed, drifted."""
    from validation.drift import TOLERANCE

    rows = []
    for spec, t in zip(specs, measured, strict=True):
        predicted = profile_time(hw, spec)
        speed = predicted / t if t > 0 else float("inf")
        drifted = not (1 / (1 + TOLERANCE) <= speed <= 1 + TOLERANCE)
        rows.append(spec | {"measured_s": t, "profile_s": predicted, "speed": speed,
                            "drifted": drifted})  # fmt: skip
    return rows


def check_components(
    hw: HardwareProfile,
    cfg: GPTConfig,
    dtypes: list[str],
    multi_rank: bool,
    timer: Timer | None = None,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """Re-probe attention, memory-bound kernels and (if `multi_rank`) collectives; one row
    each (module docstring)."""
    specs = same_way(hw, probe_specs(cfg, dtypes, multi_rank, calibrated_as(hw)))
    if timer is None:
        from validation.component_timing import time_probes

        timer = lambda s: time_probes(s, threads)  # noqa: E731
    measured = timer(specs)
    rows = rows_for(hw, specs, measured)
    again = [i for i, r in enumerate(rows) if r["drifted"] and r.get("fastest")]
    if again:  # the stopping rule (module docstring): one more round, the faster one counts
        second = timer([specs[i] for i in again])
        for i, t in zip(again, second, strict=True):
            measured[i] = min(measured[i], t)
        rows = rows_for(hw, specs, measured)
        for i in again:
            rows[i]["rounds"] = 2
    return rows


def _fastest(hw: HardwareProfile) -> dict[str, float]:
    return dict(hw.host.fastest_s) if hw.host is not None else {}


def same_way(hw: HardwareProfile, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`specs` with the copy and collective probes set to repeat the calibration's own
    measurement where `hw` records its fastest samples (module docstring); others unchanged."""
    fastest, out = _fastest(hw), []
    for s in specs:
        if s["probe"] == "copy":
            sizes = sorted(int(k.split(":")[1]) for k in fastest if k.startswith("copy:"))
            if sizes:
                what = "buffer copy, fastest sample per size, median (per byte)"
                s = s | {"fastest": True, "sizes": sizes, "what": what}
        elif s["probe"] == "collective":
            pre = f"collective:{s['collective']}:{s['world_size']}:"
            sizes = sorted(int(k[len(pre) :]) for k in fastest if k.startswith(pre))
            want = max(int(s["bytes"]), MIN_COLLECTIVE_BYTES)
            if sizes:
                size = next((n for n in sizes if n >= want), sizes[-1])
                s = s | {"fastest": True, "bytes": size, "level": calibrated_as(hw)["level"],
                         "what": f"gloo {s['collective']} {size / 2**20:.2f} MiB, 2 ranks, "
                                 "fastest sample"}  # fmt: skip
        out.append(s)
    return out


def _fastest_time(hw: HardwareProfile, spec: dict[str, Any]) -> float | None:
    """The calibration's fastest-sample figure for a `same_way` spec; None if not recorded."""
    fastest = _fastest(hw)
    if spec["probe"] == "copy":
        per = [fastest[f"copy:{n}"] / (2 * n) for n in spec["sizes"] if f"copy:{n}" in fastest]
        return statistics.median(per) if per else None
    key = f"collective:{spec['collective']}:{spec['world_size']}:{spec['bytes']}"
    return fastest.get(key)


def reprice(hw: HardwareProfile, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored component rows set against `hw` (a re-prediction): the measurement stays, the
    profile's figure, speed and verdict are recomputed, and an in-place re-measurement of the
    original run no longer counts (it is not in `hw`)."""
    out = []
    for r in rows:
        spec = {k: v for k, v in r.items() if k not in ("profile_s", "speed", "drifted",
                                                        "remeasured", "speed_before",
                                                        "rounds")}  # fmt: skip
        out.extend(rows_for(hw, [spec], [float(r["measured_s"])]))
    return out


def replaced(hw: HardwareProfile, rows: list[dict[str, Any]]) -> HardwareProfile:
    """`hw` with the drifted rows' measured figures in place of the profile's: attention at
    the probed shape, the memory-bound, cast and copy rates (the fresh-copy rate scaled as the
    copy rate), and each probed collective's alpha-beta fit scaled by measured / profile."""
    acc, fits, host = hw.accelerator, list(hw.collectives), hw.host
    for r in (r for r in rows if r["drifted"]):
        kind, t = r["probe"], float(r["measured_s"])
        if r.get("fastest") and host is not None:  # the record it was compared with, too
            pre = "copy:" if kind == "copy" else f"collective:{r['collective']}:{r['world_size']}:"
            f = t / float(r["profile_s"])
            fastest = {k: v * f if k.startswith(pre) else v for k, v in host.fastest_s.items()}
            host = dataclasses.replace(host, fastest_s=fastest)
        if kind == "attention":
            b, h, s, d = r["shape"]
            old = acc.measured_attention(r["dtype"], b, h, s, d, causal=True)
            share = old.fwd_s / (old.fwd_s + old.bwd_s) if old else 1 / 3.5  # fwd : bwd 1 : 2.5
            new = AttentionTiming(r["dtype"], b, h, s, d, True, t * share, t * (1 - share))
            kept = tuple(x for x in acc.attention_timings if x.key() != new.key())
            acc = dataclasses.replace(acc, attention_timings=(*kept, new))
        elif kind == "memory":
            acc = dataclasses.replace(
                acc, memory_efficiency=1.0 / (t * acc.memory_bandwidth_bytes_per_s)
            )
        elif kind == "cast":
            acc = dataclasses.replace(acc, cast_bytes_per_s=1.0 / t)
        elif kind == "copy":
            ratio = float(r["profile_s"]) / t
            rate = acc.copy_bytes_per_s or acc.memory_bandwidth_bytes_per_s * acc.memory_efficiency
            acc = dataclasses.replace(acc, copy_bytes_per_s=rate * ratio)
            if host is not None and host.fresh_copy_bytes_per_s is not None:
                fresh = host.fresh_copy_bytes_per_s * ratio
                host = dataclasses.replace(host, fresh_copy_bytes_per_s=fresh)
        elif kind == "collective":
            key = (r["collective"], r["world_size"])
            if not any((f.collective, f.world_size) == key for f in fits):
                fits.append(CollectiveFit(*key, 0.0, t / r["bytes"], "gloo", "re-measured"))
                continue
            ratio = t / float(r["profile_s"])
            fits = [
                dataclasses.replace(f, alpha_s=f.alpha_s * ratio,
                                    beta_s_per_byte=f.beta_s_per_byte * ratio)
                if (f.collective, f.world_size) == (r["collective"], r["world_size"]) else f
                for f in fits
            ]  # fmt: skip
    return dataclasses.replace(hw, accelerator=acc, collectives=tuple(fits), host=host)


def median_rate(rates: list[float]) -> float:
    """Seconds per byte of the median of `rates` (bytes/s)."""
    return 1.0 / statistics.median(rates)
