"""Stragglers: per-device speed spread and transient slowdowns, and what they cost a synchronous
training step, in closed form (order statistics).

A synchronous step runs at the pace of its slowest rank: every TP group waits at its
collectives, every replica at the gradient all-reduce, every pipeline stage for its neighbour.
So the step's compute stretches by the *maximum* of the ranks' slowdown factors, and that
maximum grows with the number of ranks (the tail at scale: Dean & Barroso, "The Tail at Scale",
CACM 56(2), 2013 - with a 1 % chance of being slow, one of 100 servers in a fan-out makes 63 %
of the requests slow).

Per device, a slowdown factor X = exp(sigma Z) * B:

- a persistent speed spread exp(sigma Z), Z ~ N(0, 1), drawn once per device (manufacturing
  and power management: `DEVICE_SPEED_SIGMA`);
- a transient factor B: in any step the device is slowed by `factor` with `probability`
  (one kind at most per device and step; `TRANSIENTS`), else B = 1.

The expected maximum over n independent devices is exact by numerical integration,
``E[max] = integral over x > 0 of (1 - F(x)^n) dx`` with the mixture CDF
``F(x) = sum_k P(B = b_k) Phi(ln(x / b_k) / sigma)``; for the spread alone its textbook
asymptote is ``E[max of n N(0,1)] ~ sqrt(2 ln n)`` (Cramér 1946; the leading term of the
Gumbel limit), i.e. a factor ``~ exp(sigma sqrt(2 ln n))``, and for one transient kind alone
``E[max] = 1 + (factor - 1) (1 - (1 - p)^n)``.

The SimPy engine draws the same factors per device (`simulator.des.run.simulate_step`,
``speed_sigma`` and ``slowdowns``) and simulates the slowest replica; `analysis.stragglers`
sets the two side by side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hwprofiles.errors import UserError
from hwprofiles.profile import HardwareProfile

DEVICE_SPEED_SIGMA = 0.025
"""Lognormal sigma of persistent per-GPU speed (dimensionless). Sinha et al., "Not All GPUs Are
Created Equal: Characterizing Variability in Large-Scale, Accelerator-Rich Systems" (SC22,
arXiv 2208.11035): 8 % average (max 22 %) performance variation among GPUs of one SKU in five
clusters, outliers up to 1.5x slower than the median GPU. Mapping: +-2.33 sigma (1st to 99th
percentile) = +-6 %, about that 8 % spread; the mapping is ours (modelled, not fitted)."""


@dataclass(frozen=True)
class Slowdown:
    """A transient slowdown: in a step, a device is slower by `factor` with `probability`."""

    name: str
    probability: float
    """Chance per device and step (dimensionless)."""
    factor: float
    """Duration multiplier while slowed (>= 1)."""
    applies_to: str = "compute"
    """"compute" (the device's kernels) or "network" (its NIC's transfers)."""
    source: str = ""

    def __post_init__(self) -> None:
        if not (0.0 <= self.probability < 1.0) or not math.isfinite(self.probability):
            raise UserError(
                f"slowdown {self.name}.probability", self.probability, "must be in [0, 1)"
            )
        if not (self.factor >= 1.0 and math.isfinite(self.factor)):
            raise UserError(f"slowdown {self.name}.factor", self.factor, "must be >= 1")
        if self.applies_to not in ("compute", "network"):
            raise UserError(
                f"slowdown {self.name}.applies_to", self.applies_to, "must be compute or network"
            )


TRANSIENTS = {
    "thermal": Slowdown(
        "thermal",
        1e-4,
        1.5,
        "compute",
        "factor: Sinha et al. SC22 (arXiv 2208.11035), slowest GPUs 1.5x the median, tied to "
        "power and thermal management; probability per device-step: an assumption",
    ),
    "noisy-neighbour": Slowdown(
        "noisy-neighbour",
        1e-4,
        1.2,
        "compute",
        "Wu et al. 2024, FALCON (arXiv 2410.12588): CPU contention among the computation "
        "fail-slows of a 10,000-GPU production cluster, lasting tens of seconds to hours; "
        "factor and probability: assumptions",
    ),
    "slow-nic": Slowdown(
        "slow-nic",
        1e-5,
        2.0,
        "network",
        "Wu et al. 2024, FALCON (arXiv 2410.12588): cross-node networking the leading cause of "
        "fail-slows, which together lengthened the average job 1.34x; factor and probability: "
        "assumptions",
    ),
}
"""Illustrative transient slowdowns. Their *kinds* and sizes come from the sources named; the
per-step probabilities are assumptions to be replaced by a cluster's own telemetry."""


def _grid(sigma: float, lo: float, hi: float, points: int = 8001) -> np.ndarray:
    return np.linspace(lo - 9.0 * sigma, hi + 9.0 * sigma, points)


def _phi_cdf(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(z)


def expected_max_factor(
    n: int, sigma: float, transients: Sequence[tuple[float, float]] = ()
) -> float:
    """E[max over n devices of exp(sigma Z) * B] (B: (probability, factor) transients)."""
    if n < 1:
        raise UserError("ranks", n, "must be >= 1")
    if sigma < 0:
        raise UserError("sigma", sigma, "must be >= 0")
    p_slow = sum(p for p, _ in transients)
    if p_slow >= 1.0:
        raise UserError("slowdowns", list(transients), "probabilities must sum to < 1")
    levels = [(1.0 - p_slow, 1.0), *((p, f) for p, f in transients if p > 0)]
    if sigma == 0.0:
        vals = sorted({b for _, b in levels})
        cdf_prev, out = 0.0, 0.0
        for v in vals:
            cdf = sum(p for p, b in levels if b <= v) ** n
            out += v * (cdf - cdf_prev)
            cdf_prev = cdf
        return out
    logs = [math.log(b) for _, b in levels]
    u = _grid(sigma, min(logs), max(logs))
    f = sum(p * _phi_cdf((u - lb) / sigma) for (p, _), lb in zip(levels, logs, strict=True))
    integrand = (1.0 - f**n) * np.exp(u)
    return float(math.exp(u[0]) + np.trapezoid(integrand, u))


def expected_max_normal(n: int) -> float:
    """E[max of n independent N(0, 1)] by numerical integration (0 for n = 1)."""
    if n < 1:
        raise UserError("ranks", n, "must be >= 1")
    z = np.linspace(-9.0, 9.0, 8001)
    cdf = _phi_cdf(z)
    # E[M] = integral of (1 - F^n) over z > 0 minus integral of F^n over z < 0
    pos, neg = z >= 0, z <= 0
    return float(np.trapezoid(1.0 - cdf[pos] ** n, z[pos]) - np.trapezoid(cdf[neg] ** n, z[neg]))


def expected_max_normal_asymptote(n: int) -> float:
    """``sqrt(2 ln n)``: the leading term of E[max of n N(0, 1)] (0 for n = 1)."""
    return math.sqrt(2.0 * math.log(n)) if n > 1 else 0.0


def step_with_stragglers(
    step_s: float,
    stretched_s: float,
    n: int,
    sigma: float = DEVICE_SPEED_SIGMA,
    transients: Sequence[Slowdown] = (),
    exposed_comm_s: float = 0.0,
) -> float:
    """Expected step time when `stretched_s` of `step_s` (compute on the critical path) runs at
    the slowest of `n` ranks' pace; network transients stretch `exposed_comm_s` the same way."""
    comp = [(t.probability, t.factor) for t in transients if t.applies_to == "compute"]
    net = [(t.probability, t.factor) for t in transients if t.applies_to == "network"]
    out = step_s + stretched_s * (expected_max_factor(n, sigma, comp) - 1.0)
    if net and exposed_comm_s > 0:
        out += exposed_comm_s * (expected_max_factor(n, 0.0, net) - 1.0)
    return out


def _nics(hw: HardwareProfile, gpus: int) -> int:
    return math.ceil(gpus / hw.node.gpus_per_node) * hw.node.nics_per_node


def slow_ring_distribution(
    nics: int, transients: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """(probability, factor) of the slowest of `nics` NICs in one step (factor 1: none slow).

    Each NIC independently is slowed by one kind with its probability (at most one kind); a
    ring crossing every NIC runs at the slowest one's rate.
    """
    p_slow = sum(p for p, _ in transients)
    if p_slow >= 1.0:
        raise UserError("nic_slowdowns", list(transients), "probabilities must sum to < 1")
    levels = sorted({1.0, *(f for _, f in transients)})
    out, prev = [], 0.0
    for f in levels:
        cdf = (1.0 - p_slow + sum(p for p, g in transients if 1.0 < g <= f)) ** nics
        out.append((cdf - prev, f))
        prev = cdf
    return out


def slowed_nics(hw: HardwareProfile, factor: float) -> HardwareProfile:
    """`hw` with its scale-out links `factor` times slower (factor 1: unchanged)."""
    if factor == 1.0:
        return hw
    link = hw.node.scale_out
    slow = replace(
        link,
        bandwidth_bytes_per_s=link.bandwidth_bytes_per_s / factor,
        source=f"{link.source}; slowed x{factor:g} (a slow NIC in the ring)",
    )
    return replace(hw, node=replace(hw.node, scale_out=slow))


def slow_nic_profile(
    hw: HardwareProfile, gpus: int, transients: Sequence[tuple[float, float]], seed: int
) -> HardwareProfile:
    """One step's draw: each NIC of the job slowed with its probability; every ring then runs
    at the slowest NIC's rate (modelled: all scale-out traffic takes that rate)."""
    bad = [x for x in transients if not (0 <= x[0] < 1 and x[1] >= 1)]
    if bad or sum(x[0] for x in transients) >= 1:
        raise UserError(
            "nic_slowdowns", list(transients), "need probabilities in [0, 1) and factors >= 1"
        )
    u = np.random.default_rng([seed, 0x51C]).random(_nics(hw, gpus))
    factor, edge = 1.0, 0.0
    for prob, f in transients:
        if np.any((u >= edge) & (u < edge + prob)):
            factor = max(factor, f)
        edge += prob
    return slowed_nics(hw, factor)
