"""Queues in closed form: Erlang B and C, M/M/1, M/M/c and the blocking of M/M/c/K.

Rates are requests per second (``_rps``), times milliseconds (``_ms``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .checks import integer, positive, probability, real


def erlang_b(offered_load: float, servers: int) -> float:
    """Erlang B: blocking probability of M/M/c/c with ``offered_load = lambda / mu`` Erlangs.

    Uses the stable recursion ``B_j = A B_{j-1} / (j + A B_{j-1})``.
    """
    a = positive("offered_load", offered_load, allow_zero=True)
    c = integer("servers", servers, 1)
    b = 1.0
    for j in range(1, c + 1):
        b = a * b / (j + a * b)
    return b


def erlang_c(offered_load: float, servers: int) -> float:
    """Erlang C: probability an arrival waits in M/M/c, ``offered_load = lambda / mu`` Erlangs.

    Computed from Erlang B as ``c B / (c - A (1 - B))``; needs ``offered_load < servers``.
    """
    a = positive("offered_load", offered_load, allow_zero=True)
    c = integer("servers", servers, 1)
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
        t = real("t_ms", t_ms)
        if t <= 0.0:
            return 0.0
        return 1.0 - self._sojourn_survival(t) if t < math.inf else 1.0

    def sojourn_quantile_ms(self, q: float) -> float:
        """``q``-quantile of the time in system in ms (``inf`` at ``q = 1``), by brentq."""
        from scipy.optimize import brentq

        q = probability("q", q)
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
        q = probability("q", q)
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
    lam_rps = positive("arrival_rps", arrival_rps)
    s = positive("service_mean_ms", service_mean_ms)
    c = integer("servers", servers, 1)
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

    lam = positive("arrival_rps", arrival_rps)
    s = positive("service_mean_ms", service_mean_ms)
    c = integer("servers", servers, 1)
    k = integer("capacity", capacity, c)
    log_a = math.log(lam * s / 1000.0)
    n = np.arange(k + 1, dtype=float)
    log_w = n * log_a - gammaln(n + 1)
    if k > c:  # beyond c servers each extra customer multiplies by rho = A / c
        log_w[c + 1 :] = log_w[c] + (n[c + 1 :] - c) * (log_a - math.log(c))
    return float(math.exp(log_w[k] - logsumexp(log_w)))


def mm1k_blocking_probability(arrival_rps: float, service_mean_ms: float, capacity: int) -> float:
    """Loss probability of M/M/1/K: ``(1 - rho) rho**K / (1 - rho**(K + 1))``, ``1/(K+1)`` at 1."""
    lam = positive("arrival_rps", arrival_rps)
    s = positive("service_mean_ms", service_mean_ms)
    k = integer("capacity", capacity, 1)
    x = math.log(lam * s / 1000.0)  # log rho
    if x == 0.0:
        return 1.0 / (k + 1)
    if x < 0.0:
        return math.expm1(x) / math.expm1((k + 1) * x) * math.exp(k * x)
    return math.expm1(-x) / math.expm1(-(k + 1) * x)  # same formula in 1/rho


def mmc_max_rate(service_mean_ms: float, servers: int, q: float, limit_ms: float) -> float:
    """The largest arrival rate (requests/s) at which an M/M/c queue's ``q``-quantile of the
    time in system stays within ``limit_ms`` (what ``fansim plan --find workload.rps`` seeks
    for such a queue); 0 when even an idle queue's service time exceeds it."""
    from scipy.optimize import brentq

    s, c = positive("service_mean_ms", service_mean_ms), integer("servers", servers, 1)
    limit = positive("limit_ms", limit_ms)
    q = probability("q", q)
    capacity = c * 1000.0 / s
    if -math.log1p(-q) * s >= limit:  # the idle queue's quantile is the service time's
        return 0.0

    def excess(rps: float) -> float:
        return mmc(rps, s, c).sojourn_quantile_ms(q) - limit

    return float(brentq(excess, capacity * 1e-9, capacity * (1 - 1e-9), xtol=1e-9))


def mmc_min_servers(arrival_rps: float, service_mean_ms: float, q: float, limit_ms: float) -> int:
    """The fewest servers for which an M/M/c queue's ``q``-quantile of the time in system is
    within ``limit_ms`` (what ``fansim plan --find services.X.workers`` seeks for such a
    queue). Raises ``ValueError`` when no number of servers can (the service time alone
    exceeds the limit)."""
    lam, s = positive("arrival_rps", arrival_rps), positive("service_mean_ms", service_mean_ms)
    q, limit = probability("q", q), positive("limit_ms", limit_ms)
    if -math.log1p(-q) * s >= limit:
        raise ValueError(f"no server count works: the service time's q-quantile exceeds {limit} ms")
    c = math.floor(lam * s / 1000.0) + 1  # the fewest servers that keep the queue stable
    while mmc(lam, s, c).sojourn_quantile_ms(q) > limit:
        c += 1
    return c
