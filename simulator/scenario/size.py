"""How big a run will be, estimated from the scenario alone, so that a run that cannot fit is
refused before any work (``rps: 1e12``, ``fanout: 1e9``, ``instances: 1e9``, ``duration_s: 1e9``).

The estimate counts what a run keeps in memory: every arrival time, a record per request, a
latency per call (exact percentiles need them all), a per-second row per service, the compiled
fan-out lists, an object per instance, and the copies reading the summary makes, on top of a
fixed ~250 MiB for Python, its libraries and drawing the report. Checked against measurement:
one simulated hour of the seed example (18M requests, 540M calls) is estimated at 4.43 GiB
exact and 0.38 GiB streaming; measured peak RSS 4.15 GiB and 0.38 GiB. Retries and hedges add
calls the topology does not show, so a run with them needs more: the limits leave room.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .arrivals import expected_arrivals
from .topology import nominal_amplification

if TYPE_CHECKING:
    from .model import Scenario

FIXED_BYTES = 250 * 2**20  # Python, numpy, SimPy, matplotlib, and drawing the report
BYTES_PER_REQUEST = 8 + 17  # its arrival time; its start, latency and outcome
BYTES_PER_CALL = 4  # its latency, float32
BYTES_PER_SERVICE_SECOND = 200  # counters, queue snapshots and time-series cells
BYTES_PER_INSTANCE = 1_700  # an instance's object and its two queues
BYTES_PER_FANOUT_SLOT = 8  # one entry of a step's compiled list of targets
BYTES_PER_SERVICE = 140_000  # its batches of pre-drawn latencies and uniforms
BYTES_PER_HISTOGRAM = 250_000  # percentiles: streaming, one HdrHistogram (3 figures) each
MAX_CALLS = 1e10  # about a day of CPU at fansim's slowest measured speed
MEMORY_SHARE = 0.5  # of this machine's memory


@dataclass(frozen=True)
class RunSize:
    """A run's expected arrivals, calls and peak memory (bytes), over warm-up, window and drain."""

    arrivals: float
    calls: float
    memory_bytes: float


def estimate(scenario: Scenario, streaming: bool | None = None) -> RunSize:
    """The run's size as the topology implies it (no retries, hedges or errors), with exact
    or (``streaming``, default the scenario's ``percentiles``) streaming percentiles. Streaming
    keeps one simulated second of latencies, not the run's."""
    if streaming is None:
        streaming = scenario.percentiles == "streaming"
    total_s = scenario.warmup_s + scenario.duration_s
    arrivals = expected_arrivals(scenario.workload, 0.0, total_s)
    calls = arrivals * nominal_amplification(scenario)["calls_per_request"]
    steps = list(scenario.request.steps) + [
        step for svc in scenario.services.values() for step in svc.steps
    ]
    slots = sum(scenario.calls_in(step) + step.repeat for step in steps)
    instances = sum(svc.instances for svc in scenario.services.values())
    services = len(scenario.services)
    kept_requests, kept_calls = arrivals, calls
    # reading the summary copies the busiest service's latencies once (np.quantile) and the
    # window's request latencies three times (the window, ok only, the quantile)
    busiest = max(nominal_amplification(scenario)["calls"].values(), default=0.0) * arrivals
    summary_copies = busiest * BYTES_PER_CALL + arrivals * 24
    if streaming:  # the arrival times stay; latencies only for the busiest second
        peak_s = max(total_s, 1.0)
        kept_requests, kept_calls = arrivals / peak_s * 4, calls / peak_s * 4
        summary_copies = 0.0
    memory = (
        FIXED_BYTES
        + arrivals * 8
        + kept_requests * (BYTES_PER_REQUEST - 8)
        + kept_calls * BYTES_PER_CALL
        + summary_copies
        + (services * 2 + 2) * BYTES_PER_HISTOGRAM * streaming
        + (total_s + 2) * services * BYTES_PER_SERVICE_SECOND
        + instances * BYTES_PER_INSTANCE
        + slots * BYTES_PER_FANOUT_SLOT
        + services * BYTES_PER_SERVICE
    )
    return RunSize(arrivals, calls, memory)


def memory_limit_bytes() -> float:
    """``MEMORY_SHARE`` of this machine's physical memory."""
    try:
        return MEMORY_SHARE * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume 8 GiB
        return MEMORY_SHARE * 8 * 2**30


def with_replications(scenario: Scenario, size: RunSize, streaming: bool) -> RunSize:
    """All replications: calls add up; memory is one replication per parallel process, plus
    the window latencies the parent joins (exact percentiles) and each process's fixed cost."""
    reps = scenario.replications
    if reps == 1:
        return size
    parallel = min(reps, os.cpu_count() or 1)
    window_share = scenario.duration_s / (scenario.warmup_s + scenario.duration_s)
    pooled = 0.0 if streaming else size.arrivals * window_share * 8 * reps
    return RunSize(size.arrivals * reps, size.calls * reps, size.memory_bytes * parallel + pooled)


def too_big(scenario: Scenario) -> str | None:
    """Why this run cannot be done here, naming the estimate and the limit; None if it fits."""
    streaming = scenario.percentiles == "streaming"
    size = with_replications(scenario, estimate(scenario), streaming)
    what = f"{size.arrivals:,.3g} requests and {size.calls:,.3g} calls"
    if size.calls > MAX_CALLS:
        return (
            f"this run would simulate {what}, more than the {MAX_CALLS:,.0g} calls a run may "
            "take (about a day); lower workload.rps, duration_s or replications"
        )
    limit = memory_limit_bytes()
    if size.memory_bytes > limit:
        hint = "lower workload.rps, duration_s, fanout or instances"
        if not streaming:
            streamed = with_replications(
                scenario, estimate(scenario, streaming=True), True
            ).memory_bytes
            if streamed <= limit:
                hint = f"set percentiles: streaming (about {_bytes(streamed)}), or {hint}"
        return (
            f"this run would need about {_bytes(size.memory_bytes)} of memory for {what}, "
            f"more than the {_bytes(limit)} limit (half this machine's memory); {hint}"
        )
    return None


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
