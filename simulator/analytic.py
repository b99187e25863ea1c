"""Closed-form estimates for fan-out tail latency, queueing and retries/hedging.

Plain functions for capacity planners and for the simulator's theory tests. Units are in the
names: rates are requests per second (``_rps``), times are milliseconds (``_ms``); counts and
probabilities are dimensionless. Bad arguments raise :class:`ValueError` naming the argument and
its value. scipy is imported lazily inside the functions that need it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

Ppf = Callable[[float], float]
"""Inverse CDF (quantile function) of one call's latency; numpy-vectorised callables are fine."""


# --- argument checks ------------------------------------------------------------------------


def _real(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    v = _real(name, value)
    if not (0.0 < v < math.inf or (allow_zero and v == 0.0)):
        raise ValueError(
            f"{name} must be {'>=' if allow_zero else '>'} 0 and finite, got {value!r}"
        )
    return v


def _probability(name: str, value: float) -> float:
    v = _real(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def _integer(name: str, value: int, minimum: int, maximum: int | None = None) -> int:
    ok = isinstance(value, Integral) and not isinstance(value, bool)
    if not ok or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def _scalar(x: object) -> float:
    """A float from a ppf result that may be a Python float or a size-1 numpy array."""
    return float(np.asarray(x, dtype=float).reshape(()))


# --- fan-out and order statistics -----------------------------------------------------------


def fanout_slow_probability(p: float, n: int) -> float:
    """Probability that at least one of ``n`` independent calls is slow: ``1 - (1 - p)**n``.

    ``p`` is the per-call slow probability (dimensionless). 100 calls at 1 % slow -> 0.634.
    """
    p = _probability("p", p)
    n = _integer("n", n, 1)
    return 1.0 if p == 1.0 else -math.expm1(n * math.log1p(-p))


def kth_of_n_quantile(ppf: Ppf, q: float, k: int, n: int) -> float:
    """``q``-quantile of the ``k``-th smallest of ``n`` iid samples with inverse CDF ``ppf``.

    Uses ``U_(k) ~ Beta(k, n - k + 1)``: the answer is ``ppf(beta.ppf(q, k, n - k + 1))``, in the
    units of ``ppf`` (ms for latencies). ``k = n`` is the maximum (a fan-out waiting for all).
    """
    from scipy.special import betaincinv

    q = _probability("q", q)
    n = _integer("n", n, 1)
    k = _integer("k", k, 1, n)
    return _scalar(ppf(float(betaincinv(k, n - k + 1, q))))


def max_of_n_quantile(ppf: Ppf, q: float, n: int) -> float:
    """``q``-quantile of the maximum of ``n`` iid samples: ``ppf(q ** (1 / n))`` (ppf units)."""
    q = _probability("q", q)
    n = _integer("n", n, 1)
    return _scalar(ppf(q ** (1.0 / n)))


def kth_of_n_cdf(cdf_value: float, k: int, n: int) -> float:
    """``P(X_(k) <= t)`` for the ``k``-th smallest of ``n`` iid samples, given ``F(t) = cdf_value``.

    That is ``P(Binomial(n, F(t)) >= k)``, the regularized incomplete beta ``I_F(k, n - k + 1)``.
    """
    from scipy.special import betainc

    f = _probability("cdf_value", cdf_value)
    n = _integer("n", n, 1)
    k = _integer("k", k, 1, n)
    return float(betainc(k, n - k + 1, f))


def kth_of_n_mean(ppf: Ppf, k: int, n: int) -> float:
    """``E[X_(k)]`` of the ``k``-th smallest of ``n`` iid samples with inverse CDF ``ppf``.

    Integrates ``ppf(u) * Beta(k, n - k + 1).pdf(u)`` over the open interval (0, 1), so a ppf
    that is infinite at 0 or 1 (exponential, normal, ...) is fine. Result in ``ppf`` units.
    """
    from scipy.integrate import quad
    from scipy.special import betaincinv, betaln

    n = _integer("n", n, 1)
    k = _integer("k", k, 1, n)
    a, b = k, n - k + 1
    log_norm = betaln(a, b)

    def integrand(u: float) -> float:
        log_pdf = (a - 1) * math.log(u) + (b - 1) * math.log1p(-u) - log_norm
        return _scalar(ppf(u)) * math.exp(log_pdf)

    # Break points at Beta quantiles so quad finds the (possibly very narrow) peak.
    cuts = betaincinv(a, b, np.array([1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999, 1 - 1e-6]))
    points = sorted({float(u) for u in cuts if 0.0 < u < 1.0})
    value, _ = quad(integrand, 0.0, 1.0, points=points or None, limit=500)
    return float(value)


def exponential_max_mean_ms(mean_ms: float, n: int) -> float:
    """Mean of the maximum of ``n`` iid exponentials with mean ``mean_ms``: ``mean_ms * H_n`` ms."""
    from scipy.special import digamma

    mean_ms = _positive("mean_ms", mean_ms)
    n = _integer("n", n, 1)
    return mean_ms * (float(digamma(n + 1)) + float(np.euler_gamma))  # H_n


def timeout_failure_probability(cdf_at_timeout: float, n: int) -> float:
    """Probability a fan-out of ``n`` calls fails because any call times out: ``1 - F(T)**n``.

    ``cdf_at_timeout`` is ``F(T)``, the probability one attempt finishes within its timeout.
    """
    f = _probability("cdf_at_timeout", cdf_at_timeout)
    n = _integer("n", n, 1)
    return 1.0 if f == 0.0 else -math.expm1(n * math.log(f))


def retry_attempts_per_call(p_fail: float, max_retries: int) -> float:
    """Expected attempts per call with up to ``max_retries`` retries, each failing w.p. ``p_fail``.

    ``(1 - p**(r + 1)) / (1 - p)``; ``r + 1`` when ``p == 1``. Multiply by the call rate (rps) to
    get the backend load (rps) including retries.
    """
    p = _probability("p_fail", p_fail)
    r = _integer("max_retries", max_retries, 0)
    if p == 0.0:
        return 1.0
    if p == 1.0:
        return float(r + 1)
    log_p = math.log(p)
    return math.expm1((r + 1) * log_p) / math.expm1(log_p)


# --- queues ---------------------------------------------------------------------------------


def erlang_b(offered_load: float, servers: int) -> float:
    """Erlang B: blocking probability of M/M/c/c with ``offered_load = lambda / mu`` Erlangs.

    Uses the stable recursion ``B_j = A B_{j-1} / (j + A B_{j-1})``.
    """
    a = _positive("offered_load", offered_load, allow_zero=True)
    c = _integer("servers", servers, 1)
    b = 1.0
    for j in range(1, c + 1):
        b = a * b / (j + a * b)
    return b


def erlang_c(offered_load: float, servers: int) -> float:
    """Erlang C: probability an arrival waits in M/M/c, ``offered_load = lambda / mu`` Erlangs.

    Computed from Erlang B as ``c B / (c - A (1 - B))``; needs ``offered_load < servers``.
    """
    a = _positive("offered_load", offered_load, allow_zero=True)
    c = _integer("servers", servers, 1)
    if a >= c:
        raise ValueError(
            f"unstable queue: offered_load must be < servers, got offered_load={offered_load!r}, "
            f"servers={servers!r} (utilization {a / c:.4g} >= 1)"
        )
    b = erlang_b(a, c)
    return c * b / (c - a * (1.0 - b))


@dataclass(frozen=True)
class QueueMetrics:
    """Steady-state M/M/c metrics. Times in ms; ``mean_in_system``/``mean_queue_length`` in
    requests; ``utilization`` (per server) and ``wait_probability`` dimensionless."""

    arrival_rps: float
    service_mean_ms: float
    servers: int
    utilization: float
    wait_probability: float
    mean_wait_ms: float
    mean_sojourn_ms: float
    mean_in_system: float
    mean_queue_length: float

    @property
    def _mu(self) -> float:  # service rate per server, 1/ms
        return 1.0 / self.service_mean_ms

    @property
    def _theta(self) -> float:  # rate of the conditional waiting-time exponential, 1/ms
        return self.servers * self._mu - self.arrival_rps / 1000.0

    def _sojourn_survival(self, t_ms: float) -> float:
        """``P(T > t)`` for ``T = W + S``, written so that theta == mu needs no special case."""
        mu, theta, c = self._mu, self._theta, self.wait_probability
        delta = mu - theta

        def phi(x: float) -> float:  # expm1(x t) / x, with its limit t at x = 0
            return t_ms if x == 0.0 else math.expm1(x * t_ms) / x

        if delta <= 0.0:
            return math.exp(-mu * t_ms) * (1.0 + c * mu * phi(delta))
        return math.exp(-mu * t_ms) + c * mu * math.exp(-theta * t_ms) * phi(-delta)

    def sojourn_cdf(self, t_ms: float) -> float:
        """``P(T <= t_ms)``: probability the time in system (wait + service) is within ``t_ms``."""
        t = _real("t_ms", t_ms)
        if t <= 0.0:
            return 0.0
        return 1.0 - self._sojourn_survival(t) if t < math.inf else 1.0

    def sojourn_quantile_ms(self, q: float) -> float:
        """``q``-quantile of the time in system in ms (``inf`` at ``q = 1``), by brentq."""
        from scipy.optimize import brentq

        q = _probability("q", q)
        if q == 0.0:
            return 0.0
        if q == 1.0:
            return math.inf
        target = 1.0 - q
        hi = self.mean_sojourn_ms
        while self._sojourn_survival(hi) > target:
            hi *= 2.0
        return float(brentq(lambda t: self._sojourn_survival(t) - target, 0.0, hi, xtol=1e-12))

    def wait_quantile_ms(self, q: float) -> float:
        """``q``-quantile of the time waiting in queue in ms: 0 if ``q <= 1 - C``, else
        ``ln(C / (1 - q)) / theta``."""
        q = _probability("q", q)
        c = self.wait_probability
        if q <= 1.0 - c:
            return 0.0
        if q == 1.0:
            return math.inf
        return math.log(c / (1.0 - q)) / self._theta


def _steady_state(
    arrival_rps: float, service_mean_ms: float, servers: int, erlang: bool
) -> QueueMetrics:
    """Validate, then M/M/c metrics; ``erlang=False`` uses ``C = rho`` (exact for c = 1)."""
    lam_rps = _positive("arrival_rps", arrival_rps)
    s = _positive("service_mean_ms", service_mean_ms)
    c = _integer("servers", servers, 1)
    lam = lam_rps / 1000.0  # per ms
    rho = lam * s / c
    if rho >= 1.0:
        raise ValueError(
            f"unstable queue: utilization = arrival_rps * service_mean_ms / 1000 / servers = "
            f"{rho:.4g} >= 1 (arrival_rps={arrival_rps!r}, service_mean_ms={service_mean_ms!r}, "
            f"servers={servers!r})"
        )
    wait_probability = erlang_c(lam * s, c) if erlang else rho
    mean_wait = wait_probability / (c / s - lam)
    sojourn = mean_wait + s
    return QueueMetrics(
        arrival_rps=lam_rps,
        service_mean_ms=s,
        servers=c,
        utilization=rho,
        wait_probability=wait_probability,
        mean_wait_ms=mean_wait,
        mean_sojourn_ms=sojourn,
        mean_in_system=lam * sojourn,
        mean_queue_length=lam * mean_wait,
    )


def mm1(arrival_rps: float, service_mean_ms: float) -> QueueMetrics:
    """M/M/1 steady state; the time in system is ``Exp(mu - lambda)``. Needs ``rho < 1``."""
    return _steady_state(arrival_rps, service_mean_ms, 1, erlang=False)


def mmc(arrival_rps: float, service_mean_ms: float, servers: int) -> QueueMetrics:
    """M/M/c steady state (Erlang C); needs ``arrival_rps * service_mean_ms / 1000 / c < 1``."""
    return _steady_state(arrival_rps, service_mean_ms, servers, erlang=True)


def mmck_blocking_probability(
    arrival_rps: float, service_mean_ms: float, servers: int, capacity: int
) -> float:
    """Loss probability of M/M/c/K, ``K = capacity`` = servers + queue slots (any load).

    Computed as ``p_K`` of the birth-death stationary law, in log space (no overflow).
    """
    from scipy.special import gammaln, logsumexp

    lam = _positive("arrival_rps", arrival_rps)
    s = _positive("service_mean_ms", service_mean_ms)
    c = _integer("servers", servers, 1)
    k = _integer("capacity", capacity, c)
    log_a = math.log(lam * s / 1000.0)
    n = np.arange(k + 1, dtype=float)
    log_w = n * log_a - gammaln(n + 1)
    if k > c:  # beyond c servers each extra customer multiplies by rho = A / c
        log_w[c + 1 :] = log_w[c] + (n[c + 1 :] - c) * (log_a - math.log(c))
    return float(math.exp(log_w[k] - logsumexp(log_w)))


def mm1k_blocking_probability(arrival_rps: float, service_mean_ms: float, capacity: int) -> float:
    """Loss probability of M/M/1/K: ``(1 - rho) rho**K / (1 - rho**(K + 1))``, ``1/(K+1)`` at 1."""
    lam = _positive("arrival_rps", arrival_rps)
    s = _positive("service_mean_ms", service_mean_ms)
    k = _integer("capacity", capacity, 1)
    x = math.log(lam * s / 1000.0)  # log rho
    if x == 0.0:
        return 1.0 / (k + 1)
    if x < 0.0:
        return math.expm1(x) / math.expm1((k + 1) * x) * math.exp(k * x)
    return math.expm1(-x) / math.expm1(-(k + 1) * x)  # same formula in 1/rho


# --- hedging --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HedgedLatency:
    """Latency ``min(X1, d + X2)`` of a call hedged after ``d`` ms, ``X1, X2 ~ Exp(mean_ms)``.

    ``mean_latency_ms`` in ms; ``extra_ops_per_call`` is the expected number of hedge requests
    sent per call (``P(X1 > d)``).
    """

    mean_ms: float
    hedge_after_ms: float
    mean_latency_ms: float
    extra_ops_per_call: float

    def latency_cdf(self, t_ms: float) -> float:
        """``P(L <= t_ms)``."""
        t = _real("t_ms", t_ms)
        m, d = self.mean_ms, self.hedge_after_ms
        if t <= 0.0:
            return 0.0
        return -math.expm1(-t / m if t < d else -(2.0 * t - d) / m)

    def latency_quantile_ms(self, q: float) -> float:
        """``q``-quantile of the hedged latency in ms (closed form; ``inf`` at ``q = 1``)."""
        q = _probability("q", q)
        m, d = self.mean_ms, self.hedge_after_ms
        if q == 1.0:
            return math.inf
        t = -m * math.log1p(-q)  # quantile of X1 alone
        return t if t < d else (d + t) / 2.0


def hedged_exponential(mean_ms: float, hedge_after_ms: float) -> HedgedLatency:
    """Hedge an ``Exp(mean_ms)`` call with a second one if the first is not back by
    ``hedge_after_ms``; mean latency is ``mean_ms * (1 - exp(-d / mean_ms) / 2)`` ms."""
    m = _positive("mean_ms", mean_ms)
    d = _positive("hedge_after_ms", hedge_after_ms, allow_zero=True)
    extra = math.exp(-d / m)
    return HedgedLatency(m, d, m * (1.0 - extra / 2.0), extra)


# --- topology ---------------------------------------------------------------------------------


def amplification(scenario) -> dict:
    """Calls and backend ops per request that the call graph implies (no retries, hedges or
    errors): ``calls_per_request``, ``ops_per_request`` and per-service ``calls``. Multiply by
    the offered rps for calls/s and ops/s (seed example: 20 ops x 5,000 rps = 100,000 ops/s)."""
    from .topology import nominal_amplification

    return nominal_amplification(scenario)
