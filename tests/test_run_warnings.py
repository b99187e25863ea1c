"""Per-outcome latency and the run's warnings (SPEC §4): ``latency_ok_ms`` leaves refused
requests out, ``warnings`` are the same in summary.json, ``Result.warnings``, the terminal and
the report, and the false alarms once seen stay quiet."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, run
from test_semantics import const, run_trace
from typer.testing import CliRunner

from simulator import load_scenario, simulate
from simulator.cli import app


def test_latency_ok_leaves_refused_requests_out(tmp_path):
    """Requests rejected at once (0 ms) count in latency_ms but not in latency_ok_ms."""
    # one worker, no queue: of two requests 1 ms apart the second is refused at once
    res = run_trace(tmp_path, [0.0, 0.001, 0.1, 0.101], {"db": const(10, workers=1, queue_limit=0)},
                    [{"call": "db"}])  # fmt: skip
    s = res.summary
    assert s["requests"]["rejected"] == 2 and s["requests"]["ok"] == 2
    assert s["latency_ms"]["p50"] == pytest.approx(5.0)  # halfway between 0 and 10 ms
    assert s["latency_ok_ms"]["p50"] == pytest.approx(10.0)
    assert s["latency_ok_ms"]["mean"] == pytest.approx(10.0)
    assert set(s["latency_ok_ms"]) == set(s["latency_ms"])


def test_utilization_never_exceeds_one():
    """A saturated pool reports utilization at most 1, in the summary and every second."""
    res = run({"db": {"latency": {"dist": "exponential", "mean_ms": 10}, "workers": 2}},
              [{"call": "db"}], rps=400, duration_s=5, seed=3)  # fmt: skip
    db = res.summary["services"]["db"]
    assert 0.99 < db["utilization"] <= 1.0
    util = res.timeseries["util_db"]
    assert np.nanmax(util) <= 1.0


def test_warnings_are_the_same_everywhere(tmp_path):
    """An overloaded run's warnings are in Result.warnings, summary.json, the terminal after
    the summary table, and report.html."""
    path = ROOT / "scenarios" / "retry-storm.yaml"
    result = simulate(load_scenario(path))
    kinds = [(w["kind"], w["service"]) for w in result.warnings]
    assert kinds == [("unstable", "api"), ("no_recovery", None)]
    out = tmp_path / "o"
    cli = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    assert json.loads((out / "summary.json").read_text())["warnings"] == result.warnings
    printed = " ".join(cli.output.split())
    assert "warning (unstable): api is unstable" in printed
    assert "warning (no_recovery): No recovery" in printed
    assert printed.index("warning (unstable)") > printed.index("backend ops/s")
    html = (out / "report.html").read_text()
    assert "api is unstable" in html and "No recovery" in html


@pytest.mark.parametrize(
    "scenario, quiet_kind",
    [
        ("retry-storm-budget.yaml", "warmup_too_short"),  # a burst it schedules, then drains
        ("adaptive-concurrency.yaml", "no_recovery"),  # sheds the same share throughout
    ],
)
def test_false_alarms_once_seen_stay_quiet(scenario, quiet_kind):
    """A scheduled burst is not a short warm-up; steady, intended load shedding is not a
    failure to recover."""
    result = simulate(load_scenario(ROOT / "scenarios" / scenario))
    assert quiet_kind not in [w["kind"] for w in result.warnings]
