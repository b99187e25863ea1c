"""``simulate``: run a scenario's replications and gather their results (SPEC §5).

Replication ``i`` uses seed ``seed + i`` and owns its random streams, so the summary is the same
whether replications run one after the other or in parallel processes.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.sim import Sim
from ..scenario.errors import ScenarioError
from ..scenario.model import Scenario
from .provenance import provenance
from .summary import combine, summarize
from .traces import span_rows
from .warnings import run_warnings


@dataclass
class Result:
    """What a run leaves: the summary (as in summary.json), the window's request latencies, and
    the per-second time series. With replications, ``latencies_ms`` joins every replication's
    and ``timeseries`` is the first replication's (percentiles are never averaged over runs);
    ``runs`` holds each replication's own summary as tidy rows; ``scenario`` is the scenario
    that ran (written to ``scenario.yaml`` beside the summary); ``spans`` the first
    replication's sampled requests' spans, when asked for (``simulate(trace_sample=N)``)."""

    summary: dict[str, Any]
    latencies_ms: np.ndarray
    timeseries: dict[str, np.ndarray]
    runs: list[dict[str, Any]] = field(default_factory=list)
    scenario: Scenario | None = None
    spans: list[dict[str, Any]] = field(default_factory=list)  # see results.traces.span_rows

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """Why some figures may mislead (``{"kind", "service", "message"}``), as in
        summary.json: unstable services, thin tails, a short warm-up, no recovery."""
        return self.summary.get("warnings", [])

    def timeseries_frame(self):
        """The time series as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.timeseries)


def run_once(
    scenario: Scenario, seed: int, progress: Callable[[float], None] | None = None
) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """One replication with ``seed``: (summary, window latencies, time series)."""
    sim = Sim(scenario, seed)
    sim.run(progress)
    return summarize(sim, seed)


def run_traced(
    scenario: Scenario, seed: int, sample: int, progress: Callable[[float], None] | None = None
) -> tuple:
    """``run_once`` that also records ``sample`` window requests' spans (results.traces): the
    summary is the same as without."""
    sim = Sim(scenario, seed, trace_sample=sample)
    sim.run(progress)
    assert sim.spans is not None
    return (*summarize(sim, seed), span_rows(sim.spans, seed))


def _whole(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (numpy integers welcome), else ``ScenarioError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ScenarioError.single(
            "simulate()", f"{name} must be an integer >= {minimum}, got {value!r}"
        )
    return int(value)


def simulate(
    scenario: Scenario,
    seed: int | None = None,
    *,
    replications: int | None = None,
    workers: int | None = None,
    progress: Callable[[float], None] | None = None,
    command: str | None = None,
    trace_sample: int = 0,
) -> Result:
    """Simulate ``scenario``; ``seed`` and ``replications`` default to the scenario's.

    ``workers`` > 1 runs replications in parallel processes (default: up to the CPU count);
    ``progress(fraction_done)`` is called as the run advances; ``command`` is recorded in the
    summary's provenance (the CLI passes its command line). ``trace_sample`` > 0 records that
    many window requests of the first replication as spans (``Result.spans``).
    """
    seed = scenario.seed if seed is None else _whole("seed", seed, 0)
    reps = (
        scenario.replications if replications is None else _whole("replications", replications, 1)
    )
    if workers is not None:
        workers = _whole("workers", workers, 1)
    trace_sample = _whole("trace_sample", trace_sample, 0)
    seeds = [seed + i for i in range(reps)]
    workers = min(reps, workers or os.cpu_count() or 1)
    if workers <= 1:
        outs = []
        for i, s in enumerate(seeds):
            step = (lambda f, i=i: progress((i + f) / reps)) if progress else None
            if i == 0 and trace_sample:
                outs.append(run_traced(scenario, s, trace_sample, step))
            else:
                outs.append(run_once(scenario, s, step))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(run_traced, scenario, s, trace_sample)
                if i == 0 and trace_sample
                else pool.submit(run_once, scenario, s)
                for i, s in enumerate(seeds)
            ]
            outs = []
            for f in futures:  # in seed order, so the result does not depend on timing
                outs.append(f.result())
                if progress:
                    progress(len(outs) / reps)
    runs = [o[0] for o in outs]
    summary = combine(runs) | provenance(scenario, reps, command)
    latencies = np.concatenate([o[1] for o in outs]) if outs else np.empty(0)
    summary["warnings"] = run_warnings(summary, outs[0][2], latencies, scenario)
    spans = outs[0][3] if trace_sample else []
    return Result(summary, latencies, outs[0][2], runs, scenario, spans)
