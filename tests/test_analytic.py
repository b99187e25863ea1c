"""Tests of the closed forms in simulator.analytic (the formulas themselves, not the simulator)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from conftest import ONE_PERCENT_SLOW, ROOT, make_scenario
from scipy import integrate, stats

from simulator import analytic as an

EXP_MEAN_MS = 10.0


def exp_ppf(u):
    """Inverse CDF of Exp(mean 10 ms)."""
    return -EXP_MEAN_MS * np.log1p(-np.asarray(u))


def exp_cdf(t):
    return -math.expm1(-t / EXP_MEAN_MS)


SIMPLE = make_scenario({"s": {"latency": {"dist": "exponential", "mean_ms": 1.0}}}, [{"call": "s"}])


def within_sigmas(observed: float, expected: float, std_error: float, sigmas: float = 4.0):
    assert abs(observed - expected) <= sigmas * std_error, (observed, expected, std_error)


# --- textbook values ------------------------------------------------------------------------


def test_fanout_slow_probability_textbook():
    """100 calls each 1 % slow give a slow fan-out 63.4 % of the time; edge cases are exact."""
    assert an.fanout_slow_probability(0.01, 100) == pytest.approx(1 - 0.99**100)
    assert round(an.fanout_slow_probability(0.01, 100), 3) == 0.634
    assert an.fanout_slow_probability(0.0, 5) == 0.0
    assert an.fanout_slow_probability(1.0, 5) == 1.0
    assert an.fanout_slow_probability(0.3, 1) == pytest.approx(0.3)


def test_erlang_b_and_c_hand_computed():
    """Erlang B and C match hand-computed values (A=2, c=3: B=4/19, C=4/9; c=1: C=A)."""
    assert an.erlang_b(2.0, 3) == pytest.approx(4 / 19, rel=1e-14)
    assert an.erlang_c(2.0, 3) == pytest.approx(4 / 9, rel=1e-14)
    assert an.erlang_b(1.0, 1) == pytest.approx(0.5)
    assert an.erlang_c(0.7, 1) == pytest.approx(0.7)
    assert an.erlang_b(0.0, 4) == 0.0 and an.erlang_c(0.0, 4) == 0.0


@pytest.mark.parametrize("a, c", [(5, 3), (37, 40), (250, 260), (1000, 1000)])
def test_erlang_b_recursion_matches_exact_sum(a, c):
    """The stable recursion agrees with the exact rational formula (A^c/c!) / sum_j A^j/j!."""
    terms = [Fraction(a) ** j / math.factorial(j) for j in range(c + 1)]
    exact = float(terms[-1] / sum(terms))
    assert an.erlang_b(a, c) == pytest.approx(exact, rel=1e-11)


def test_retry_and_timeout_textbook():
    """Retry attempts are the geometric partial sum and timeout failure is 1 - F^n."""
    assert an.retry_attempts_per_call(0.5, 2) == pytest.approx(1.75)
    assert an.retry_attempts_per_call(0.0, 3) == 1.0
    assert an.retry_attempts_per_call(1.0, 3) == 4.0
    assert an.retry_attempts_per_call(1 - 1e-12, 3) == pytest.approx(4.0, rel=1e-9)
    assert an.retry_attempts_per_call(0.2, 0) == 1.0
    assert an.timeout_failure_probability(0.99, 100) == pytest.approx(1 - 0.99**100)
    assert an.timeout_failure_probability(0.0, 3) == 1.0
    assert an.timeout_failure_probability(1.0, 3) == 0.0


# --- queues: internal consistency -----------------------------------------------------------


def test_mmc_with_one_server_equals_mm1():
    """M/M/c with c=1 reproduces every M/M/1 metric, including the Exp(mu - lambda) sojourn."""
    one, c1 = an.mm1(70.0, 10.0), an.mmc(70.0, 10.0, 1)
    for field in (
        "utilization",
        "wait_probability",
        "mean_wait_ms",
        "mean_sojourn_ms",
        "mean_in_system",
        "mean_queue_length",
    ):
        assert getattr(c1, field) == pytest.approx(getattr(one, field), rel=1e-12), field
    assert one.utilization == pytest.approx(0.7) and one.wait_probability == pytest.approx(0.7)
    assert one.mean_sojourn_ms == pytest.approx(10.0 / 0.3)
    rate = 1 / 10.0 - 70.0 / 1000  # mu - lambda, per ms
    for q in (0.1, 0.5, 0.99, 0.999999):
        expected = -math.log1p(-q) / rate
        assert one.sojourn_quantile_ms(q) == pytest.approx(expected, rel=1e-9)
        assert c1.sojourn_quantile_ms(q) == pytest.approx(expected, rel=1e-9)
    for t in (0.5, 20.0, 300.0):
        assert c1.sojourn_cdf(t) == pytest.approx(-math.expm1(-rate * t), rel=1e-12)


@pytest.mark.parametrize("lam, s, c", [(70.0, 10.0, 1), (250.0, 10.0, 3), (9_500.0, 1.0, 10)])
def test_littles_law_holds(lam, s, c):
    """Returned metrics satisfy L = lambda W, Lq = lambda Wq and W = Wq + S."""
    m = an.mmc(lam, s, c)
    assert m.mean_in_system == pytest.approx(lam / 1000 * m.mean_sojourn_ms, rel=1e-12)
    assert m.mean_queue_length == pytest.approx(lam / 1000 * m.mean_wait_ms, rel=1e-12)
    assert m.mean_sojourn_ms == pytest.approx(m.mean_wait_ms + s, rel=1e-12)
    assert m.mean_in_system == pytest.approx(m.mean_queue_length + c * m.utilization, rel=1e-12)


@pytest.mark.parametrize("lam, s, c", [(250.0, 10.0, 3), (100.0, 10.0, 2), (9_500.0, 1.0, 10)])
def test_mmc_sojourn_distribution_has_the_right_mean(lam, s, c):
    """Integrating the sojourn survival function gives mean_sojourn_ms (and W = Wq + S)."""
    m = an.mmc(lam, s, c)
    mean, _ = integrate.quad(lambda t: 1 - m.sojourn_cdf(t), 0, np.inf, limit=200)
    assert mean == pytest.approx(m.mean_sojourn_ms, rel=1e-7)


def test_mmc_sojourn_cdf_is_continuous_where_theta_equals_mu():
    """At theta == mu (lambda = (c-1) mu) the cdf is the (1 + mu t) e^{-mu t} limit, and nearby
    loads on either side agree with it."""
    s, c, t = 10.0, 2, 17.0
    mu = 1 / s
    m = an.mmc(100.0, s, c)  # theta = 2 mu - lambda = mu
    cw = m.wait_probability
    exact = 1 - ((1 - cw) * math.exp(-mu * t) + cw * (1 + mu * t) * math.exp(-mu * t))
    assert m.sojourn_cdf(t) == pytest.approx(exact, rel=1e-12)
    for lam in (100.0 * (1 - 1e-9), 100.0 * (1 + 1e-9)):
        assert an.mmc(lam, s, c).sojourn_cdf(t) == pytest.approx(exact, rel=1e-7)


@pytest.mark.parametrize("lam, s, c", [(250.0, 10.0, 3), (100.0, 10.0, 2), (50.0, 10.0, 4)])
def test_queue_quantiles_invert_the_cdf(lam, s, c):
    """sojourn_quantile_ms inverts sojourn_cdf; wait_quantile_ms inverts P(W <= t)."""
    m = an.mmc(lam, s, c)
    theta = c / s - lam / 1000
    for q in (0.01, 0.5, 0.9, 0.999, 1 - 1e-9):
        assert m.sojourn_cdf(m.sojourn_quantile_ms(q)) == pytest.approx(q, abs=1e-10)
        w = m.wait_quantile_ms(q)
        wait_cdf = 1 - m.wait_probability * math.exp(-theta * w)
        assert w == 0.0 if q <= 1 - m.wait_probability else wait_cdf == pytest.approx(q)
    assert m.sojourn_quantile_ms(0.0) == 0.0 and m.sojourn_quantile_ms(1.0) == math.inf
    assert m.sojourn_cdf(-1.0) == 0.0


def test_capacity_inverses_of_the_sojourn_quantile():
    """mmc_max_rate inverts the M/M/1 closed form lambda = mu - ln(1 / (1 - q)) / limit;
    mmc_min_servers is the first c whose quantile is within the limit."""
    mu_per_s = 100.0
    assert an.mmc_max_rate(10.0, 1, 0.99, 200.0) == pytest.approx(
        mu_per_s - math.log(100.0) / 0.2, rel=1e-9
    )
    rate = an.mmc_max_rate(10.0, 4, 0.999, 120.0)
    assert an.mmc(rate, 10.0, 4).sojourn_quantile_ms(0.999) == pytest.approx(120.0, rel=1e-6)
    assert an.mmc_max_rate(10.0, 4, 0.99, 40.0) == 0.0  # Exp(10 ms) alone: p99 46 ms
    c = an.mmc_min_servers(250.0, 10.0, 0.99, 75.0)
    assert an.mmc(250.0, 10.0, c).sojourn_quantile_ms(0.99) <= 75.0
    assert an.mmc(250.0, 10.0, c - 1).sojourn_quantile_ms(0.99) > 75.0
    with pytest.raises(ValueError, match="no server count works"):
        an.mmc_min_servers(250.0, 10.0, 0.99, 40.0)


def test_mm1k_blocking_closed_form_and_rho_one():
    """M/M/1/K blocking is 1/(K+1) at rho=1, is continuous there, and matches the closed form."""
    for k in (1, 5, 50):
        assert an.mm1k_blocking_probability(100.0, 10.0, k) == pytest.approx(1 / (k + 1))
        for lam in (100.0 * (1 - 1e-10), 100.0 * (1 + 1e-10)):
            assert an.mm1k_blocking_probability(lam, 10.0, k) == pytest.approx(1 / (k + 1))
    rho, k = 0.8, 4
    expected = (1 - rho) * rho**k / (1 - rho ** (k + 1))
    assert an.mm1k_blocking_probability(80.0, 10.0, k) == pytest.approx(expected, rel=1e-12)
    assert an.mm1k_blocking_probability(300.0, 10.0, 2) == pytest.approx(
        (1 - 3) * 9 / (1 - 27), rel=1e-12
    )
    assert 0.999 < an.mm1k_blocking_probability(1e6, 10.0, 1000) <= 1.0  # no overflow


@pytest.mark.parametrize("lam", [30.0, 100.0, 250.0, 5_000.0])
def test_mmck_agrees_with_mm1k_and_erlang_b(lam):
    """M/M/c/K with c=1 equals M/M/1/K, and with K=c equals Erlang B (pure loss)."""
    for k in (1, 3, 20):
        assert an.mmck_blocking_probability(lam, 10.0, 1, k) == pytest.approx(
            an.mm1k_blocking_probability(lam, 10.0, k), rel=1e-10
        )
    for c in (1, 4, 30):
        assert an.mmck_blocking_probability(lam, 10.0, c, c) == pytest.approx(
            an.erlang_b(lam * 10.0 / 1000, c), rel=1e-10
        )


# --- order statistics -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 100])
def test_kth_of_n_quantile_with_k_equal_n_is_the_max(n):
    """kth_of_n_quantile(k=n) equals max_of_n_quantile, and n=1 is the plain quantile."""
    for q in (0.05, 0.5, 0.99):
        assert an.kth_of_n_quantile(exp_ppf, q, n, n) == pytest.approx(
            an.max_of_n_quantile(exp_ppf, q, n), rel=1e-10
        )
    assert an.max_of_n_quantile(exp_ppf, 0.5, 1) == pytest.approx(EXP_MEAN_MS * math.log(2))


@pytest.mark.parametrize("k, n", [(1, 1), (1, 10), (3, 10), (10, 10), (99, 100), (50, 1000)])
def test_kth_of_n_cdf_inverts_the_quantile(k, n):
    """kth_of_n_cdf(F(kth_of_n_quantile(q))) == q, and k=n / k=1 reduce to F^n / 1-(1-F)^n."""
    for q in (0.01, 0.5, 0.99):
        t = an.kth_of_n_quantile(exp_ppf, q, k, n)
        assert an.kth_of_n_cdf(exp_cdf(t), k, n) == pytest.approx(q, rel=1e-9)
    assert an.kth_of_n_cdf(0.9, n, n) == pytest.approx(0.9**n)
    assert an.kth_of_n_cdf(0.1, 1, n) == pytest.approx(1 - 0.9**n)


@pytest.mark.parametrize("k, n", [(1, 1), (1, 5), (3, 10), (10, 10), (100, 100), (1000, 1000)])
def test_kth_of_n_mean_exponential_known_sum(k, n):
    """For Exp(m), E[X_(k) of n] = m * sum_{i=n-k+1}^{n} 1/i (Renyi), despite ppf(1) = inf."""
    expected = EXP_MEAN_MS * math.fsum(1 / i for i in range(n - k + 1, n + 1))
    assert an.kth_of_n_mean(exp_ppf, k, n) == pytest.approx(expected, rel=1e-7)
    if k == n:
        assert an.exponential_max_mean_ms(EXP_MEAN_MS, n) == pytest.approx(expected, rel=1e-12)


def test_kth_of_n_mean_normal_and_harmonic_asymptotics():
    """Normal order-statistic means match the tabulated E[max of 2] = 1/sqrt(pi); H_n is right
    past the direct-sum cutoff."""
    assert an.kth_of_n_mean(stats.norm.ppf, 2, 2) == pytest.approx(1 / math.sqrt(math.pi))
    assert an.kth_of_n_mean(stats.norm.ppf, 3, 5) == pytest.approx(0.0, abs=1e-9)
    h = math.fsum(1 / i for i in range(1, 5001))
    assert an.exponential_max_mean_ms(2.0, 5000) == pytest.approx(2.0 * h, rel=1e-12)


# --- Monte-Carlo checks (fixed seed, tolerances from the standard error) ---------------------


def test_max_of_n_quantile_monte_carlo():
    """The fraction of simulated fan-out maxima below the analytic quantile is q within 4 sigma."""
    rng = np.random.default_rng(20240601)
    trials, n = 40_000, 25
    maxima = rng.exponential(EXP_MEAN_MS, size=(trials, n)).max(axis=1)
    for q in (0.5, 0.9, 0.99):
        t = an.max_of_n_quantile(exp_ppf, q, n)
        within_sigmas(np.mean(maxima <= t), q, math.sqrt(q * (1 - q) / trials))
    mean = an.exponential_max_mean_ms(EXP_MEAN_MS, n)
    within_sigmas(maxima.mean(), mean, maxima.std(ddof=1) / math.sqrt(trials))


@pytest.mark.parametrize("hedge_after_ms", [0.0, 5.0, 30.0])
def test_hedged_exponential_monte_carlo(hedge_after_ms):
    """Simulated min(X1, d + X2) matches the hedged mean, extra ops and quantiles within 4 sigma."""
    rng = np.random.default_rng(7)
    trials, d = 200_000, hedge_after_ms
    x1, x2 = rng.exponential(EXP_MEAN_MS, size=(2, trials))
    latency = np.minimum(x1, d + x2)
    h = an.hedged_exponential(EXP_MEAN_MS, d)
    within_sigmas(latency.mean(), h.mean_latency_ms, latency.std(ddof=1) / math.sqrt(trials))
    p = h.extra_ops_per_call
    within_sigmas(np.mean(x1 > d), p, math.sqrt(max(p * (1 - p), 1e-12) / trials))
    for q in (0.1, 0.5, 0.95, 0.999):
        t = h.latency_quantile_ms(q)
        assert h.latency_cdf(t) == pytest.approx(q, rel=1e-12)
        within_sigmas(np.mean(latency <= t), q, math.sqrt(q * (1 - q) / trials))


def test_hedged_exponential_limits():
    """Hedging at 0 ms halves the mean (min of two); never hedging leaves Exp(mean) unchanged."""
    assert an.hedged_exponential(10.0, 0.0).mean_latency_ms == pytest.approx(5.0)
    assert an.hedged_exponential(10.0, 0.0).extra_ops_per_call == 1.0
    never = an.hedged_exponential(10.0, 1e6)
    assert never.mean_latency_ms == pytest.approx(10.0) and never.extra_ops_per_call == 0.0
    assert never.latency_quantile_ms(0.5) == pytest.approx(10.0 * math.log(2))
    assert never.latency_quantile_ms(1.0) == math.inf


# --- contention-free request latency on a grid ----------------------------------------------
#
# Tolerances: contention_free_latency rounds every draw to the nearest grid point (|error| <=
# h/2, h = step_ms), takes order statistics of the rounded draws exactly, and adds them exactly
# (FFT convolution), so its grid latency is within m * h / 2 of the true one on every sample
# path, m being the number of draws added along the longest chain of steps. Quantiles and the
# mean therefore err by at most m * h / 2, plus h / 2 for reading a quantile inside a cell:
# grid_tolerance(m) = (m + 1) * h / 2. (The observed error is O(h^2), far smaller.)


def grid_tolerance(prediction: an.LatencyPrediction, draws: int) -> float:
    return (draws + 1) * prediction.step_ms / 2


def exp_services(**means_ms: float) -> dict:
    return {
        name: {"latency": {"dist": "exponential", "mean_ms": m}} for name, m in means_ms.items()
    }


def predict(services: dict, steps: list, **top) -> an.LatencyPrediction:
    prediction = an.contention_free_latency(make_scenario(services, steps, **top))
    assert prediction is not None
    return prediction


QS = (0.01, 0.5, 0.9, 0.99, 0.999)


@pytest.mark.parametrize(
    "latency",
    [
        {"dist": "exponential", "mean_ms": 10.0},
        {"dist": "lognormal", "p50_ms": 2.0, "p99_ms": 10.0},
        {"dist": "gamma", "mean_ms": 3.0, "cv": 0.7},
        {"dist": "uniform", "min_ms": 2.0, "max_ms": 6.0},
    ],
)
def test_contention_free_single_call_is_the_distribution_itself(latency):
    """One call's predicted latency has the distribution's own mean, quantiles and CDF."""
    p = predict({"s": {"latency": latency}}, [{"call": "s"}])
    dist = make_scenario({"s": {"latency": latency}}, [{"call": "s"}]).services["s"].latency
    frozen, tol = dist.to_scipy(), grid_tolerance(p, 1)
    assert p.mean_ms == pytest.approx(dist.mean(), abs=tol)
    assert p.std_ms == pytest.approx(frozen.std(), abs=tol)  # Minkowski: within m h / 2 too
    for q in QS:
        x = float(frozen.ppf(q))
        assert p.quantile_ms(q) == pytest.approx(x, abs=tol), q
        assert p.cdf(p.quantile_ms(q)) == pytest.approx(q, abs=1e-12)
    assert p.cdf(-1.0) == 0.0 and p.quantile_ms(0.0) == 0.0
    assert p.quantile_ms(1.0) == pytest.approx(float(frozen.ppf(1.0)), abs=tol)  # inf if unbounded


@pytest.mark.parametrize("n", [2, 10, 100])
def test_contention_free_fanout_waits_for_the_max_of_n(n):
    """A fan-out of n exponential calls has mean m * H_n and quantiles F^-1(q^(1/n))."""
    p = predict(exp_services(s=EXP_MEAN_MS), [{"call": "s", "fanout": n}])
    tol = grid_tolerance(p, 1)
    assert p.mean_ms == pytest.approx(an.exponential_max_mean_ms(EXP_MEAN_MS, n), abs=tol)
    for q in QS:
        assert p.quantile_ms(q) == pytest.approx(an.max_of_n_quantile(exp_ppf, q, n), abs=tol)


@pytest.mark.parametrize("k, n", [(1, 5), (3, 5), (99, 100)])
def test_contention_free_quorum_is_the_kth_of_n(k, n):
    """require: k of n exponential calls waits for the k-th answer (Beta order statistic)."""
    p = predict(exp_services(s=EXP_MEAN_MS), [{"call": "s", "fanout": n, "require": k}])
    tol = grid_tolerance(p, 1)
    assert p.mean_ms == pytest.approx(an.kth_of_n_mean(exp_ppf, k, n), abs=tol)
    for q in QS:
        assert p.quantile_ms(q) == pytest.approx(an.kth_of_n_quantile(exp_ppf, q, k, n), abs=tol)


@pytest.mark.parametrize(
    "services, steps",
    [
        (exp_services(db=EXP_MEAN_MS), [{"call": "db", "repeat": 2}]),
        (exp_services(a=EXP_MEAN_MS, b=EXP_MEAN_MS), [{"call": "a"}, {"call": "b"}]),
        (
            {"api": exp_services(x=EXP_MEAN_MS)["x"] | {"steps": [{"call": "db"}]}}
            | exp_services(db=EXP_MEAN_MS),
            [{"call": "api"}],
        ),
    ],
    ids=["repeat", "two-steps", "own-draw-then-step"],
)
def test_contention_free_two_exponentials_in_sequence_are_erlang_2(services, steps):
    """Two sequential exponential draws of equal mean add up to a gamma(2) latency, whether
    by repeat, by two request steps, or as a service's own draw followed by its step."""
    p = predict(services, steps)
    erlang, tol = stats.gamma(a=2, scale=EXP_MEAN_MS), grid_tolerance(p, 2)
    assert p.mean_ms == pytest.approx(2 * EXP_MEAN_MS, abs=tol)
    assert p.std_ms == pytest.approx(erlang.std(), abs=tol)
    for q in QS:
        assert p.quantile_ms(q) == pytest.approx(erlang.ppf(q), abs=tol)
        # pdf is a cell's probability over its width h: the density averaged over ~h ms
        assert p.pdf(erlang.ppf(q)) == pytest.approx(erlang.pdf(erlang.ppf(q)), rel=1e-3)


def test_contention_free_list_of_services_waits_for_the_slowest():
    """Parallel calls to Exp(5) and Exp(10) end at their max: CDF F5 * F10, mean 5 + 10 - 10/3."""
    p = predict(exp_services(a=5.0, b=10.0), [{"call": ["a", "b"]}])
    tol = grid_tolerance(p, 1)
    assert p.mean_ms == pytest.approx(5.0 + 10.0 - 10.0 / 3.0, abs=tol)
    for t in (1.0, 10.0, 50.0):
        expected = -math.expm1(-t / 5.0) * -math.expm1(-t / 10.0)
        assert p.cdf(t) == pytest.approx(expected, abs=1e-6)


def test_contention_free_shards_and_atoms():
    """fanout: shards calls every instance; a 1%-slow constant mixture over 100 shards is slow
    (>= 100 ms) with probability 1 - 0.99^100, and quantiles at atoms are within h of them."""
    slow = ONE_PERCENT_SLOW
    p = predict(
        {"shard": {"latency": slow, "instances": 100}}, [{"call": "shard", "fanout": "shards"}]
    )
    assert 1 - p.cdf(50.0) == pytest.approx(an.fanout_slow_probability(0.01, 100), rel=1e-9)
    assert p.quantile_ms(0.1) == pytest.approx(1.0, abs=grid_tolerance(p, 1))
    assert p.quantile_ms(0.9) == pytest.approx(100.0, abs=grid_tolerance(p, 1))


def test_contention_free_empirical_latency(tmp_path):
    """An empirical latency file resamples its values: the max of two draws from {1, 2, 3, 4}
    is at most 2 ms with probability 1/4 and has mean 50/16 ms."""
    (tmp_path / "lat.csv").write_text("1\n2\n3\n4\n")
    services = {"s": {"latency": {"dist": "empirical", "file": str(tmp_path / "lat.csv")}}}
    p = predict(services, [{"call": "s", "fanout": 2}])
    assert p.cdf(2.5) == pytest.approx(0.25, abs=1e-12)
    assert p.mean_ms == pytest.approx(50 / 16, abs=grid_tolerance(p, 1))


def test_contention_free_grid_converges_on_the_seed_example():
    """The seed example's p99 moves by far less than 0.1% from 2^14 to 2^18 grid points."""
    from simulator import load_scenario

    scenario = load_scenario(ROOT / "scenarios" / "seed-example.yaml")
    coarse = an.contention_free_latency(scenario, points=2**14)
    fine = an.contention_free_latency(scenario, points=2**18)
    assert coarse is not None and fine is not None
    for q in (0.5, 0.99, 0.999):
        assert coarse.quantile_ms(q) == pytest.approx(fine.quantile_ms(q), rel=1e-5)
    assert coarse.mean_ms == pytest.approx(fine.mean_ms, rel=1e-5)


def interacting(where: str, extra: dict):
    """Request -> [a, b] (all of both); b -> db. ``extra`` is merged into ``where``."""
    services = exp_services(a=5.0, b=5.0, db=1.0)
    services["b"]["steps"] = [{"call": "db"}]
    request = {"steps": [{"call": ["a", "b"]}]}
    targets = {
        "db": services["db"],
        "b.step": services["b"]["steps"][0],
        "request": request,
        "request.step": request["steps"][0],
    }
    targets[where].update(extra)
    return make_scenario(services, request["steps"], request=request)


@pytest.mark.parametrize(
    "where, extra",
    [
        ("db", {"workers": 8}),
        ("db", {"concurrency": {"algorithm": "aimd"}}),
        ("db", {"error_rate": 0.01}),
        ("b.step", {"timeout_ms": 50.0}),
        ("b.step", {"retries": {"max": 1}}),
        ("b.step", {"hedge": {"after_ms": 5.0}}),
        ("b.step", {"optional": True}),
        ("b.step", {"max_parallel": 2}),
        ("b.step", {"cancel_losers": True}),
        ("request", {"deadline_ms": 100.0}),
        ("request.step", {"require": 1}),  # 1 of two different services: no closed form here
    ],
)
def test_contention_free_latency_is_none_when_calls_interact(where, extra):
    """A worker limit, policy, error rate or deadline anywhere the request reaches, or a k-of-n
    step over different services, gives None instead of a prediction."""
    assert an.contention_free_latency(interacting("request", {})) is not None
    assert an.contention_free_latency(interacting(where, extra)) is None


# --- argument validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: an.mm1(-1, 10.0), r"arrival_rps must be > 0.*got -1"),
        (lambda: an.mm1(100.0, 10.0), r"unstable queue.*utilization.*= 1 >= 1"),
        (lambda: an.mmc(400.0, 10.0, 3), r"unstable queue.*1\.333 >= 1"),
        (lambda: an.mmc(10.0, 0.0, 3), r"service_mean_ms must be > 0.*got 0\.0"),
        (lambda: an.mmc(10.0, 1.0, 0), r"servers must be an integer >= 1, got 0"),
        (lambda: an.mmc(10.0, 1.0, 2.0), r"servers must be an integer >= 1, got 2\.0"),
        (lambda: an.erlang_c(3.0, 3), r"offered_load must be < servers.*offered_load=3\.0"),
        (lambda: an.erlang_b(-0.5, 3), r"offered_load must be >= 0.*got -0\.5"),
        (lambda: an.fanout_slow_probability(1.5, 3), r"p must be in \[0, 1\], got 1\.5"),
        (lambda: an.fanout_slow_probability(0.1, 0), r"n must be an integer >= 1, got 0"),
        (lambda: an.kth_of_n_quantile(exp_ppf, 0.5, 7, 5), r"k must be an integer in \[1, 5\]"),
        (lambda: an.kth_of_n_cdf(float("nan"), 1, 5), r"cdf_value must be a real number"),
        (lambda: an.max_of_n_quantile(exp_ppf, -0.1, 5), r"q must be in \[0, 1\], got -0\.1"),
        (lambda: an.kth_of_n_mean(exp_ppf, 0, 5), r"k must be an integer in \[1, 5\], got 0"),
        (lambda: an.exponential_max_mean_ms(0, 5), r"mean_ms must be > 0.*got 0"),
        (lambda: an.mmck_blocking_probability(10.0, 1.0, 3, 2), r"capacity must be .*>= 3"),
        (lambda: an.mm1k_blocking_probability(10.0, 1.0, 0), r"capacity must be .*got 0"),
        (lambda: an.timeout_failure_probability(2, 3), r"cdf_at_timeout must be in \[0, 1\]"),
        (lambda: an.retry_attempts_per_call(0.5, -1), r"max_retries must be an integer >= 0"),
        (lambda: an.retry_attempts_per_call(True, 1), r"p_fail must be a real number"),
        (lambda: an.hedged_exponential(10.0, -1.0), r"hedge_after_ms must be >= 0.*got -1\.0"),
        (lambda: an.mmc(250.0, 10.0, 3).sojourn_quantile_ms(2), r"q must be in \[0, 1\]"),
        (lambda: an.hedged_exponential(1.0, 1.0).latency_quantile_ms(-1), r"q must be in"),
        (lambda: an.contention_free_latency(SIMPLE, points=8), r"points must be .*>= 16, got 8"),
        (
            lambda: an.contention_free_latency(SIMPLE, tail_probability=0),
            r"tail_probability must be in \(0, 1\), got 0",
        ),
        (lambda: an.contention_free_latency(SIMPLE).quantile_ms(1.5), r"q must be in \[0, 1\]"),
        (lambda: an.contention_free_latency(SIMPLE).cdf("1"), r"t_ms must be a real number"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(call, match):
    """Invalid inputs raise ValueError whose message names the argument (or the load) and value."""
    with pytest.raises(ValueError, match=match):
        call()


def test_contention_free_keeps_an_atom_at_the_bound():
    """Four constant 1 ms calls in a row: the whole mass sits at the latency bound, and stays
    on the grid (found by the property tests: rounding each call up once summed it off the
    grid's end, and the prediction was empty)."""
    steps = [{"call": "s"}, {"call": "s"}, {"call": "s", "repeat": 2}]
    prediction = predict({"s": {"latency": {"dist": "constant", "ms": 1.0}}}, steps)
    tolerance = grid_tolerance(prediction, 4)
    assert prediction.quantile_ms(0.5) == pytest.approx(4.0, abs=tolerance)
    assert prediction.mean_ms == pytest.approx(4.0, abs=tolerance)
    assert prediction.cdf(4.0 + tolerance) == pytest.approx(1.0)
