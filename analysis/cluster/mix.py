"""The job mix: job classes read from TOML, validated once, and sampled into jobs (seeded).

A job-mix file (see examples/jobmix.toml)::

    description = "..."            # optional
    source = "..."                 # where the numbers come from (optional)

    [[job_class]]
    name = "pretrain-70b"
    model = "llama-3-70b"          # a model preset or file (llmcap models)
    gpus = [256, 512]              # sizes, drawn uniformly (an integer for one size)
    arrivals_per_day = 0.2         # Poisson arrivals
    tokens = 5e10                  # mean training tokens per job
    tokens_distribution = "lognormal"   # fixed | exponential | lognormal
    tokens_sigma = 0.5             # lognormal shape (of ln tokens); the mean stays `tokens`
    seq_len = 4096
    global_batch = 1024            # sequences per step (optional; default ~4M tokens)
    precision = "bf16"
    priority = 0                   # higher first under --policy priority
    preemptible = true
    checkpoint_interval_h = 1.0
    restart_min = 10               # load checkpoint + warm-up before the first step
    pools = ["h100-sxm"]           # optional: pools it may run on (default all)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwprofiles.errors import UserError
from hwprofiles.inputs import read_toml
from hwprofiles.presets import check_keys, integer, number
from simulator.parallel import PRECISIONS

MAX_ARRIVALS_PER_DAY = 1e5
"""Bounded work (docs/robustness.md): at most 10^5 jobs a day per class, ~100x the busiest
published trace (Acme, Hu et al. NSDI 2024: ~1,000 jobs/day on 4,704 GPUs); each job is an
event in the simulation, so a typo of 1e300 must not try to draw 10^305 jobs."""

ROOT_KEYS = {"description", "source", "job_class"}
CLASS_KEYS = {
    "name",
    "model",
    "gpus",
    "arrivals_per_day",
    "tokens",
    "tokens_distribution",
    "tokens_sigma",
    "seq_len",
    "global_batch",
    "precision",
    "priority",
    "preemptible",
    "checkpoint_interval_h",
    "restart_min",
    "pools",
    "description",
}
DISTRIBUTIONS = ("fixed", "exponential", "lognormal")
DAY_S = 86400.0


@dataclass(frozen=True)
class JobClass:
    """One kind of job in the mix (validated; SI units inside)."""

    name: str
    model: str
    gpus: tuple[int, ...]
    arrivals_per_s: float
    tokens: float
    tokens_distribution: str = "fixed"
    tokens_sigma: float = 0.0
    seq_len: int = 4096
    global_batch: int | None = None
    precision: str = "bf16"
    priority: int = 0
    preemptible: bool = False
    checkpoint_interval_s: float = 3600.0
    restart_s: float = 600.0
    pools: tuple[str, ...] | None = None
    description: str = ""


@dataclass(frozen=True)
class JobMix:
    classes: tuple[JobClass, ...]
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class Draw:
    """One sampled job before the step model prices it."""

    job_class: JobClass
    submit_s: float
    gpus: int
    tokens: float


def _class(raw: Any, i: int) -> JobClass:
    where = f"job_class[{i}]"
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: {raw!r} must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{where}.name: {name!r} must be a non-empty string")
    where = f"job_class.{name}"
    check_keys(raw, CLASS_KEYS, where)
    model = raw.get("model")
    if not isinstance(model, str) or not model.strip():
        raise UserError(f"{where}.model: {model!r} must be a model preset name or file")
    sizes = raw.get("gpus")
    sizes = [sizes] if isinstance(sizes, int) and not isinstance(sizes, bool) else sizes
    if not isinstance(sizes, list) or not sizes:
        raise UserError(f"{where}.gpus: {raw.get('gpus')!r} must be an integer or a list of them")
    for g in sizes:
        if isinstance(g, bool) or not isinstance(g, int) or g < 1:
            raise UserError(f"{where}.gpus: {g!r} must be an integer >= 1")
    dist = raw.get("tokens_distribution", "fixed")
    if dist not in DISTRIBUTIONS:
        raise UserError(f"{where}.tokens_distribution: {dist!r} must be one of {DISTRIBUTIONS}")
    precision = raw.get("precision", "bf16")
    if precision not in PRECISIONS:
        raise UserError(f"{where}.precision: {precision!r} must be one of {PRECISIONS}")
    priority = raw.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise UserError(f"{where}.priority: {priority!r} must be an integer")
    pre = raw.get("preemptible", False)
    if not isinstance(pre, bool):
        raise UserError(f"{where}.preemptible: {pre!r} must be true or false")
    pools = raw.get("pools")
    if pools is not None and (
        not isinstance(pools, list) or not pools or not all(isinstance(p, str) for p in pools)
    ):
        raise UserError(f"{where}.pools: {pools!r} must be a non-empty list of pool names")
    gb = integer(raw, "global_batch", where) if "global_batch" in raw else None
    desc = raw.get("description", "")
    return JobClass(
        name=name,
        model=model,
        gpus=tuple(sizes),
        arrivals_per_s=number(raw, "arrivals_per_day", where, maximum=MAX_ARRIVALS_PER_DAY) / DAY_S,
        tokens=number(raw, "tokens", where),
        tokens_distribution=dist,
        tokens_sigma=number(raw, "tokens_sigma", where, strict=False)
        if "tokens_sigma" in raw
        else 0.0,
        seq_len=integer(raw, "seq_len", where) if "seq_len" in raw else 4096,
        global_batch=gb,
        precision=precision,
        priority=priority,
        preemptible=pre,
        checkpoint_interval_s=(
            number(raw, "checkpoint_interval_h", where) * 3600.0
            if "checkpoint_interval_h" in raw
            else 3600.0
        ),
        restart_s=(
            number(raw, "restart_min", where, strict=False) * 60.0
            if "restart_min" in raw
            else 600.0
        ),
        pools=tuple(pools) if pools is not None else None,
        description=str(desc),
    )


def parse_mix(raw: Mapping[str, Any], where: str = "jobs") -> JobMix:
    """A validated `JobMix` from a parsed TOML document."""
    check_keys(raw, ROOT_KEYS, where)
    classes = raw.get("job_class")
    if not isinstance(classes, list) or not classes:
        raise UserError(f"{where}.job_class: missing (at least one [[job_class]] table)")
    out = tuple(_class(c, i) for i, c in enumerate(classes))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise UserError(f"{where}.job_class: names {names} must be unique")
    return JobMix(out, str(raw.get("description", "")), str(raw.get("source", "")))


def read_mix(path: str | Path) -> JobMix:
    """Read and validate a job-mix TOML file."""
    return parse_mix(read_toml(path, "jobs"), "jobs")


def _tokens(c: JobClass, rng: np.random.Generator, n: int) -> np.ndarray:
    if c.tokens_distribution == "exponential":
        return rng.exponential(c.tokens, n)
    if c.tokens_distribution == "lognormal" and c.tokens_sigma > 0:
        s = c.tokens_sigma  # mean of a lognormal is exp(mu + s^2/2): keep it at `tokens`
        return rng.lognormal(math.log(c.tokens) - s * s / 2, s, n)
    return np.full(n, c.tokens)


def sample(mix: JobMix, horizon_s: float, seed: int) -> list[Draw]:
    """Jobs submitted in [0, horizon_s): Poisson arrivals per class, sizes and lengths drawn.

    Each class draws from its own stream (seed, class index), so adding a class does not change
    the jobs of the others.
    """
    out: list[Draw] = []
    for i, c in enumerate(mix.classes):
        rng = np.random.default_rng([seed, i])
        expected = c.arrivals_per_s * horizon_s
        n = int(expected + 10 * math.sqrt(expected) + 10)
        times = np.cumsum(rng.exponential(1.0 / c.arrivals_per_s, n))
        while times[-1] < horizon_s:  # pragma: no cover - 10 sigma short
            more = np.cumsum(rng.exponential(1.0 / c.arrivals_per_s, n)) + times[-1]
            times = np.concatenate([times, more])
        times = times[times < horizon_s]
        sizes = rng.choice(np.asarray(c.gpus), size=len(times))
        tokens = _tokens(c, rng, len(times))
        out += [
            Draw(c, float(t), int(g), float(k))
            for t, g, k in zip(times, sizes, tokens, strict=True)
        ]
    out.sort(key=lambda d: (d.submit_s, d.job_class.name))
    return out
