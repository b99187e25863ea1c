"""The engine against closed forms (simulator.analytic), with tolerances from sample size.

* Contention-free requests are independent: a mean is checked within 4 standard errors
  (sigma / sqrt(n), sigma from theory), a quantile within 4 asymptotic standard errors
  sqrt(p (1 - p) / n) / f(x_p), with f the theoretical density at the quantile, and a
  proportion within 4 binomial standard errors.
* Queue figures are autocorrelated within a run, so they are checked across R independent
  replications: within the 99.9% Student-t interval t(0.9995, R - 1) * s / sqrt(R), s being the
  spread of the per-replication estimates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import check, run
from scipy import stats

from simulator import analytic

pytestmark = pytest.mark.slow

Z = 4.0  # standard errors allowed for independent samples


def exp_service(mean_ms: float, **extra) -> dict:
    return {"latency": {"dist": "exponential", "mean_ms": mean_ms}} | extra


def quantile_tolerance(p: float, n: int, density_at_quantile: float) -> float:
    return Z * math.sqrt(p * (1 - p) / n) / density_at_quantile


def replication_tolerance(values: list[float]) -> float:
    r = len(values)
    return float(stats.t.ppf(0.9995, r - 1) * np.std(values, ddof=1) / math.sqrt(r))


def test_max_of_n_exponentials():
    """A request fanning out to N exponential calls waits for the max: mean m*H_N, p99 via F^N."""
    n_calls, mean_ms = 10, 10.0
    res = run(
        {"s": exp_service(mean_ms)},
        [{"call": "s", "fanout": n_calls}],
        rps=1000,
        duration_s=30,
        seed=11,
    )
    lat = res.latencies_ms
    n = len(lat)
    expected_mean = analytic.exponential_max_mean_ms(mean_ms, n_calls)
    sd = mean_ms * math.sqrt(sum(1 / i**2 for i in range(1, n_calls + 1)))
    check(
        "fan-out 10: mean of max of 10 exponentials (ms)",
        lat.mean(),
        expected_mean,
        Z * sd / math.sqrt(n),
    )
    dist = stats.expon(scale=mean_ms)
    x99 = analytic.max_of_n_quantile(dist.ppf, 0.99, n_calls)
    density = n_calls * dist.cdf(x99) ** (n_calls - 1) * dist.pdf(x99)
    check(
        "fan-out 10: p99 of max of 10 exponentials (ms)",
        res.summary["latency_ms"]["p99"],
        x99,
        quantile_tolerance(0.99, n, density),
    )


def test_hundred_way_fanout_with_one_percent_slow_calls():
    """With 100 calls each slow 1% of the time, 1 - 0.99^100 = 63.4% of requests are slow."""
    slow = {
        "dist": "mixture",
        "components": [
            {"weight": 0.99, "dist": "constant", "ms": 1},
            {"weight": 0.01, "dist": "constant", "ms": 100},
        ],
    }
    res = run(
        {"shard": {"latency": slow}},
        [{"call": "shard", "fanout": 100}],
        rps=500,
        duration_s=20,
        seed=3,
    )
    lat = res.latencies_ms
    p = analytic.fanout_slow_probability(0.01, 100)
    assert p == pytest.approx(0.634, abs=5e-4)
    check(
        "fan-out 100, 1% slow: share of slow requests",
        float(np.mean(lat >= 100)),
        p,
        Z * math.sqrt(p * (1 - p) / len(lat)),
    )


def test_k_of_n_quorum():
    """require: 3 of 5 exponential calls waits for the 3rd answer: mean m * sum(1/i, i=3..5)."""
    mean_ms, k, n_calls = 10.0, 3, 5
    res = run(
        {"replica": exp_service(mean_ms)},
        [{"call": "replica", "fanout": n_calls, "require": k}],
        rps=1000,
        duration_s=30,
        seed=5,
    )
    lat = res.latencies_ms
    n = len(lat)
    dist = stats.expon(scale=mean_ms)
    expected = analytic.kth_of_n_mean(dist.ppf, k, n_calls)
    assert expected == pytest.approx(mean_ms * (1 / 3 + 1 / 4 + 1 / 5))
    sd = mean_ms * math.sqrt(sum(1 / i**2 for i in range(n_calls - k + 1, n_calls + 1)))
    check("quorum 3 of 5: mean latency (ms)", lat.mean(), expected, Z * sd / math.sqrt(n))
    x99 = analytic.kth_of_n_quantile(dist.ppf, 0.99, k, n_calls)
    u = dist.cdf(x99)
    density = stats.beta.pdf(u, k, n_calls - k + 1) * dist.pdf(x99)
    check(
        "quorum 3 of 5: p99 latency (ms)",
        res.summary["latency_ms"]["p99"],
        x99,
        quantile_tolerance(0.99, n, density),
    )
    # every call is still sent and served: the 2 late answers keep running
    assert res.summary["services"]["replica"]["calls"] == n_calls * n


def test_sequential_calls_add_up():
    """Three sequential exponential calls (repeat: 3) sum to an Erlang-3 latency."""
    mean_ms = 10.0
    res = run(
        {"db": exp_service(mean_ms)}, [{"call": "db", "repeat": 3}], rps=1000, duration_s=30, seed=7
    )
    lat = res.latencies_ms
    n = len(lat)
    dist = stats.gamma(a=3, scale=mean_ms)
    check(
        "sequential x3: mean latency (ms)", lat.mean(), 3 * mean_ms, Z * dist.std() / math.sqrt(n)
    )
    x99 = dist.ppf(0.99)
    check(
        "sequential x3: p99 latency (ms)",
        res.summary["latency_ms"]["p99"],
        x99,
        quantile_tolerance(0.99, n, dist.pdf(x99)),
    )


def queue_runs(
    workers: int, rps: float, mean_ms: float, queue_limit=None, reps=8, duration_s=120.0, seed=1
):
    svc = exp_service(mean_ms, workers=workers)
    if queue_limit is not None:
        svc["queue_limit"] = queue_limit
    res = run(
        {"server": svc},
        [{"call": "server"}],
        rps=rps,
        duration_s=duration_s,
        warmup_s=10,
        seed=seed,
        replications=reps,
    )
    return res


def test_mm1_mean_and_p99():
    """One worker, Poisson arrivals, exponential service (rho 0.7): sojourn is Exp(mu - lambda)."""
    rps, mean_ms = 70.0, 10.0
    res = queue_runs(1, rps, mean_ms, reps=10, duration_s=200)
    theory = analytic.mm1(rps, mean_ms)
    means = [r["latency_ms"]["mean"] for r in res.runs]
    p99s = [r["latency_ms"]["p99"] for r in res.runs]
    check(
        "M/M/1 rho=0.7: mean sojourn (ms)",
        float(np.mean(means)),
        theory.mean_sojourn_ms,
        replication_tolerance(means),
    )
    check(
        "M/M/1 rho=0.7: p99 sojourn (ms)",
        float(np.mean(p99s)),
        theory.sojourn_quantile_ms(0.99),
        replication_tolerance(p99s),
    )
    utils = [r["services"]["server"]["utilization"] for r in res.runs]
    check(
        "M/M/1 rho=0.7: utilization",
        float(np.mean(utils)),
        theory.utilization,
        replication_tolerance(utils),
    )


def test_mmc_mean_p99_and_utilization():
    """Ten workers at 90% load: Erlang-C mean and p99 sojourn, utilization rho."""
    rps, mean_ms, c = 900.0, 10.0, 10
    res = queue_runs(c, rps, mean_ms, reps=8, duration_s=100)
    theory = analytic.mmc(rps, mean_ms, c)
    means = [r["latency_ms"]["mean"] for r in res.runs]
    p99s = [r["latency_ms"]["p99"] for r in res.runs]
    utils = [r["services"]["server"]["utilization"] for r in res.runs]
    check(
        "M/M/10 rho=0.9: mean sojourn (ms)",
        float(np.mean(means)),
        theory.mean_sojourn_ms,
        replication_tolerance(means),
    )
    check(
        "M/M/10 rho=0.9: p99 sojourn (ms)",
        float(np.mean(p99s)),
        theory.sojourn_quantile_ms(0.99),
        replication_tolerance(p99s),
    )
    check(
        "M/M/10 rho=0.9: utilization",
        float(np.mean(utils)),
        theory.utilization,
        replication_tolerance(utils),
    )
    # Little's law on the per-second queue column: Lq = lambda * Wq
    ts = res.timeseries
    lq = float(np.nanmean(ts["queue_server"][10:110]))
    assert lq == pytest.approx(theory.mean_queue_length, rel=0.35)


def test_mm1k_loss():
    """One worker and queue_limit 4 (K = 5) at rho 0.9 reject (1-rho)rho^K / (1-rho^(K+1))."""
    rps, mean_ms = 90.0, 10.0
    res = queue_runs(1, rps, mean_ms, queue_limit=4, reps=8, duration_s=120)
    shares = [r["requests"]["rejected"] / r["requests"]["arrived"] for r in res.runs]
    expected = analytic.mm1k_blocking_probability(rps, mean_ms, 5)
    check(
        "M/M/1/5 rho=0.9: rejected share",
        float(np.mean(shares)),
        expected,
        replication_tolerance(shares),
    )
    svc = [r["services"]["server"]["rejected"] / r["services"]["server"]["calls"] for r in res.runs]
    assert np.allclose(svc, shares)  # one call per request: the service saw the same refusals


def test_erlang_b_loss_system():
    """Five workers with queue_limit 0 lose Erlang-B of the offered 4 Erlangs."""
    rps, mean_ms, c = 400.0, 10.0, 5
    res = queue_runs(c, rps, mean_ms, queue_limit=0, reps=8, duration_s=60)
    shares = [r["requests"]["rejected"] / r["requests"]["arrived"] for r in res.runs]
    expected = analytic.erlang_b(rps * mean_ms / 1000, c)
    check(
        "M/M/5/5 (4 Erlangs): rejected share",
        float(np.mean(shares)),
        expected,
        replication_tolerance(shares),
    )
