"""Streaming percentiles (``percentiles: streaming``): the same run as exact percentiles to
within 1% on every percentile, identical counts and sums, and buffers that do not grow with
the run's length."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from simulator import Scenario, load_scenario, simulate
from simulator.engine.sim import Sim
from simulator.scenario import size
from simulator.scenario.size import estimate, too_big

SEED = ROOT / "scenarios" / "seed-example.yaml"


def _percentiles(summary: dict) -> dict[str, float]:
    """Every percentile in a summary, by dotted path."""
    out = {}
    for block in ("latency_ms", "latency_ok_ms"):
        out |= {f"{block}.{k}": v for k, v in summary[block].items() if k.startswith("p")}
    for name, svc in summary["services"].items():
        out |= {f"services.{name}.latency_ms.{k}": svc["latency_ms"][k] for k in ("p50", "p99")}
    return out


@pytest.fixture(scope="module")
def both():
    """The homepage scenario (worker pools, queues, errors) for 20 s, exact and streaming."""
    base = load_scenario(ROOT / "scenarios" / "homepage.yaml").with_overrides({"duration_s": 20})
    exact = simulate(base, workers=1)
    streaming = simulate(base.with_overrides({"percentiles": "streaming"}), workers=1)
    return exact, streaming


def test_every_percentile_is_within_one_percent_of_the_exact_one(both):
    """The same sample path: each percentile of requests and services within 1% (HdrHistogram
    with 3 significant figures is good to ~0.1%)."""
    exact, streaming = both
    assert streaming.summary["percentiles"] == "streaming"
    e, s = _percentiles(exact.summary), _percentiles(streaming.summary)
    assert e.keys() == s.keys()
    for key, value in e.items():
        assert s[key] == pytest.approx(value, rel=0.01), key


def test_counts_sums_and_the_time_series_are_exact(both):
    """Outcomes, calls, means, maxima and every time-series column are the exact ones."""
    exact, streaming = both
    e, s = exact.summary, streaming.summary
    assert s["requests"] == e["requests"]
    for block in ("latency_ms", "latency_ok_ms"):
        for key in ("mean", "max"):
            assert s[block][key] == pytest.approx(e[block][key], rel=1e-9)
    for name, svc in e["services"].items():
        assert s["services"][name]["calls"] == svc["calls"]
        assert s["services"][name]["latency_ms"]["mean"] == pytest.approx(
            svc["latency_ms"]["mean"], rel=1e-6
        )
    for column, values in exact.timeseries.items():
        np.testing.assert_allclose(streaming.timeseries[column], values, rtol=1e-9, err_msg=column)


def test_buffers_are_emptied_every_simulated_second():
    """After a streaming run no per-call or per-request latency is held: only histograms."""
    scenario = load_scenario(SEED).with_overrides(
        {"duration_s": 3, "warmup_s": 1, "percentiles": "streaming"}
    )
    sim = Sim(scenario, 1)
    seen = []
    original = sim._stream

    def spy(event):
        seen.append(len(sim.req_t0) + sum(len(s.latency_ms) for s in sim.svcs.values()))
        original(event)

    sim._stream = spy
    sim.run()
    assert len(seen) >= 4 and max(seen) < 5_000 * 30 * 1.2  # about a second's calls at most
    assert len(sim.req_t0) == 0 and all(len(s.latency_ms) == 0 for s in sim.svcs.values())
    assert sum(sim.requests_stream.outcomes) == sim.requests_stream.latency.count


def test_a_run_too_big_for_exact_percentiles_is_told_to_stream(monkeypatch):
    """When exact storage would not fit but streaming would, the refusal says so."""
    limit = 4 * 2**30  # as on a machine with 8 GiB, whatever this one has
    monkeypatch.setattr(size, "memory_limit_bytes", lambda: limit)
    base = load_scenario(SEED)
    per_s = estimate(base.with_overrides({"duration_s": 1000})).memory_bytes / 1005
    duration = 1.5 * limit / per_s
    big = base.model_dump(mode="json") | {"duration_s": duration}
    with pytest.raises(Exception, match="set percentiles: streaming") as refused:
        Scenario.from_data(big)
    assert "limit" in str(refused.value)
    streamed = Scenario.from_data(big | {"percentiles": "streaming"})
    assert too_big(streamed) is None
