"""Calling-side policies in closed form: timeouts over a fan-out, retry amplification, timeouts
with retries, and hedging an exponential call."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .checks import integer, positive, probability, real


def timeout_failure_probability(cdf_at_timeout: float, n: int) -> float:
    """Probability a fan-out of ``n`` calls fails because any call times out: ``1 - F(T)**n``.

    ``cdf_at_timeout`` is ``F(T)``, the probability one attempt finishes within its timeout.
    """
    f = probability("cdf_at_timeout", cdf_at_timeout)
    n = integer("n", n, 1)
    return 1.0 if f == 0.0 else -math.expm1(n * math.log(f))


def retry_attempts_per_call(p_fail: float, max_retries: int) -> float:
    """Expected attempts per call with up to ``max_retries`` retries, each failing w.p. ``p_fail``.

    ``(1 - p**(r + 1)) / (1 - p)``; ``r + 1`` when ``p == 1``. Multiply by the call rate (rps) to
    get the backend load (rps) including retries.
    """
    p = probability("p_fail", p_fail)
    r = integer("max_retries", max_retries, 0)
    if p == 0.0:
        return 1.0
    if p == 1.0:
        return float(r + 1)
    log_p = math.log(p)
    return math.expm1((r + 1) * log_p) / math.expm1(log_p)


def retry_failure_probability(p_fail: float, max_retries: int) -> float:
    """Probability a call fails after ``max_retries`` retries, each attempt failing (error,
    timeout or rejection) independently w.p. ``p_fail``: ``p**(r + 1)``."""
    p = probability("p_fail", p_fail)
    r = integer("max_retries", max_retries, 0)
    return p ** (r + 1)


@dataclass(frozen=True)
class TimeoutRetry:
    """A call to an ``Exp(mean_ms)`` backend with a per-attempt timeout and retries (no contention).

    Each attempt times out w.p. ``p = exp(-timeout_ms / mean_ms)``; a timed-out attempt's late
    answer is ignored, so attempts are independent trials. The call's latency is the time
    spent on timed-out attempts and backoffs, plus the winning attempt's latency (an
    exponential truncated at the timeout); a call that runs out of retries fails at its last
    timeout. ``attempts_per_call`` counts first tries and retries.
    """

    timeout_probability: float
    failure_probability: float
    attempts_per_call: float
    mean_latency_ms: float
    std_latency_ms: float


def exponential_timeout_retry(
    mean_ms: float,
    timeout_ms: float,
    max_retries: int,
    backoff_ms: float = 0.0,
    multiplier: float = 2.0,
) -> TimeoutRetry:
    """Outcome and latency of a timeout + retries on ``Exp(mean_ms)``, backoff without jitter
    (``backoff_ms * multiplier ** (n - 1)`` before retry ``n``)."""
    m = positive("mean_ms", mean_ms)
    t = positive("timeout_ms", timeout_ms)
    r = integer("max_retries", max_retries, 0)
    b = positive("backoff_ms", backoff_ms, allow_zero=True)
    k = real("multiplier", multiplier)
    lam = 1.0 / m
    p = math.exp(-t * lam)
    # moments of X | X < t for X ~ Exp(mean m)
    ok = 1.0 - p
    e1 = (m - p * (t + m)) / ok
    e2 = (2.0 * m * m - p * (t * t + 2.0 * t * m + 2.0 * m * m)) / ok
    waited = [0.0]  # time before attempt j starts: j timeouts and j backoffs
    for n in range(1, r + 1):
        waited.append(waited[-1] + t + b * k ** (n - 1))
    mean = second = 0.0
    for j, c in enumerate(waited):
        w = p**j * ok
        mean += w * (c + e1)
        second += w * (c * c + 2.0 * c * e1 + e2)
    fail_at = waited[-1] + t
    mean += p ** (r + 1) * fail_at
    second += p ** (r + 1) * fail_at * fail_at
    return TimeoutRetry(
        timeout_probability=p,
        failure_probability=p ** (r + 1),
        attempts_per_call=retry_attempts_per_call(p, r),
        mean_latency_ms=mean,
        std_latency_ms=math.sqrt(max(second - mean * mean, 0.0)),
    )


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
        t = real("t_ms", t_ms)
        m, d = self.mean_ms, self.hedge_after_ms
        if t <= 0.0:
            return 0.0
        return -math.expm1(-t / m if t < d else -(2.0 * t - d) / m)

    def latency_quantile_ms(self, q: float) -> float:
        """``q``-quantile of the hedged latency in ms (closed form; ``inf`` at ``q = 1``)."""
        q = probability("q", q)
        m, d = self.mean_ms, self.hedge_after_ms
        if q == 1.0:
            return math.inf
        t = -m * math.log1p(-q)  # quantile of X1 alone
        return t if t < d else (d + t) / 2.0


def hedged_exponential(mean_ms: float, hedge_after_ms: float) -> HedgedLatency:
    """Hedge an ``Exp(mean_ms)`` call with a second one if the first is not back by
    ``hedge_after_ms``; mean latency is ``mean_ms * (1 - exp(-d / mean_ms) / 2)`` ms."""
    m = positive("mean_ms", mean_ms)
    d = positive("hedge_after_ms", hedge_after_ms, allow_zero=True)
    extra = math.exp(-d / m)
    return HedgedLatency(m, d, m * (1.0 - extra / 2.0), extra)
