"""Fits that turn measurements into model parameters (scipy.optimize.curve_fit).

- α-β: ``t(S) = alpha + beta * S`` per collective and world size (Hockney's model), fitted to
  relative error so that small messages (which fix alpha) weigh as much as large ones.
- Efficiency: achieved fraction of peak versus operation size as a Hill curve
  ``f(s) = f_max / (1 + (s_half / s)^p)``. It rises monotonically with size (fixed per-call
  overheads are amortised; Amdahl-like) and saturates at f_max, which is what the models need
  to interpolate; cache effects that make mid-sized operations briefly faster are averaged
  out, and the fit's relative RMS error is kept so a poor fit is visible.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

MIN_FRACTION = 1e-4  # EfficiencyCurve needs fractions > 0; clamp the far-left tail here
MIN_SIZES_FOR_EXPONENT = 5
"""Below this many distinct sizes the Hill exponent is fixed at 1: ``f = f_max s/(s + s_half)``,
the curve of a fixed per-call overhead amortised over the operation."""


@dataclass(frozen=True)
class AlphaBeta:
    """``t = alpha_s + beta_s_per_byte * bytes``; `rel_rms` is the fit's relative RMS error."""

    alpha_s: float
    beta_s_per_byte: float
    rel_rms: float
    points: int


@dataclass(frozen=True)
class HillFit:
    """``f(s) = max_fraction / (1 + (half_size / s)^exponent)`` (s in FLOP or bytes)."""

    max_fraction: float
    half_size: float
    exponent: float
    rel_rms: float
    min_size: float
    """Smallest measured size: the curve is sampled from a decade below..."""
    max_size: float
    """...to a decade above the largest measured size, and clamped outside."""

    def __call__(self, size: float | np.ndarray) -> np.ndarray:
        s = np.asarray(size, dtype=float)
        return self.max_fraction / (1.0 + (self.half_size / s) ** self.exponent)

    def sample(self, points: int = 25) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(sizes, fractions) on a log grid, strictly ascending sizes, fractions in (0, 1]."""
        lo, hi = math.log10(self.min_size / 10), math.log10(self.max_size * 10)
        sizes = np.logspace(lo, hi, points)
        fr = np.clip(self(sizes), MIN_FRACTION, 1.0)
        fr = np.maximum.accumulate(fr)  # monotone even after clipping/rounding
        return tuple(float(s) for s in sizes), tuple(float(f) for f in fr)


def _rel_rms(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((pred - y) / y) ** 2)))


def fit_alpha_beta(
    sizes: Sequence[float], seconds: Sequence[float], relative: bool = True
) -> AlphaBeta:
    """Least-relative-error fit of ``t = alpha + beta * S`` with alpha, beta >= 0 (with
    `relative=False`, least absolute error: the largest messages weigh the most).

    Needs at least two distinct sizes; sizes in bytes, times in seconds.
    """
    x = np.asarray(sizes, dtype=float)
    y = np.asarray(seconds, dtype=float)
    if len(np.unique(x)) < 2:
        raise ValueError(f"alpha-beta fit: needs >= 2 distinct message sizes, got {x.tolist()}")
    if np.any(y <= 0):
        raise ValueError(f"alpha-beta fit: times must be > 0 s, got {y.tolist()}")
    slope = max(float(np.polyfit(x, y, 1)[0]), 1e-15)
    p0 = (max(float(y.min()) * 0.5, 1e-9), slope)
    with warnings.catch_warnings():  # the covariance is not used
        warnings.simplefilter("ignore", OptimizeWarning)
        (alpha, beta), _ = curve_fit(
            lambda s, a, b: a + b * s,
            x,
            y,
            p0=p0,
            sigma=y if relative else None,
            bounds=([0.0, 0.0], [np.inf, np.inf]),
        )
    return AlphaBeta(float(alpha), float(beta), _rel_rms(alpha + beta * x, y), len(x))


def fit_efficiency(sizes: Sequence[float], fractions: Sequence[float]) -> HillFit:
    """Fit a monotone saturating efficiency curve to (size, achieved fraction) points.

    Fractions must be in (0, 1] (achieved / measured peak); at least two distinct sizes.
    """
    x = np.asarray(sizes, dtype=float)
    y = np.asarray(fractions, dtype=float)
    if len(np.unique(x)) < 2:
        raise ValueError(f"efficiency fit: needs >= 2 distinct sizes, got {x.tolist()}")
    if np.any(y <= 0) or np.any(y > 1 + 1e-9):
        raise ValueError(f"efficiency fit: fractions must be in (0, 1], got {y.tolist()}")
    lx = np.log(x)

    def model(logs: np.ndarray, fmax: float, log_half: float, p: float) -> np.ndarray:
        return fmax / (1.0 + np.exp(p * (log_half - logs)))

    lo_b, hi_b = [1e-6, float(lx.min()) - 12], [1.0, float(lx.max()) + 12]
    p0 = [float(y.max()), float(np.median(lx))]
    free_exponent = len(np.unique(x)) >= MIN_SIZES_FOR_EXPONENT
    with warnings.catch_warnings():  # the covariance is not used
        warnings.simplefilter("ignore", OptimizeWarning)
        if free_exponent:
            (fmax, log_half, p), _ = curve_fit(
                model, lx, y, p0=[*p0, 1.0], sigma=y, bounds=([*lo_b, 0.1], [*hi_b, 4.0]),
                maxfev=20_000,
            )  # fmt: skip
        else:  # too few sizes to pin three parameters: fixed per-call overhead, p = 1
            p = 1.0
            (fmax, log_half), _ = curve_fit(
                lambda s, f, h: model(s, f, h, 1.0), lx, y, p0=p0, sigma=y, bounds=(lo_b, hi_b)
            )
    pred = model(lx, fmax, log_half, p)
    lo, hi = float(x.min()), float(x.max())
    return HillFit(float(fmax), math.exp(log_half), float(p), _rel_rms(pred, y), lo, hi)
