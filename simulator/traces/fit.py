"""A latency distribution for the own times a service showed in the traces.

Lognormal by default (maximum likelihood: the mean and standard deviation of the logs). The fit
is checked at the p50, p90, p99 (from 100 samples) and p99.9 (from 1,000): it is **poor** when
a fitted quantile lies outside the 99.9% confidence interval of the sample's quantile (order
statistics: binomial ranks) and more than 5% away from it. A poor fit gives way to the
**empirical** distribution (the samples themselves, resampled), and the comment says which
quantile failed. Samples all equal give a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CHECKED = ((0.5, 1), (0.9, 1), (0.99, 100), (0.999, 1000))  # (quantile, samples needed)
CONFIDENCE = 0.999
TOLERANCE = 0.05  # a fit closer than this (relative) to the sample quantile is never poor


@dataclass
class Fit:
    """The chosen distribution (``dist`` and its keys, as in a scenario) and why."""

    dist: dict
    kind: str  # lognormal | empirical | constant
    checks: list[tuple[float, float, float]]  # (quantile, fitted ms, sample ms)
    why: str  # a one-line reason when the fit was poor, else ""


def fit_latency(samples_ms: np.ndarray) -> Fit:
    """The distribution for these own times (ms) (see the module docstring)."""
    x = np.sort(np.asarray(samples_ms, dtype=float))
    if len(x) == 0:
        raise ValueError("no samples to fit")
    if x[-1] - x[0] <= 1e-5 + 1e-4 * x[len(x) // 2]:  # equal but for ns rounding
        return Fit({"dist": "constant", "ms": _round(float(x[0]))}, "constant", [], "")
    positive = x[x > 0]
    if len(positive) < 2 or positive[-1] - positive[0] <= 1e-12:
        return _empirical(x, [], "too few distinct positive samples for a lognormal")
    logs = np.log(positive)
    mu, sigma = float(logs.mean()), float(logs.std())
    fitted = stats.lognorm(s=sigma, scale=np.exp(mu))
    checks, why = [], ""
    for q, needed in CHECKED:
        if len(x) < needed:
            continue
        have = float(np.quantile(x, q))
        model = float(fitted.ppf(q))
        checks.append((q, model, have))
        lo, hi = _quantile_interval(x, q)
        off = abs(model - have) / max(have, 1e-9)
        if not why and not (lo <= model <= hi) and off > TOLERANCE:
            why = (
                f"lognormal p{quantile_label(q)} {model:.3g} ms is outside the sample's "
                f"{CONFIDENCE:.1%} interval [{lo:.3g}, {hi:.3g}] ms"
            )
    if why:
        return _empirical(x, checks, why)
    dist = {"dist": "lognormal", "median_ms": _round(float(np.exp(mu))), "sigma": round(sigma, 4)}
    return Fit(dist, "lognormal", checks, "")


def _empirical(x: np.ndarray, checks: list, why: str) -> Fit:
    empirical = [(q, have, have) for q, _model, have in checks]
    return Fit({"dist": "empirical"}, "empirical", empirical, why)


def _quantile_interval(x: np.ndarray, q: float) -> tuple[float, float]:
    """The ``CONFIDENCE`` interval of quantile ``q`` from sorted samples ``x`` (binomial
    ranks of the order statistics)."""
    n = len(x)
    alpha = (1 - CONFIDENCE) / 2
    lo = int(stats.binom.ppf(alpha, n, q))
    hi = int(stats.binom.ppf(1 - alpha, n, q))
    lower = float(x[lo - 1]) if lo >= 1 else 0.0  # the lo-th smallest (1-based)
    upper = float(x[hi]) if hi < n else float("inf")  # beyond the largest: unbounded
    return lower, upper


def quantile_label(q: float) -> str:
    """0.99 -> "99", 0.999 -> "99.9": a quantile as its percentile's name (p99, p99.9)."""
    return f"{q * 100:.1f}".rstrip("0").rstrip(".")


def _round(ms: float) -> float:
    """Four significant figures."""
    return float(f"{ms:.4g}")
