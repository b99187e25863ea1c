"""The Python API (SPEC §5) validates like the CLI: bad arguments raise ``ScenarioError`` (a
``ValueError``) with a one-line message; what a notebook naturally passes (numpy scalars) works."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from simulator import Scenario, ScenarioError, load_scenario, simulate

SEED = ROOT / "scenarios" / "seed-example.yaml"


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(SEED).with_overrides({"duration_s": 0.1, "warmup_s": 0})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"replications": 0}, "replications must be an integer >= 1, got 0"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"seed": "1"}, "seed must be an integer >= 0, got '1'"),
        ({"seed": 1.5}, "seed must be an integer >= 0, got 1.5"),
        ({"workers": 0}, "workers must be an integer >= 1, got 0"),
        ({"seed": True}, "seed must be an integer >= 0, got True"),
    ],
)
def test_simulate_refuses_bad_arguments(small, kwargs, message):
    """simulate() checks seed, replications and workers before running."""
    with pytest.raises(ScenarioError, match=message) as caught:
        simulate(small, **kwargs)
    assert isinstance(caught.value, ValueError)
    assert len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize("overrides", [None, [1], "workload.rps=5"])
def test_with_overrides_needs_a_mapping(small, overrides):
    """with_overrides(None) and other non-mappings are a ScenarioError, not a traceback."""
    with pytest.raises(ScenarioError, match="expected a mapping of dotted keys"):
        small.with_overrides(overrides)


def test_numpy_scalars_are_numbers(small):
    """np.int64 and np.float32 values (as a notebook sweep makes them) validate and run."""
    s = small.with_overrides(
        {"request.steps.0.fanout": np.int64(5), "workload.rps": np.float32(800)}
    )
    assert s.request.steps[0].fanout == 5 and type(s.request.steps[0].fanout) is int
    result = simulate(s, seed=np.int64(3), replications=np.int64(1))
    assert result.summary["seed"] == 3
    assert result.summary["amplification"]["nominal_ops_per_request"] == 10


def test_from_data_validates_like_a_file(small):
    """Scenario.from_data gives the same scenario a file does, and the same errors."""
    again = Scenario.from_data(small.resolved_data())
    assert again.model_dump() == small.model_dump()
    with pytest.raises(ScenarioError, match="<scenario>: duration_s: required key is missing"):
        Scenario.from_data({"name": "x"})


def test_overrides_are_remembered(small):
    """A scenario knows the overrides applied to it, in order, for provenance."""
    s = small.with_overrides({"workload.rps": 800}).with_seed(4)
    assert s.overrides == {"duration_s": 0.1, "warmup_s": 0, "workload.rps": 800, "seed": 4}
