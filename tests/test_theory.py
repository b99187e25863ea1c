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
from conftest import ONE_PERCENT_SLOW, ROOT, check, run
from scipy import stats

from simulator import analytic, load_scenario, simulate

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
    slow = ONE_PERCENT_SLOW
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


def test_seed_example_matches_the_contention_free_prediction():
    """The seed example (10-way fan-out, two sequential db calls each, lognormal latencies)
    measures the mean, p99 and p99.9 latency that the numerical closed form predicts."""
    # No worker limits, so no queue to warm up; 20 s at 5,000 rps is ~100,000 requests.
    scenario = load_scenario(ROOT / "scenarios" / "seed-example.yaml").with_overrides(
        {"duration_s": 20, "warmup_s": 0}
    )
    theory = analytic.contention_free_latency(scenario)
    assert theory is not None
    res = simulate(scenario, workers=1)
    lat = res.latencies_ms
    n = len(lat)
    check(
        "seed example: mean latency (ms)",
        lat.mean(),
        theory.mean_ms,
        Z * theory.std_ms / math.sqrt(n),
    )
    for p, key in ((0.99, "p99"), (0.999, "p999")):
        x = theory.quantile_ms(p)
        check(
            f"seed example: {key} latency (ms)",
            res.summary["latency_ms"][key],
            x,
            quantile_tolerance(p, n, theory.pdf(x)),
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


def check_runs(name: str, res, figure, expected: float) -> None:
    """Check the mean over replications of ``figure(summary)`` within its 99.9% t-interval."""
    values = [figure(r) for r in res.runs]
    check(name, float(np.mean(values)), expected, replication_tolerance(values))


def mean_sojourn(r):
    return r["latency_ms"]["mean"]


def p99_sojourn(r):
    return r["latency_ms"]["p99"]


def utilization(r):
    return r["services"]["server"]["utilization"]


def rejected_share(r):
    return r["requests"]["rejected"] / r["requests"]["arrived"]


def test_mm1_mean_and_p99():
    """One worker, Poisson arrivals, exponential service (rho 0.7): sojourn is Exp(mu - lambda)."""
    rps, mean_ms = 70.0, 10.0
    res = queue_runs(1, rps, mean_ms, reps=10, duration_s=200)
    theory = analytic.mm1(rps, mean_ms)
    check_runs("M/M/1 rho=0.7: mean sojourn (ms)", res, mean_sojourn, theory.mean_sojourn_ms)
    check_runs(
        "M/M/1 rho=0.7: p99 sojourn (ms)", res, p99_sojourn, theory.sojourn_quantile_ms(0.99)
    )
    check_runs("M/M/1 rho=0.7: utilization", res, utilization, theory.utilization)


def test_mmc_mean_p99_and_utilization():
    """Ten workers at 90% load: Erlang-C mean and p99 sojourn, utilization rho."""
    rps, mean_ms, c = 900.0, 10.0, 10
    res = queue_runs(c, rps, mean_ms, reps=8, duration_s=100)
    theory = analytic.mmc(rps, mean_ms, c)
    check_runs("M/M/10 rho=0.9: mean sojourn (ms)", res, mean_sojourn, theory.mean_sojourn_ms)
    check_runs(
        "M/M/10 rho=0.9: p99 sojourn (ms)", res, p99_sojourn, theory.sojourn_quantile_ms(0.99)
    )
    check_runs("M/M/10 rho=0.9: utilization", res, utilization, theory.utilization)


def test_littles_law_holds_on_the_time_series():
    """Time-averaged calls in the system (busy + queued columns) equal arrival rate x mean
    sojourn on the same sample path (Little's law, L = lambda W)."""
    rps, mean_ms, c = 900.0, 10.0, 10
    res = queue_runs(c, rps, mean_ms, reps=1, duration_s=100)
    ts, s = res.timeseries, res.summary
    window = slice(10, 110)  # the measured seconds
    in_system = c * np.mean(ts["util_server"][window]) + np.mean(ts["queue_server"][window])
    lam_w = s["requests"]["arrived"] / s["duration_s"] * s["latency_ms"]["mean"] / 1000
    # Sample-path identity: only calls straddling the window's two edges differ, about
    # 2 * L * W / T = 2 * 15 * 0.017 s / 100 s ~ 0.5% of L at most.
    check("M/M/10 rho=0.9: Little's law L = lambda W (calls)", in_system, lam_w, 0.005 * lam_w)


def test_mm1k_loss():
    """One worker and queue_limit 4 (K = 5) at rho 0.9 reject (1-rho)rho^K / (1-rho^(K+1))."""
    rps, mean_ms = 90.0, 10.0
    res = queue_runs(1, rps, mean_ms, queue_limit=4, reps=8, duration_s=120)
    expected = analytic.mm1k_blocking_probability(rps, mean_ms, 5)
    check_runs("M/M/1/5 rho=0.9: rejected share", res, rejected_share, expected)
    svc = [r["services"]["server"]["rejected"] / r["services"]["server"]["calls"] for r in res.runs]
    assert svc == [rejected_share(r) for r in res.runs]  # one call per request: same refusals


def test_erlang_b_loss_system():
    """Five workers with queue_limit 0 lose Erlang-B of the offered 4 Erlangs."""
    rps, mean_ms, c = 400.0, 10.0, 5
    res = queue_runs(c, rps, mean_ms, queue_limit=0, reps=8, duration_s=60)
    expected = analytic.erlang_b(rps * mean_ms / 1000, c)
    check_runs("M/M/5/5 (4 Erlangs): rejected share", res, rejected_share, expected)
