"""Latency distributions: parameters mean what the table in SPEC §2 says, samples match the
analytic mean (within 4 standard errors of n = 200,000 draws)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from simulator.scenario.distributions import Latency

LATENCY = TypeAdapter(Latency)
N = 200_000


def dist(**spec):
    return LATENCY.validate_python(spec)


@settings(deadline=None)  # the first example imports scipy
@given(p50=st.floats(0.01, 1e4), ratio=st.floats(1.001, 1e3))
def test_lognormal_from_p50_p99_reproduces_both(p50, ratio):
    """A lognormal given by p50_ms and p99_ms has exactly those quantiles."""
    d = dist(dist="lognormal", p50_ms=p50, p99_ms=p50 * ratio).to_scipy()
    assert d.ppf(0.5) == pytest.approx(p50, rel=1e-9)
    assert d.ppf(0.99) == pytest.approx(p50 * ratio, rel=1e-9)


def test_lognormal_samples_hit_p50_and_p99():
    """Sampled lognormal latencies have the requested p50 and p99 (4 quantile standard errors)."""
    d = dist(dist="lognormal", p50_ms=5, p99_ms=40)
    x = d.sample(np.random.default_rng(1), N)
    f = d.to_scipy()
    for p, target in ((0.5, 5.0), (0.99, 40.0)):
        se = math.sqrt(p * (1 - p) / N) / f.pdf(target)
        assert abs(np.quantile(x, p) - target) < 4 * se


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "constant", "ms": 3},
        {"dist": "exponential", "mean_ms": 6},
        {"dist": "lognormal", "median_ms": 4, "sigma": 0.5},
        {"dist": "lognormal", "mean_ms": 10, "cv": 1.5},
        {"dist": "gamma", "mean_ms": 12, "cv": 0.8},
        {"dist": "weibull", "shape": 1.5, "scale_ms": 10},
        {"dist": "pareto", "alpha": 3, "scale_ms": 2},
        {"dist": "pareto", "alpha": 1.5, "scale_ms": 2, "cap_ms": 50},
        {"dist": "uniform", "min_ms": 2, "max_ms": 8},
        {"dist": "scipy", "name": "lognorm", "params": {"s": 0.5}, "scale_ms": 3},
        {
            "dist": "mixture",
            "components": [
                {"weight": 0.99, "dist": "constant", "ms": 10},
                {"weight": 0.01, "dist": "constant", "ms": 1000},
            ],
        },
    ],
    ids=lambda s: s["dist"] + "-" + "-".join(k for k in s if k != "dist"),
)
def test_sample_mean_matches_analytic_mean(spec):
    """Each family's samples average to its analytic mean."""
    d = dist(**spec)
    x = d.sample(np.random.default_rng(2), N)
    assert (x >= 0).all()
    se = x.std() / math.sqrt(N)
    assert abs(x.mean() - d.mean()) <= 4 * se + 1e-12


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "exponential", "mean_ms": 6},
        {"dist": "lognormal", "median_ms": 4, "sigma": 0.5},
        {"dist": "lognormal", "p50_ms": 1, "p99_ms": 8},
        {"dist": "gamma", "mean_ms": 12, "cv": 0.8},
        {"dist": "weibull", "shape": 1.5, "scale_ms": 10},
        {"dist": "weibull", "shape": 0.5, "scale_ms": 3},
        {"dist": "pareto", "alpha": 3, "scale_ms": 2},
        {"dist": "uniform", "min_ms": 2, "max_ms": 8},
    ],
    ids=lambda s: s["dist"] + "-" + "-".join(k for k in s if k != "dist"),
)
def test_closed_form_cdf_and_tail_match_scipy(spec):
    """The closed forms a run's report uses instead of importing scipy.stats agree with
    scipy's CDF and upper quantiles to ~double precision, at 0, below, inside and past the
    support."""
    d = dist(**spec)
    f = d.to_scipy()
    t = np.concatenate([[0.0, 1e-6], np.geomspace(1e-3, 1e4, 500)])
    np.testing.assert_allclose(d.cdf_ms(t), f.cdf(t), rtol=1e-9, atol=1e-14)
    for p in (0.5, 1e-3, 1e-9):
        assert d.exact_tail_ms(p) == pytest.approx(float(f.isf(p)), rel=1e-9)


def test_capped_pareto_cdf_has_its_atom_at_the_cap():
    d = dist(dist="pareto", alpha=1.5, scale_ms=2, cap_ms=50)
    below = 1 - (2 / 49.9) ** 1.5
    np.testing.assert_allclose(d.cdf_ms(np.array([1.0, 49.9, 50.0])), [0.0, below, 1.0])


def test_lognormal_mean_cv_parameterisation():
    """mean_ms + cv gives that mean and coefficient of variation."""
    d = dist(dist="lognormal", mean_ms=10, cv=0.5).to_scipy()
    assert d.mean() == pytest.approx(10) and d.std() / d.mean() == pytest.approx(0.5)


def test_pareto_is_type_one_and_cap_clips():
    """Pareto's scale_ms is the minimum latency; cap_ms is the maximum."""
    x = dist(dist="pareto", alpha=1.2, scale_ms=2, cap_ms=30).sample(np.random.default_rng(3), N)
    assert x.min() >= 2 and x.max() == 30


def test_empirical_resamples_the_file(tmp_path):
    """empirical draws only values listed in its file, each about equally often."""
    (tmp_path / "lat.csv").write_text("latency_ms\n1\n2\n3\n# comment\n\n4\n")
    d = LATENCY.validate_python(
        {"dist": "empirical", "file": "lat.csv"}, context={"base_dir": str(tmp_path)}
    )
    x = d.sample(np.random.default_rng(4), 40_000)
    values, counts = np.unique(x, return_counts=True)
    assert values.tolist() == [1, 2, 3, 4]
    assert np.all(np.abs(counts - 10_000) < 4 * math.sqrt(10_000 * 0.75))
    assert d.mean() == 2.5


def test_mixture_weights_need_not_sum_to_one():
    """Mixture weights are normalised."""
    d = dist(
        dist="mixture",
        components=[
            {"weight": 3, "dist": "constant", "ms": 1},
            {"weight": 1, "dist": "constant", "ms": 5},
        ],
    )
    assert d.mean() == pytest.approx(2.0)


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"dist": "lognormal", "p50_ms": 5}, "p50_ms + p99_ms"),
        ({"dist": "lognormal", "p50_ms": 5, "p99_ms": 5}, "must be above p50_ms"),
        ({"dist": "uniform", "min_ms": 5, "max_ms": 1}, "at least min_ms"),
        ({"dist": "pareto", "alpha": 2, "scale_ms": 5, "cap_ms": 1}, "at least scale_ms"),
        ({"dist": "scipy", "name": "poisson"}, "not a continuous"),
        ({"dist": "scipy", "name": "lognorm", "params": {"q": 1}}, "rejects params"),
        ({"dist": "exponential", "mean_ms": 0}, "greater than 0"),
        ({"dist": "mixture", "components": [{"dist": "constant", "ms": 1}]}, "weight"),
    ],
)
def test_bad_parameters_are_refused(spec, words):
    """Impossible parameters fail validation with a message naming them."""
    with pytest.raises(ValidationError, match=re.escape(words)):
        dist(**spec)


def test_mixture_scenarios_pickle_for_worker_processes():
    """Replications send the scenario to worker processes by pickle; mixture components
    (classes made at import) must be found by name there."""
    import pickle

    from simulator import load_scenario

    scenario = load_scenario(ROOT / "scenarios" / "homepage.yaml")
    assert any(s.latency.dist == "mixture" for s in scenario.services.values())
    assert pickle.loads(pickle.dumps(scenario)) == scenario
