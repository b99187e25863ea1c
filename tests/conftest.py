"""Shared helpers: build scenarios from dicts, run them, and record theory checks.

Theory checks call :func:`check`, which asserts ``|measured - expected| <= tolerance`` and keeps
a row for the table printed at the end of the test session (measured error against tolerance).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from simulator import simulate
from simulator.scenario.model import Scenario

ROOT = Path(__file__).resolve().parents[1]
# The time series columns SPEC §4 names, in order (then queue_<svc>, util_<svc>).
TIMESERIES_COLUMNS = ["t_s", "arrivals", "completions", "ops", "p50_ms", "p99_ms", "errors"]
THEORY_ROWS: list[tuple[str, float, float, float]] = []
# A call latency that is 1 ms, or 100 ms ("slow") 1% of the time.
ONE_PERCENT_SLOW = {
    "dist": "mixture",
    "components": [
        {"weight": 0.99, "dist": "constant", "ms": 1},
        {"weight": 0.01, "dist": "constant", "ms": 100},
    ],
}


def make_scenario(services: dict, steps: list, **top) -> Scenario:
    """A validated scenario from plain data; ``top`` sets rps, duration_s, warmup_s, seed, ..."""
    rps = top.pop("rps", 100.0)
    arrivals = top.pop("arrivals", "poisson")
    data = {
        "name": top.pop("name", "test"),
        "duration_s": top.pop("duration_s", 10.0),
        "workload": {"rps": rps, "arrivals": arrivals} | top.pop("workload", {}),
        "request": {"steps": copy.deepcopy(steps)},
        "services": copy.deepcopy(services),
    } | top
    return Scenario.from_data(data, "<test>")


def run(services: dict, steps: list, **top):
    """Simulate a scenario built by :func:`make_scenario`."""
    return simulate(make_scenario(services, steps, **top), workers=1)


def check(name: str, measured: float, expected: float, tolerance: float) -> None:
    """Assert a measured figure is within ``tolerance`` of theory; record it for the report."""
    THEORY_ROWS.append((name, measured, expected, tolerance))
    assert abs(measured - expected) <= tolerance, (
        f"{name}: measured {measured:.6g}, theory {expected:.6g}, "
        f"error {measured - expected:+.3g} exceeds tolerance {tolerance:.3g}"
    )


def pytest_terminal_summary(terminalreporter):
    if not THEORY_ROWS:
        return
    tr = terminalreporter
    tr.section("theory checks: simulator against closed forms")
    tr.write_line(f"{'check':<58} {'measured':>11} {'theory':>11} {'error':>9} {'tol':>9}")
    for name, measured, expected, tol in THEORY_ROWS:
        rel = (
            f"{(measured - expected) / expected:+.2%}"
            if expected
            else f"{measured - expected:+.3g}"
        )
        tr.write_line(f"{name:<58} {measured:>11.5g} {expected:>11.5g} {rel:>9} {tol:>9.3g}")


@pytest.fixture
def tmp_scenario(tmp_path):
    """Write YAML text to a file in a temporary directory and return its path."""

    def write(text: str, name: str = "s.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
