"""fansim: a discrete-event simulator of request fan-out, tail latency and load amplification.

    from simulator import load_scenario, simulate
    scenario = load_scenario("scenarios/seed-example.yaml").with_overrides({"workload.rps": 8000})
    result = simulate(scenario, seed=1)
    result.summary, result.latencies_ms, result.timeseries

The names below are imported on first use, so ``import simulator`` (and ``fansim --help``)
does no work.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = [
    "Result",
    "Scenario",
    "ScenarioError",
    "analytic",
    "import_traces",
    "load_scenario",
    "plan",
    "simulate",
    "sweep",
]
__version__ = "0.1.0"

_HOME = {
    "Result": "results.simulate",
    "Scenario": "scenario.model",
    "ScenarioError": "scenario.errors",
    "load_scenario": "scenario.loader",
    "simulate": "results.simulate",
    "sweep": "experiments.sweep",
    "plan": "experiments.plan",
    "import_traces": "traces",
}

if TYPE_CHECKING:
    from . import analytic
    from .experiments.plan import plan
    from .experiments.sweep import sweep
    from .results.simulate import Result, simulate
    from .scenario.errors import ScenarioError
    from .scenario.loader import load_scenario
    from .scenario.model import Scenario
    from .traces import import_traces


def __getattr__(name: str):
    if name == "analytic":
        return importlib.import_module(".analytic", __name__)
    if name in _HOME:
        return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
