"""What a run report reads: the run's flat results (summary, latencies, time series) and,
when known, its scenario. Every chart, table, finding and cross-check takes a ``ReportData``."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..scenario.topology import nominal_amplification
from .figure import bin_edges

if TYPE_CHECKING:
    from ..scenario.model import Scenario


@dataclass(frozen=True)
class ReportData:
    """Everything a report section may read; chart and table functions take only this."""

    summary: Mapping[str, Any]
    latencies_ms: np.ndarray
    timeseries: Mapping[str, np.ndarray]
    scenario_name: str
    scenario: Scenario | None = None  # the call graph and theory checks need it

    @functools.cached_property
    def nominal_calls(self) -> dict[str, float]:
        """Calls per request to each service that the topology implies ({} with no scenario),
        computed once for every section that needs it."""
        if self.scenario is None:
            return {}
        return nominal_amplification(self.scenario)["calls"]

    @property
    def streaming(self) -> bool:
        """Whether the run kept streaming percentiles (``latencies_ms`` is then a sample)."""
        return self.summary.get("percentiles") == "streaming"

    @property
    def request_count(self) -> int:
        """Window requests behind the latency figures (all replications)."""
        if self.streaming:
            arrived = (self.summary.get("requests") or {}).get("arrived") or 0
            return int(round(arrived * self.replications))
        return int(np.isfinite(self.latencies_ms).sum())

    @property
    def streaming_note(self) -> str:
        """Caption suffix for charts of request latencies under streaming percentiles."""
        if not self.streaming:
            return ""
        return (
            " Streaming percentiles: drawn from an HdrHistogram of every request (3 "
            "significant figures), through an evenly spread sample of 100,000."
        )

    @property
    def warmup_s(self) -> float:
        return float(self.summary.get("warmup_s") or 0.0)

    @property
    def replications(self) -> int:
        return int(self.summary.get("replications") or 1)

    @property
    def timeseries_note(self) -> str:
        """Caption suffix: with replications the timeseries is the first replication's."""
        return " Shown for the first replication." if self.replications > 1 else ""

    @property
    def window_end_s(self) -> float | None:
        """End of the measured window in simulated seconds, if the summary says."""
        duration = self.summary.get("duration_s")
        return None if duration is None else self.warmup_s + float(duration)

    @property
    def time_edges(self) -> np.ndarray:
        """Edges of the time series' rows (s), the last one only up to the run's end
        (``figure.bin_edges``)."""
        end = self.summary.get("run_end_s")
        return bin_edges(self.timeseries["t_s"], end if isinstance(end, (int, float)) else None)

    @property
    def n_seconds(self) -> int:
        t = self.timeseries.get("t_s")
        return 0 if t is None else len(t)

    def column(self, name: str) -> np.ndarray:
        """A timeseries column, or all-NaN (drawn as nothing) when the run did not record it."""
        return self.timeseries.get(name, np.full(self.n_seconds, np.nan))

    def services_with(self, prefix: str) -> list[str]:
        """Service names having a ``<prefix><service>`` timeseries column, in column order."""
        return [k[len(prefix) :] for k in self.timeseries if k.startswith(prefix)]


def as_timeseries(timeseries: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Columns as 1-D float arrays of one common length; raise naming the odd column."""
    columns = {name: np.asarray(col, dtype=float).ravel() for name, col in timeseries.items()}
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        expected = lengths.get("t_s", next(iter(lengths.values())))
        odd = next(name for name, n in lengths.items() if n != expected)
        raise ValueError(
            f"timeseries columns must have equal length: {odd!r} has {lengths[odd]} rows, "
            f"expected {expected} (like 't_s')"
        )
    return columns
