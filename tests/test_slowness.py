"""Correlated slowness (engine.slowness): slow periods and stop-the-world pauses per instance,
against their exact answers under Poisson arrivals, and what they do to balancers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import check, make_scenario

from simulator import analytic
from simulator.engine.sim import Sim
from simulator.engine.slowness import Slowness
from simulator.scenario.model import Service


def _latencies(services: dict, rps: float, duration_s: float, seed: int = 1) -> np.ndarray:
    scenario = make_scenario(services, [{"call": "db"}], rps=rps, duration_s=duration_s,
                             seed=seed)  # fmt: skip
    sim = Sim(scenario, seed)
    sim.run()
    return np.asarray(sim.svcs["db"].latency_ms, dtype=float)


def test_pauses_delay_the_calls_they_overlap_by_the_exact_share_and_mean():
    """Pauses of L = 50 ms every T = 1 s, calls of d = 5 ms: a call is delayed when it starts
    in a pause or a pause starts while it runs, with probability (L + d) / T = 5.5%, by
    (L²/2 + d·L) / T = 1.5 ms on average (Poisson arrivals see time averages). Tolerances: 4
    standard errors, binomial for the share, Campbell's theorem (E[X²] = (L³/3 + d·L²) / T)
    for the mean."""
    L, d, T = 50.0, 5.0, 1000.0
    services = {"db": {"latency": {"dist": "constant", "ms": d},
                       "pauses": {"every_s": T / 1000, "length_ms": L}}}  # fmt: skip
    lat = _latencies(services, rps=200, duration_s=300)
    n = len(lat)
    want = analytic.pause_effect(T / 1000, L, d)
    assert want.delayed_share == pytest.approx(0.055) and want.mean_added_ms == pytest.approx(1.5)
    share, mean_added = want.delayed_share, want.mean_added_ms
    check("pauses: share of calls delayed", float(np.mean(lat > d + 1e-9)), share,
          4 * math.sqrt(share * (1 - share) / n))  # fmt: skip
    check("pauses: mean added delay (ms)", float(lat.mean() - d), mean_added,
          4 * math.sqrt((want.added_second_moment_ms2 - mean_added**2) / n))  # fmt: skip


def test_slow_periods_slow_the_share_of_calls_they_cover():
    """20 instances, each slow for the first 2 s of its 10 s periods with probability 0.5,
    factor 10 on a 1 ms call: 10% of calls take 10 ms. The share's noise is mostly which
    instance-periods are slow: 4 x 0.2 x sqrt(0.25 / 1,200 instance-periods)."""
    services = {"db": {"latency": {"dist": "constant", "ms": 1}, "instances": 20,
                       "balancer": "random",
                       "slow_periods": {"every_s": 10, "length_s": 2, "factor": 10,
                                        "instances": 0.5}}}  # fmt: skip
    lat = _latencies(services, rps=500, duration_s=600)
    assert set(np.round(lat, 6)) == {1.0, 10.0}
    share = analytic.slow_share(10, 2, 0.5)
    check("slow periods: share of calls slowed", float(np.mean(lat > 1.5)), share,
          4 * 0.2 * math.sqrt(0.25 / 1200) + 4 * math.sqrt(0.1 * 0.9 / len(lat)))  # fmt: skip


def test_a_call_arriving_in_a_pause_starts_when_it_ends():
    """own_time on a known phase: during a pause the call waits for its end; a pause starting
    while it runs adds its length; two pauses, both."""
    spec = Service.model_validate({"latency": {"dist": "constant", "ms": 1},
                                   "pauses": {"every_s": 0.1, "length_ms": 10}})  # fmt: skip
    slow = Slowness(spec, 1000.0, np.random.default_rng(0))
    slow.pause_phase = [0.0]  # pauses at [0, 10), [100, 110), ...
    assert slow.own_time(0, 5.0, 1.0) == pytest.approx(6.0)  # waits 5, runs 1
    assert slow.own_time(0, 95.0, 10.0) == pytest.approx(20.0)  # runs 5, pause 10, runs 5
    assert slow.own_time(0, 50.0, 150.0) == pytest.approx(170.0)  # two pauses on the way
    assert slow.own_time(0, 20.0, 1.0) == pytest.approx(1.0)


def test_slowness_is_seeded_and_independent_across_instances():
    """Same seed, same slow periods; each instance draws its own phase."""
    spec = Service.model_validate({"latency": {"dist": "constant", "ms": 1}, "instances": 8,
                                   "slow_periods": {"every_s": 5, "length_s": 1, "factor": 3,
                                                    "instances": 0.5}})  # fmt: skip
    a = Slowness(spec, 60_000.0, np.random.default_rng(7))
    b = Slowness(spec, 60_000.0, np.random.default_rng(7))
    assert a.slow_phase == b.slow_phase and a.slow_on == b.slow_on
    assert len(set(a.slow_phase)) == 8


def test_p2c_steers_around_a_slow_instance_that_round_robin_keeps_feeding():
    """With correlated slowness, a balancer that counts outstanding calls cuts the tail: p2c's
    p99 is well under round robin's on the same instances and seed."""

    def p99(balancer: str) -> float:
        services = {"db": {"latency": {"dist": "exponential", "mean_ms": 5}, "workers": 4,
                           "instances": 10, "balancer": balancer,
                           "slow_periods": {"every_s": 10, "length_s": 3, "factor": 8,
                                            "instances": 0.2}}}  # fmt: skip
        return float(np.quantile(_latencies(services, rps=2000, duration_s=60), 0.99))

    assert p99("p2c") < 0.5 * p99("round_robin")


def test_the_call_graph_says_which_services_are_slow_at_times():
    """The call graph's box for a service with slowness names it, in both layouts."""
    from conftest import ROOT

    from simulator import load_scenario
    from simulator.report.callgraph import call_graph, dot_source

    scenario = load_scenario(ROOT / "scenarios" / "tail-at-scale.yaml").with_overrides(
        {"services.backend.pauses": {"every_s": 1, "length_ms": 50}}
    )
    text = "slow ×5 for 2 s of 10 s (p 0.2), pauses 50 ms every 1 s"
    assert text in dot_source(scenario, {})
    nodes, _edges = call_graph(scenario, {})
    assert any(text in line for node in nodes for line in node.lines)
