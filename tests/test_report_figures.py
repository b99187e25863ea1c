"""What the report adds to the run's figures: queue saturation (time-weighted queue p99),
Little's law per service, the call graph, warnings and key findings, theory cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import ROOT, check, make_scenario, run
from scipy import stats

from simulator import analytic, load_scenario
from simulator.report.callgraph import call_graph
from simulator.report.crosscheck import cross_checks
from simulator.report.data import ReportData
from simulator.report.findings import key_findings, warnings
from simulator.report.run_report import write_report
from simulator.results.format import fmt_ms
from simulator.results.summary import time_quantile


def replication_tolerance(values: list[float]) -> float:
    """Half-width of the 99.9% Student-t interval of the mean over replications."""
    n = len(values)
    return float(stats.t.ppf(0.9995, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


# --------------------------------------------------------------------------- queue saturation


def test_time_quantile_weights_levels_by_time():
    """Level 0 gets the window's time not spent at any level >= 1; the quantile is the first
    level whose cumulative time share reaches q."""
    window_ms = 1000.0
    start = [0.0, 100.0, 0.0]  # before the window: ignored
    end = [0.0, 400.0, 200.0, 15.0]  # in the window: 300 ms at 1, 200 at 2, 15 at 3
    # shares: level 0 485/1000, 1 -> 0.785, 2 -> 0.985, 3 -> 1.0
    assert time_quantile(start, end, window_ms, 0.5) == 1
    assert time_quantile(start, end, window_ms, 0.98) == 2
    assert time_quantile(start, end, window_ms, 0.99) == 3
    assert time_quantile([], [0.0], window_ms, 0.99) == 0  # never queued


@pytest.mark.slow
def test_mm1_queue_mean_and_p99_match_theory():
    """M/M/1 at rho 0.5: calls waiting Nq has P(Nq > q) = rho^(q+2), so its time-weighted
    p99 is 5 (P(Nq > 4) = 1.6%, P(Nq > 5) = 0.8%) and its mean rho^2/(1 - rho) = 0.5 calls.
    The summary's Little's law fields agree on the same sample path."""
    res = run(
        {"server": {"latency": {"dist": "exponential", "mean_ms": 1.0}, "workers": 1}},
        [{"call": "server"}],
        rps=500.0,
        duration_s=60.0,
        warmup_s=2.0,
        replications=8,
        seed=3,
    )
    servers = [r["services"]["server"] for r in res.runs]
    # The p99 is a step function of the tail share: a 1.6% / 0.8% margin around 1% is many
    # standard errors of a 30,000-call replication, so every replication lands on 5.
    assert [s["queue_p99"] for s in servers] == [5] * len(servers)
    means = [s["queue_mean"] for s in servers]
    check(
        "M/M/1 rho=0.5: mean calls waiting",
        float(np.mean(means)),
        0.5,
        replication_tolerance(means),
    )
    for s in servers:
        little = s["little"]
        lam_w = little["admitted_per_sec"] * little["time_in_service_ms"] / 1000.0
        # Same sample path: only calls straddling the window's edges differ, ~2 L W / T.
        assert little["calls_in_service"] == pytest.approx(lam_w, rel=0.01)


# --------------------------------------------------------------------------- call graph


def test_call_graph_of_the_seed_example():
    """request -x10-> service -2x in sequence-> db, at 50,000 and 100,000 calls/s."""
    scenario = load_scenario(ROOT / "scenarios" / "seed-example.yaml")
    nodes, edges = call_graph(scenario, {"offered_rps": 5000.0})
    assert [(n.name, n.depth) for n in nodes] == [("request", 0), ("service", 1), ("db", 2)]
    assert [(e.caller, e.callee, e.label, e.nominal_per_s) for e in edges] == [
        ("request", "service", "×10", 50_000.0),
        ("service", "db", "2× in sequence", 100_000.0),
    ]


def test_call_graph_labels_policies_and_longest_depth():
    """An edge names its step's policies; a service called at two depths sits at the deeper."""
    scenario = make_scenario(
        {
            "api": {"latency": {"dist": "constant", "ms": 1}, "steps": [{"call": "db"}]},
            "db": {"latency": {"dist": "constant", "ms": 1}, "workers": 4},
        },
        [
            {"call": "api", "timeout_ms": 50, "retries": {"max": 3}},
            {"call": "db", "fanout": 5, "require": 3},
        ],
    )
    nodes, edges = call_graph(scenario, {"offered_rps": 100.0})
    assert {n.name: n.depth for n in nodes} == {"request": 0, "api": 1, "db": 2}
    labels = {(e.caller, e.callee): e.label for e in edges}
    assert labels[("request", "api")] == "timeout 50 ms, retries 3"
    assert labels[("request", "db")] == "×5, need 3 of 5"
    rates = {(e.caller, e.callee): e.nominal_per_s for e in edges}
    assert rates == {("request", "api"): 100.0, ("request", "db"): 500.0, ("api", "db"): 100.0}


def test_the_dot_call_graph_tells_the_steps_in_order():
    """homepage: the four parallel calls of step 1 rank before step 2's session-cache
    (invisible ordering edges), every arrow says its step, and boxes carry the configured
    p50/p99, pools and limits."""
    from simulator.report.callgraph import dot_source

    homepage = load_scenario(ROOT / "scenarios" / "homepage.yaml")
    source = dot_source(homepage, {"offered_rps": 2000.0})
    for first in ("profile", "recommendations", "ads", "inventory"):
        assert f'"{first}" -> "session-cache" [style=invis];' in source
        assert f'"request" -> "{first}" [label=<step 1<br/>2,000 calls/s>];' in source
    assert '"request" -> "session-cache" [label=<step 2<br/>2,000 calls/s>];' in source
    assert "lognormal p50 5.00 ms, p99 40.0 ms" in source  # profile, as configured
    assert "20 workers × 4" in source and "error rate 0.1%" in source
    assert "mixture, mean" in source  # no closed-form quantiles: the mean instead
    storm = load_scenario(ROOT / "scenarios" / "retry-storm.yaml")
    assert "timeout 50 ms, retries 3" in dot_source(storm, {"offered_rps": 1400.0})
    assert "queue ≤ 400" in dot_source(storm, {})


def test_the_call_graph_falls_back_to_its_own_drawing_without_dot(monkeypatch):
    """Graphviz is optional: without dot the report draws the call graph itself."""
    from simulator.report import callgraph

    scenario = load_scenario(ROOT / "scenarios" / "homepage.yaml")
    data = _data({"offered_rps": 2000.0}, scenario=scenario)
    monkeypatch.setattr(callgraph, "dot_available", lambda: False)
    fallback = callgraph.chart(data)
    assert fallback is not None and fallback.png.startswith(b"\x89PNG")
    assert fallback.caption != callgraph.DOT_CAPTION
    monkeypatch.undo()
    if callgraph.dot_available():
        drawn = callgraph.chart(data)
        assert drawn.caption == callgraph.DOT_CAPTION and drawn.png.startswith(b"\x89PNG")


# --------------------------------------------------------------------------- warnings


def _data(summary: dict, timeseries: dict | None = None, n: int = 100_000, scenario=None):
    lat = np.random.default_rng(1).exponential(10.0, n)
    ts = {k: np.asarray(v, dtype=float) for k, v in (timeseries or {}).items()}
    return ReportData(summary, lat, ts, "test", scenario)


def _summary(**services) -> dict:
    return {
        "duration_s": 40,
        "warmup_s": 10,
        "requests": {"arrived": 100_000, "ok": 100_000, "partial": 0, "failed": 0, "rejected": 0},
        "latency_ms": {"p50": 7.0, "p99": 46.0, "p999": 69.0},
        "services": services,
    }


def _timeseries(queue: list[float], goodput: float = 100.0) -> dict:
    n = len(queue)
    return {
        "t_s": np.arange(n),
        "arrivals": np.full(n, 100.0),
        "goodput": np.full(n, goodput),
        "queue_db": queue,
        "util_db": np.full(n, 0.5),
    }


def test_a_healthy_run_has_no_warnings():
    steady = [3.0] * 50
    assert warnings(_data(_summary(db={"utilization": 0.5}), _timeseries(steady))) == []


def test_saturated_or_growing_service_is_unstable():
    busy = warnings(_data(_summary(db={"utilization": 0.97}), _timeseries([3.0] * 50)))
    assert len(busy) == 1 and busy[0].startswith("db is unstable: its workers were 97.0% busy")
    growing = [3.0] * 10 + list(np.linspace(3, 300, 40))  # the window is rows 10..49
    grown = warnings(_data(_summary(db={"utilization": 0.8}), _timeseries(growing)))
    assert len(grown) == 1 and "its queue grew from" in grown[0]


def test_too_few_requests_for_the_tail_shown():
    thin = warnings(_data(_summary(db={"utilization": 0.5}), _timeseries([3.0] * 50), n=3000))
    assert len(thin) == 1 and thin[0].startswith("Too few samples for the p99.9 shown")
    assert "10,000 requests" in thin[0]
    thinner = warnings(_data(_summary(), {}, n=500))
    assert thinner[0].startswith("Too few samples for the p99 and p99.9 shown: 500 requests")


def test_queues_still_filling_after_warm_up():
    filling = [0.0] * 10 + [0.2] * 4 + [4.0] * 36  # the window's first tenth nearly empty
    found = warnings(_data(_summary(db={"utilization": 0.6}), _timeseries(filling)))
    assert len(found) == 1 and found[0].startswith("Warm-up too short (10 s)")
    no_warmup = _summary(db={"utilization": 0.6}) | {"warmup_s": 0}
    found = warnings(_data(no_warmup, _timeseries([3.0] * 50)))
    assert found and found[0].startswith("No warm-up")


def test_a_collapse_that_does_not_heal_is_a_warning_not_steady_shedding():
    """No recovery: the window ends answering far fewer requests than at its start. A system
    that sheds the same share from start to end (intended load shedding) gets no warning."""
    healthy_then_dead = [100.0] * 25 + [0.0] * 25  # the window is rows 10..49
    collapsed = _data(
        _summary(db={"utilization": 0.5, "queue_p99": 400}),
        _timeseries([3.0] * 50) | {"goodput": healthy_then_dead},
    )
    found = warnings(collapsed)
    assert any(f.startswith("No recovery") and "down from 100.0%" in f for f in found)
    shedding = _data(_summary(db={"utilization": 0.5}), _timeseries([3.0] * 50, goodput=60.0))
    assert not any(f.startswith("No recovery") for f in warnings(shedding))
    findings = key_findings(collapsed)
    assert "Busiest service: db, 50.0% busy (queue p99 400 calls)." in findings
    assert not any(f.startswith("No recovery") for f in findings)  # a warning now


# --------------------------------------------------------------------------- cross-checks


def _checks(scenario, **kw) -> dict[str, object]:
    res = run_scenario(scenario, **kw)
    data = ReportData(res.summary, res.latencies_ms, res.timeseries, scenario.name, scenario)
    return {c.check: c for c in cross_checks(data)}


def run_scenario(scenario, **overrides):
    from simulator import simulate

    return simulate(scenario.with_overrides(overrides) if overrides else scenario, workers=1)


def test_cross_checks_pick_the_closed_forms_that_apply():
    """Contention-free: the call-tree prediction; a worker pool: Little's law and M/M/c; a
    queue limit: M/M/c/K. Each predicted figure is what simulator.analytic gives."""
    seed = load_scenario(ROOT / "scenarios" / "seed-example.yaml")
    rows = _checks(seed, duration_s=2, warmup_s=0)
    assert "request latency: p99" in rows and "db: Little's law L = λW" not in rows
    assert rows["backend ops/s"].predicted == "100,000"

    mm1 = make_scenario(
        {"server": {"latency": {"dist": "exponential", "mean_ms": 1.0}, "workers": 1}},
        [{"call": "server"}],
        rps=500.0,
        duration_s=5.0,
    )
    rows = _checks(mm1)
    assert "request latency: p99" not in rows
    # M/M/1 at the measured arrival rate (~500/s): 1 / (mu - lambda) ~ 2 ms
    admitted = run_scenario(mm1).summary["services"]["server"]["little"]["admitted_per_sec"]
    expected = analytic.mm1(admitted, 1.0).mean_sojourn_ms
    assert rows["server: mean time at the service"].predicted == fmt_ms(expected)
    assert 1.9 < expected < 2.1
    assert "server: Little's law L = λW" in rows
    assert (
        rows["server: mean time at the service"].note == "assumes Poisson arrivals at the service"
    )

    loss = make_scenario(
        {
            "server": {
                "latency": {"dist": "exponential", "mean_ms": 10.0},
                "workers": 5,
                "queue_limit": 0,
            }
        },
        [{"call": "server", "fanout": 2}],
        rps=200.0,
        duration_s=5.0,
    )
    rows = _checks(loss)
    assert rows["server: rejected share"].theory == "M/M/5/5"
    assert "fan-out sends calls in batches" in rows["server: rejected share"].note


def test_report_with_scenario_draws_the_call_graph_and_theory(tmp_path):
    scenario = load_scenario(ROOT / "scenarios" / "seed-example.yaml").with_overrides(
        {"duration_s": 2, "warmup_s": 0}
    )
    res = run_scenario(scenario)
    paths = write_report(
        tmp_path, res.summary, res.latencies_ms, res.timeseries, scenario.name, None, scenario
    )
    assert paths[0].name == "call_graph.png"
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="theory"' in text and "request latency: p99" in text
    assert "rps × N × M = 5,000 × 20 = 100,000" in text


def test_findings_say_what_each_policy_step_sent_and_what_became_of_it():
    """A policy step's counters become one sentence naming caller and callee."""
    scenario = load_scenario(ROOT / "scenarios" / "hedging.yaml")
    summary = _summary() | {
        "steps": {
            "request.steps.0": {
                "first_tries": 60_000,
                "retries": 0,
                "hedges": 4_000,
                "wasted": 4_000,
            }
        }
    }
    findings = key_findings(_data(summary, scenario=scenario))
    assert (
        "Policies at request → backend: 60,000 first tries, 4,000 hedges (+6.7% of first tries); "
        "of all attempts 4,000 answered after the caller stopped waiting (wasted)."
    ) in findings


# --------------------------------------------------------------------------- charts that read true


def _charts(scenario, tmp_path):
    """The run's report charts by file name (from the page's captions)."""
    import re

    result = run_scenario(scenario)
    write_report(tmp_path, result.summary, result.latencies_ms, result.timeseries,
                 scenario.name, scenario=scenario)  # fmt: skip
    page = (tmp_path / "report.html").read_text()
    captions = re.findall(r'<figure id="([^"]+)">.*?<figcaption>(.*?)</figcaption>', page, re.S)
    return dict(captions)


def test_amplification_draws_only_what_the_run_has(tmp_path):
    """No policy: one 'backend ops' bar and the caption says why there is no split; with
    retries, the split and its retries bar."""
    plain = make_scenario({"db": {"latency": {"dist": "exponential", "mean_ms": 2}}},
                          [{"call": "db", "fanout": 3}], duration_s=2)  # fmt: skip
    assert (
        "No retries or hedges or wasted ops in this run"
        in _charts(plain, tmp_path / "a")["amplification"]
    )
    storm = load_scenario(ROOT / "scenarios" / "retry-storm.yaml").with_overrides(
        {"duration_s": 15, "warmup_s": 10}
    )
    caption = _charts(storm, tmp_path / "b")["amplification"]
    assert "No hedges in this run" in caption and "retries" not in caption.split("No ")[-1]


def test_requests_answered_in_0_ms_are_drawn_on_the_log_axis(tmp_path):
    """Refused requests (0 ms) get their own labelled bar instead of vanishing from a log axis."""
    services = {"pool": {"latency": {"dist": "lognormal", "p50_ms": 1, "p99_ms": 200},
                         "workers": 1, "queue_limit": 0}}  # fmt: skip
    scenario = make_scenario(services, [{"call": "pool"}], rps=300, duration_s=3)
    caption = _charts(scenario, tmp_path)["latency_distribution"]
    assert "requests answered in 0 ms (refused at once)" in caption


def test_theoffered_rate_is_drawn_as_the_scenario_schedules_it():
    """A schedule's burst is in the offered-rate line, not averaged away."""
    from simulator.report.charts import offered_rate

    storm = load_scenario(ROOT / "scenarios" / "retry-storm.yaml")
    edges, rps = offered_rate(_data(_summary(), scenario=storm))
    assert list(edges) == [0.0, 20.0, 22.0, 70.0] and list(rps) == [1400.0, 3000.0, 1400.0]


def _plot_area_columns(png_path) -> tuple[int, int]:
    """The pixel columns of a chart's left and right axes spines (dark vertical lines over
    half the image's height)."""
    from PIL import Image

    gray = np.asarray(Image.open(png_path).convert("L"))
    columns = np.flatnonzero((gray < 60).sum(axis=0) > gray.shape[0] * 0.5)
    return int(columns[0]), int(columns[-1])


def test_over_time_charts_share_one_time_axis(tmp_path):
    """Throughput, latency and services over time put their plot areas at the same pixels,
    whatever their tick labels and legends (a long service name, ops in the hundreds of
    thousands), so a second can be followed from chart to chart."""
    services = {
        "a-service-with-a-rather-long-name": {"latency": {"dist": "exponential", "mean_ms": 5},
                                              "workers": 4, "steps": [{"call": "db"}]},
        "db": {"latency": {"dist": "constant", "ms": 0.01}},
    }  # fmt: skip
    scenario = make_scenario(services, [{"call": "a-service-with-a-rather-long-name",
                                         "fanout": 1}], rps=500, duration_s=2)  # fmt: skip
    scenario = scenario.with_overrides({"services.a-service-with-a-rather-long-name.steps.0."
                                        "repeat": 200})  # fmt: skip
    _charts(scenario, tmp_path)
    names = ("throughput_over_time", "latency_over_time", "services_over_time")
    spines = {_plot_area_columns(tmp_path / f"{name}.png") for name in names}
    assert len(spines) == 1, spines


def test_a_drains_partial_last_second_is_drawn_as_a_sliver():
    """The time series' last row ends where the run ended, not a whole second later."""
    summary = _summary() | {"run_end_s": 50.25}
    data = _data(summary, {"t_s": np.arange(51.0)})
    assert data.time_edges[-2:].tolist() == [50.0, 50.25]


def test_latency_over_time_is_bucketed_coarser_when_seconds_hold_few_requests():
    """At 30 requests a second, a second's p99 would be about its slowest request: the run
    adds 5-s buckets (5 x 30 >= 100) whose p99 is the requests' own; at 500 a second, no."""
    from simulator.results.summary import coarse_latency

    rng = np.random.default_rng(7)
    end_ms = np.sort(rng.uniform(0, 60_000, 30 * 60))
    lat = rng.exponential(10.0, len(end_ms))
    coarse = coarse_latency(end_ms, lat, np.bincount((end_ms // 1000).astype(int), minlength=60))
    assert coarse is not None and coarse["bucket_s"] == 5 and len(coarse["t_s"]) == 12
    in_third = (end_ms >= 10_000) & (end_ms < 15_000)
    assert coarse["p99_ms"][2] == pytest.approx(np.quantile(lat[in_third], 0.99))
    busy = np.sort(rng.uniform(0, 60_000, 500 * 60))
    per_second = np.bincount((busy // 1000).astype(int), minlength=60)
    assert coarse_latency(busy, rng.exponential(10.0, len(busy)), per_second) is None
    low = make_scenario({"db": {"latency": {"dist": "exponential", "mean_ms": 5}}},
                        [{"call": "db"}], rps=20, duration_s=30)  # fmt: skip
    assert run_scenario(low).summary["latency_over_time"]["bucket_s"] == 5
