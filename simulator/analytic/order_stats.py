"""Fan-out and order statistics: how the slowest (or ``k``-th fastest) of ``n`` parallel calls
behaves, given one call's latency distribution."""

from __future__ import annotations

import math

import numpy as np

from .checks import Ppf, integer, positive, probability, scalar


def fanout_slow_probability(p: float, n: int) -> float:
    """Probability that at least one of ``n`` independent calls is slow: ``1 - (1 - p)**n``.

    ``p`` is the per-call slow probability (dimensionless). 100 calls at 1 % slow -> 0.634.
    """
    p = probability("p", p)
    n = integer("n", n, 1)
    return 1.0 if p == 1.0 else -math.expm1(n * math.log1p(-p))


def kth_of_n_quantile(ppf: Ppf, q: float, k: int, n: int) -> float:
    """``q``-quantile of the ``k``-th smallest of ``n`` iid samples with inverse CDF ``ppf``.

    Uses ``U_(k) ~ Beta(k, n - k + 1)``: the answer is ``ppf(beta.ppf(q, k, n - k + 1))``, in the
    units of ``ppf`` (ms for latencies). ``k = n`` is the maximum (a fan-out waiting for all).
    """
    from scipy.special import betaincinv

    q = probability("q", q)
    n = integer("n", n, 1)
    k = integer("k", k, 1, n)
    return scalar(ppf(float(betaincinv(k, n - k + 1, q))))


def max_of_n_quantile(ppf: Ppf, q: float, n: int) -> float:
    """``q``-quantile of the maximum of ``n`` iid samples: ``ppf(q ** (1 / n))`` (ppf units)."""
    q = probability("q", q)
    n = integer("n", n, 1)
    return scalar(ppf(q ** (1.0 / n)))


def kth_of_n_cdf(cdf_value: float, k: int, n: int) -> float:
    """``P(X_(k) <= t)`` for the ``k``-th smallest of ``n`` iid samples, given ``F(t) = cdf_value``.

    That is ``P(Binomial(n, F(t)) >= k)``, the regularized incomplete beta ``I_F(k, n - k + 1)``.
    """
    from scipy.special import betainc

    f = probability("cdf_value", cdf_value)
    n = integer("n", n, 1)
    k = integer("k", k, 1, n)
    return float(betainc(k, n - k + 1, f))


def kth_of_n_mean(ppf: Ppf, k: int, n: int) -> float:
    """``E[X_(k)]`` of the ``k``-th smallest of ``n`` iid samples with inverse CDF ``ppf``.

    Integrates ``ppf(u) * Beta(k, n - k + 1).pdf(u)`` over the open interval (0, 1), so a ppf
    that is infinite at 0 or 1 (exponential, normal, ...) is fine. Result in ``ppf`` units.
    """
    from scipy.integrate import quad
    from scipy.special import betaincinv, betaln

    n = integer("n", n, 1)
    k = integer("k", k, 1, n)
    a, b = k, n - k + 1
    log_norm = betaln(a, b)

    def integrand(u: float) -> float:
        log_pdf = (a - 1) * math.log(u) + (b - 1) * math.log1p(-u) - log_norm
        return scalar(ppf(u)) * math.exp(log_pdf)

    # Break points at Beta quantiles so quad finds the (possibly very narrow) peak.
    cuts = betaincinv(a, b, np.array([1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999, 1 - 1e-6]))
    points = sorted({float(u) for u in cuts if 0.0 < u < 1.0})
    value, _ = quad(integrand, 0.0, 1.0, points=points or None, limit=500)
    return float(value)


def exponential_max_mean_ms(mean_ms: float, n: int) -> float:
    """Mean of the maximum of ``n`` iid exponentials with mean ``mean_ms``: ``mean_ms * H_n`` ms."""
    from scipy.special import digamma

    mean_ms = positive("mean_ms", mean_ms)
    n = integer("n", n, 1)
    return mean_ms * (float(digamma(n + 1)) + float(np.euler_gamma))  # H_n


def critical_branch_shares(
    cdfs: list, q: float, upper_ms: float, points: int = 200_001
) -> np.ndarray:
    """For a fan-in that waits for all of its independent, contention-free branches (CDFs
    ``cdfs``, in ms): among the requests slower than the fan-in's ``q``-quantile, the share
    whose slowest branch (the critical one) was each branch.

    Branch i is critical for a request slower than t with probability
    ``integral over x > t of dF_i(x) x prod_{j != i} F_j(x)``, divided by ``1 - q``; evaluated
    on a grid of ``points`` over [0, ``upper_ms``], which should hold all but a negligible
    part of the slowest branch's mass."""
    x = np.linspace(0.0, positive("upper_ms", upper_ms), integer("points", points, 3))
    probability("q", q)
    cdf = np.array([np.clip(np.asarray(c(x), dtype=float), 0.0, 1.0) for c in cdfs])
    at_max = cdf.prod(axis=0)  # the CDF of the slowest branch
    start = int(np.searchsorted(at_max, q))
    mid = (cdf[:, 1:] + cdf[:, :-1]) / 2.0
    step = np.diff(cdf, axis=1)
    shares = np.empty(len(cdfs))
    for i in range(len(cdfs)):
        others = np.prod(np.delete(mid, i, axis=0), axis=0) if len(cdfs) > 1 else 1.0
        shares[i] = float((step[i] * others)[start:].sum())
    return shares / shares.sum()
