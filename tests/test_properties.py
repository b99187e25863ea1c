"""Properties over generated scenarios (hypothesis): the invariants every run keeps, whatever
its topology, distributions, balancers and policies; and every invalid document, made by
mutating a valid one, refused in positioned lines, exit 2, never a traceback, in bounded time.

The suite runs a bounded number of examples, the same ones every time (``derandomize``);
``FANSIM_PROPERTY_EXAMPLES=1000 pytest tests/test_properties.py`` runs more on demand.
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from strategies import corrupted_text, mutated, scale_to_budget, scenarios
from typer.testing import CliRunner

from simulator import Scenario, ScenarioError, analytic, simulate
from simulator.cli import app
from simulator.scenario.topology import nominal_amplification

EXAMPLES = int(os.environ.get("FANSIM_PROPERTY_EXAMPLES", "40"))
DATA_DIR = Path(tempfile.mkdtemp(prefix="fansim-properties-"))  # the empirical latency file
PROPERTIES = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECONDS_PER_EXAMPLE = 20.0  # an invalid document is refused, and a small run ends, within this
LINE = re.compile(r"^(?P<file>[^:\n]+?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<msg>.+)$")


def dump(doc: dict) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(doc, out)
    return out.getvalue()


def build(doc: dict, budget: int | None = None) -> Scenario:
    scenario = Scenario.from_data(doc, str(DATA_DIR / "generated.yaml"))
    calls = nominal_amplification(scenario)["calls_per_request"]
    return Scenario.from_data(scale_to_budget(doc, calls, budget), str(DATA_DIR / "gen.yaml"))


@pytest.mark.slow
@PROPERTIES
@given(doc=scenarios(DATA_DIR))
def test_every_run_keeps_the_invariants(doc):
    """Outcomes add up; ops counted are ops executed; no negative latency; utilization in
    [0, 1]; the same seed gives the identical summary."""
    scenario = build(doc)
    start = time.monotonic()
    result = simulate(scenario, workers=1)
    s = result.summary
    req = s["requests"]
    assert req["arrived"] == req["ok"] + req["partial"] + req["failed"] + req["rejected"]
    assert np.all(result.latencies_ms >= 0)
    assert s["latency_ms"]["max"] is None or s["latency_ms"]["max"] >= 0
    for name, svc in s["services"].items():
        assert svc["utilization"] is None or 0.0 <= svc["utilization"] <= 1.0, name
        util = result.timeseries.get(f"util_{name}")
        if util is not None:
            assert np.all(np.isnan(util) | ((util >= 0) & (util <= 1.0))), name
        for key in ("calls", "rejected", "errors", "timeouts", "retries", "hedges", "cancelled"):
            assert svc[key] >= 0, (name, key)
    amp = s["amplification"]
    if req["arrived"]:
        ops = amp["ops_per_request"] * req["arrived"]
        split = amp["ops_split_per_request"]
        assert sum(split.values()) * req["arrived"] == pytest.approx(ops, abs=1e-6)
        if scenario.warmup_s == 0:  # every op of the run belongs to a window request
            assert int(result.timeseries["ops"].sum()) == round(ops)
    for level, q in (("p99", 0.99), ("p99.9", 0.999)):  # tail attribution adds up
        tail = s["tail_attribution"][level]
        assert tail["requests"] == min(math.ceil(round((1 - q) * req["arrived"], 9)),
                                       req["arrived"])  # fmt: skip
        if tail["waited_on"]["none"] is not None:
            assert sum(tail["waited_on"].values()) == pytest.approx(1.0)
            shares = tail["time_share"].values()
            assert all(v >= -1e-12 for v in shares) and sum(shares) == pytest.approx(1.0)
            assert tail["threshold_ms"] <= s["latency_ms"]["max"] + 1e-9
    assert simulate(scenario, workers=1).summary == s
    assert time.monotonic() - start < SECONDS_PER_EXAMPLE


@pytest.mark.slow
@PROPERTIES
@given(doc=scenarios(DATA_DIR, contention_free=True))
def test_contention_free_latency_matches_the_closed_form(doc):
    """Without contention, the request latency's distribution is the numerical closed form
    of the call tree (Kolmogorov-Smirnov distance, to within the grid's rounding, under the
    DKW bound at 1e-6)."""
    scenario = build(doc, budget=60_000)
    prediction = analytic.contention_free_latency(scenario)
    lat = np.sort(simulate(scenario, workers=1).latencies_ms)
    n = len(lat)
    if prediction is None or n < 50:
        return
    h = prediction.step_ms
    # the grid rounds each call's latency to a cell, so an atom (a constant latency) summed
    # over calls in sequence can move by half a cell per call: compare within 100 cells
    # (about 0.003 ms) on either side
    upper = np.array([prediction.cdf(x + 100 * h) for x in lat])
    lower = np.array([prediction.cdf(x - 100 * h) for x in lat])
    i = np.arange(1, n + 1)
    distance = max(np.max(i / n - upper), np.max(lower - (i - 1) / n))
    bound = math.sqrt(math.log(2 / 1e-6) / (2 * n))
    assert distance <= bound, f"KS distance {distance:.4f} > {bound:.4f} over {n} requests"


def _assert_refused_cleanly(path, start: float) -> None:
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert time.monotonic() - start < SECONDS_PER_EXAMPLE
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 0:  # the mutation happened to leave a valid scenario
        return
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines, "exit 2 with no message"
    for line in lines:
        m = LINE.match(line)
        assert m, f"not FILE:LINE:COL: message: {line!r}"
        assert m["file"] == str(path), line


@pytest.mark.slow
@PROPERTIES
@given(data=st.data())
def test_a_mutated_document_is_refused_in_positioned_lines(data, tmp_path_factory):
    """A valid scenario with one value replaced by junk, one key removed or one added: exit 0
    (still valid) or exit 2 with FILE:LINE:COL lines, never a traceback."""
    doc = data.draw(mutated(data.draw(scenarios(DATA_DIR))))
    path = tmp_path_factory.mktemp("mutated") / "s.yaml"
    path.write_text(dump(doc))
    _assert_refused_cleanly(path, time.monotonic())


@pytest.mark.slow
@PROPERTIES
@given(data=st.data())
def test_a_corrupted_file_is_refused_in_positioned_lines(data, tmp_path_factory):
    """A valid scenario's YAML text with a character deleted or inserted, cut short, or a
    non-UTF-8 byte: exit 0 or exit 2 with FILE:LINE:COL lines, never a traceback."""
    text = dump(data.draw(scenarios(DATA_DIR)))
    path = tmp_path_factory.mktemp("corrupted") / "s.yaml"
    path.write_bytes(data.draw(corrupted_text(text)))
    _assert_refused_cleanly(path, time.monotonic())


def test_generated_scenarios_are_valid():
    """The strategies' valid scenarios validate (so the properties above test runs, not
    refusals)."""

    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(doc=scenarios(DATA_DIR))
    def check(doc):
        try:
            build(doc)
        except ScenarioError as e:  # pragma: no cover - a strategy bug
            raise AssertionError(f"generated an invalid scenario: {e}") from None

    check()


@pytest.mark.slow
@PROPERTIES
@given(doc=scenarios(DATA_DIR))
def test_streaming_percentiles_change_nothing_but_percentiles(doc):
    """The same run with percentiles: streaming has the same outcomes, calls, ops, means and
    every time-series column (the per-second p50 and p99 are exact in both)."""
    scenario = build(doc)
    exact = simulate(scenario, workers=1)
    streamed = simulate(scenario.with_overrides({"percentiles": "streaming"}), workers=1)
    e, s = exact.summary, streamed.summary
    assert s["requests"] == e["requests"]
    assert s["amplification"] == e["amplification"]  # counts: exact in both modes
    for name, svc in e["services"].items():
        assert s["services"][name]["calls"] == svc["calls"], name
    for block in ("latency_ms", "latency_ok_ms"):
        assert s[block]["max"] == pytest.approx(e[block]["max"]), block
    assert exact.timeseries.keys() == streamed.timeseries.keys()
    for column, values in exact.timeseries.items():
        np.testing.assert_allclose(streamed.timeseries[column], values, rtol=1e-9, err_msg=column)
