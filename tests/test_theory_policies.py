"""Calling-side policies against closed forms (simulator.analytic); requests are independent
(no worker limits), so tolerances are 4 standard errors of the sample size, as in
test_theory.py."""

from __future__ import annotations

import math

import pytest
from conftest import check, run
from test_theory import Z, exp_service, quantile_tolerance

from simulator import analytic

pytestmark = pytest.mark.slow


def test_hedging_on_exponential_latency():
    """A hedge after d on Exp(m) calls gives latency min(X1, d + X2) and e^(-d/m) extra ops."""
    mean_ms, d = 10.0, 10.0
    res = run({"s": exp_service(mean_ms)}, [{"call": "s", "hedge": {"after_ms": d}}],
              rps=1000, duration_s=30, seed=21)  # fmt: skip
    lat, n = res.latencies_ms, len(res.latencies_ms)
    theory = analytic.hedged_exponential(mean_ms, d)
    # variance of min(X1, d + X2) by numerical integration of its survival function
    second = 2 * _integrate(lambda t: t * (1 - theory.latency_cdf(t)), 0, 40 * mean_ms)
    sd = math.sqrt(second - theory.mean_latency_ms**2)
    check("hedge after 10 ms on Exp(10): mean latency (ms)", lat.mean(),
          theory.mean_latency_ms, Z * sd / math.sqrt(n))  # fmt: skip
    x99 = theory.latency_quantile_ms(0.99)
    density = (theory.latency_cdf(x99 + 1e-4) - theory.latency_cdf(x99 - 1e-4)) / 2e-4
    check("hedge after 10 ms on Exp(10): p99 latency (ms)", res.summary["latency_ms"]["p99"],
          x99, quantile_tolerance(0.99, n, density))  # fmt: skip
    svc = res.summary["services"]["s"]
    p = theory.extra_ops_per_call
    check("hedge after 10 ms on Exp(10): hedges per call", svc["hedges"] / svc["first_tries"],
          p, Z * math.sqrt(p * (1 - p) / svc["first_tries"]))  # fmt: skip


def test_fanout_timeout_failure_probability():
    """N calls with a per-attempt timeout T fail the request with probability 1 - F(T)^N."""
    mean_ms, t_ms, n_calls = 10.0, 25.0, 10
    res = run({"s": exp_service(mean_ms)},
              [{"call": "s", "fanout": n_calls, "timeout_ms": t_ms}],
              rps=500, duration_s=30, seed=23)  # fmt: skip
    req = res.summary["requests"]
    p = analytic.timeout_failure_probability(1 - math.exp(-t_ms / mean_ms), n_calls)
    check("fan-out 10, timeout 25 ms on Exp(10): failed share", req["failed"] / req["arrived"],
          p, Z * math.sqrt(p * (1 - p) / req["arrived"]))  # fmt: skip
    # a request that fails does so at the first timeout, exactly T after it started
    assert res.latencies_ms.max() == pytest.approx(t_ms)


def test_retry_amplification():
    """With failure probability p and r retries a call costs (1 - p^(r+1)) / (1 - p) attempts
    and fails with probability p^(r+1)."""
    p_fail, r = 0.3, 2
    svc = {"latency": {"dist": "constant", "ms": 1}, "error_rate": p_fail}
    res = run({"s": svc}, [{"call": "s", "retries": {"max": r}}], rps=1000, duration_s=20,
              seed=25)  # fmt: skip
    s = res.summary
    n = s["requests"]["arrived"]
    expected = analytic.retry_attempts_per_call(p_fail, r)
    probs = [(1 - p_fail) * p_fail**i for i in range(r)] + [p_fail**r]  # attempts 1..r+1
    var = sum(pk * (k + 1) ** 2 for k, pk in enumerate(probs)) - expected**2
    check("retries: attempts per call (p=0.3, 2 retries)", s["services"]["s"]["calls"] / n,
          expected, Z * math.sqrt(var / n))  # fmt: skip
    q = p_fail ** (r + 1)
    check("retries: failed share (p=0.3, 2 retries)", s["requests"]["failed"] / n, q,
          Z * math.sqrt(q * (1 - q) / n))  # fmt: skip


@pytest.mark.parametrize("cancel_losers", [False, True])
def test_timeout_with_retries_gives_up_on_timed_out_attempts(cancel_losers):
    """With timeout T and r retries on Exp(m), a timed-out attempt's late answer is ignored:
    a call fails w.p. p^(r+1) (p = e^(-T/m)), costs (1 - p^(r+1)) / (1 - p) attempts, and its
    latency has the mixture's mean (timeouts, then an Exp truncated at T); every timed-out
    attempt is wasted work, or cancelled with cancel_losers."""
    mean_ms, t_ms, r = 10.0, 10.0, 2
    step = {"call": "s", "timeout_ms": t_ms, "retries": {"max": r}, "cancel_losers": cancel_losers}
    res = run({"s": exp_service(mean_ms)}, [step], rps=1000, duration_s=30, seed=27)
    theory = analytic.exponential_timeout_retry(mean_ms, t_ms, r)
    s, n = res.summary, res.summary["requests"]["arrived"]
    svc, tag = s["services"]["s"], f"timeout 10 ms + 2 retries on Exp(10), cancel {cancel_losers}"
    q = theory.failure_probability
    check(f"{tag}: failed share", s["requests"]["failed"] / n, q, Z * math.sqrt(q * (1 - q) / n))
    p = theory.timeout_probability
    probs = [(1 - p) * p**i for i in range(r)] + [p**r]  # attempts 1..r+1
    var = sum(pk * (k + 1) ** 2 for k, pk in enumerate(probs)) - theory.attempts_per_call**2
    check(f"{tag}: attempts per call", svc["calls"] / svc["first_tries"],
          theory.attempts_per_call, Z * math.sqrt(var / n))  # fmt: skip
    check(f"{tag}: mean latency (ms)", res.latencies_ms.mean(), theory.mean_latency_ms,
          Z * theory.std_latency_ms / math.sqrt(n))  # fmt: skip
    assert svc["timeouts"] == svc["retries"] + s["requests"]["failed"]
    if cancel_losers:
        assert svc["cancelled"] == svc["timeouts"] and svc["wasted"] == 0
    else:
        assert svc["wasted"] == svc["timeouts"] and svc["cancelled"] == 0


@pytest.mark.parametrize("cancel_losers", [False, True])
def test_hedge_at_observed_p95_sends_five_percent(cancel_losers):
    """``hedge: {after: p95}`` hedges about 5% of calls: the delay is the p95 of first attempts
    (those beaten by a hedge count as slowest), not of the winners that hedges make faster."""
    step = {"call": "s", "hedge": {"after": "p95"}, "cancel_losers": cancel_losers}
    res = run({"s": exp_service(10.0)}, [step], rps=1000, duration_s=60, warmup_s=5, seed=29)
    svc = res.summary["services"]["s"]
    n = svc["first_tries"]
    # The delay is the 950th of the last 1,000 first attempts: E[1 - F] = 1 - 950/1001.
    expected = 1 - 950 / 1001
    # binomial noise of the hedges, plus as much again from the estimated delay
    tolerance = Z * math.sqrt(2 * expected * (1 - expected) / n)
    check(f"hedge after p95 on Exp(10), cancel {cancel_losers}: hedges per call",
          svc["hedges"] / n, expected, tolerance)  # fmt: skip


def test_retry_budget_caps_retries_at_its_ratio():
    """Under an always-failing backend a saturated budget admits ratio x first tries +
    min_per_s retries per second, however many retries each call may make."""
    ratio, min_per_s, rps = 0.1, 10.0, 100.0
    svc = {"latency": {"dist": "constant", "ms": 1}, "error_rate": 1.0}
    step = {"call": "s", "retries": {"max": 3, "budget_ratio": ratio, "min_per_s": min_per_s}}
    res = run({"s": svc}, [step], rps=rps, duration_s=60, warmup_s=10, seed=27)
    st = res.summary["steps"]["request.steps.0"]
    expected = ratio * st["first_tries"] + min_per_s * 60
    # The window's edges cut two sliding 10 s budgets; each holds ratio x a Poisson count of
    # ~1,000 first tries: 4 sigma = ratio * 4 * sqrt(1000) per edge, plus one retry of rounding.
    tol = 2 * (ratio * 4 * math.sqrt(rps * 10) + 1)
    check("retry budget 0.1 + 10/s: retries in 60 s", st["retries"], expected, tol)


def _integrate(f, a: float, b: float) -> float:
    from scipy import integrate

    return integrate.quad(f, a, b, limit=200)[0]


def test_circuit_breaker_under_known_failure_rates():
    """Against a dead backend an open breaker lets through one probe per open_ms + probe
    latency; against a backend failing 10% of calls (window 20, ratio 0.5) it almost never
    opens: P(more than 10 of 20 fail) = 7.1e-7 per call."""
    open_ms, latency_ms, duration_s = 100.0, 2.0, 30.0
    step = {"call": "s", "circuit_breaker": {"failure_ratio": 0.5, "window": 20,
                                             "open_ms": open_ms}}  # fmt: skip
    dead = {"latency": {"dist": "constant", "ms": latency_ms}, "error_rate": 1.0}
    res = run({"s": dead}, [step], rps=1000, duration_s=duration_s, warmup_s=1, seed=29)
    sent = res.summary["services"]["s"]["calls"]
    # each cycle: a probe is sent at the first arrival after open_ms (Poisson, mean 1 ms later),
    # fails after latency_ms, and reopens the breaker
    cycle_ms = open_ms + 1.0 + latency_ms
    expected = duration_s * 1000 / cycle_ms
    # cycles are i.i.d.: the count's sd is about sqrt(n) * sd(cycle) / mean(cycle), sd = 1 ms
    check("breaker on a dead backend: probes sent in 30 s", sent, expected,
          Z * math.sqrt(expected) * 1.0 / cycle_ms + 1)  # fmt: skip
    flaky = {"latency": {"dist": "constant", "ms": latency_ms}, "error_rate": 0.1}
    res = run({"s": flaky}, [step], rps=1000, duration_s=10, seed=31)
    from scipy import stats

    p_open = stats.binom.sf(10, 20, 0.1)
    assert p_open == pytest.approx(7.1e-7, rel=0.05)
    # 10,000 calls x 7.1e-7 = 0.007 expected openings: a single one would refuse ~100 calls
    assert res.summary["services"]["s"]["circuit_open"] == 0


def test_hedge_percentile_when_the_fan_in_needs_few_answers():
    """With fanout 4 and require 2, first attempts the fan-in no longer needs are censored,
    not dropped: the hedge delay for after: p90 is the call's own p90 (Kaplan-Meier), so about
    10% of calls are hedged, not the share a biased-low delay would send."""
    from conftest import make_scenario

    from simulator.engine.sim import Sim

    scenario = make_scenario({"s": {"latency": {"dist": "lognormal", "median_ms": 10, "sigma": 1}}},
                             [{"call": "s", "fanout": 4, "require": 2, "hedge": {"after": "p90"}}],
                             rps=500, duration_s=30, seed=31)  # fmt: skip
    sim = Sim(scenario, 31)
    sim.run()
    delay = next(step.policy for step in sim.plan if step.policy).hedge_delay_ms
    true_p90 = 10.0 * math.exp(1.2815515655446004)
    # The delay is the p90 of the last 1,000 first attempts: its standard error uncensored
    # is sqrt(q(1-q)/n)/f(x); with half the window censored, allow twice the variance. (A
    # delay that ignored censored attempts read 17.6 ms, half the p90.)
    from scipy import stats

    density = stats.lognorm(s=1.0, scale=10.0).pdf(true_p90)
    se = math.sqrt(2 * 0.9 * 0.1 / 1000) / density
    check("fanout 4 require 2, after p90 on lognormal: hedge delay (ms)", delay, true_p90,
          Z * se)  # fmt: skip
