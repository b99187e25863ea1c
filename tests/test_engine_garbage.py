"""What a run leaves for Python's cyclic garbage collector: nothing. Calls, flows, fan-ins,
policy slots and requests are freed by reference counting as soon as they are done; a
reference cycle among them would keep millions of objects for the collector, whose full
passes cost as much as the simulation itself on long runs with worker pools."""

from __future__ import annotations

import gc

import pytest
from conftest import ROOT

from simulator import load_scenario
from simulator.engine.sim import Sim

# Every engine path: pools with contention-free subtrees, fan-in with losers, retries,
# hedges with cancelled losers, deadlines with partial answers, adaptive limits, shards.
SCENARIOS = [
    "homepage", "retry-storm", "hedging", "deadline-partial", "adaptive-concurrency",
    "data-platform", "timeouts", "search-shards",
]  # fmt: skip


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_run_leaves_no_reference_cycles(name):
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml").with_overrides(
        {"duration_s": 1, "warmup_s": 0.2}
    )
    sim = Sim(scenario, 1)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector would free, kept for inspection
    try:
        sim.run()
        gc.collect()
        cyclic = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert cyclic == []
