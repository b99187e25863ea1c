"""fansim: a discrete-event simulator of request fan-out, tail latency and load amplification.

    from simulator import load_scenario, simulate
    scenario = load_scenario("scenarios/seed-example.yaml").with_overrides({"workload.rps": 8000})
    result = simulate(scenario, seed=1)
    result.summary, result.latencies_ms, result.timeseries
"""

from .errors import ScenarioError
from .loader import load_scenario
from .model import Scenario
from .run import Result, simulate

__all__ = ["Result", "Scenario", "ScenarioError", "load_scenario", "simulate"]
__version__ = "0.1.0"
