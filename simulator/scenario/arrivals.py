"""Open-loop arrival processes: every arrival time of a run, drawn up front as one numpy array.

Poisson, bursty and schedule arrivals are Poisson processes with a piecewise-constant rate: on
each segment the count is Poisson and the times are uniform, which is exact and vectorised.
Bursts start at ``every_s`` (then ``2 * every_s``, ...) so a run opens at the base rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .model import Workload


def rate_segments(workload: Workload, end_s: float) -> list[tuple[float, float, float]]:
    """``(start_s, end_s, rps)`` pieces covering [0, end_s) for rate-driven arrival kinds."""
    kind = workload.arrivals
    if kind in ("poisson", "constant"):
        return [(0.0, end_s, float(workload.rps))]  # type: ignore[arg-type]
    if kind == "bursty":
        b = workload.bursty
        assert b is not None and workload.rps is not None
        pieces, t, k = [], 0.0, 1
        while t < end_s:
            start = k * b.every_s  # the k-th burst
            pieces.append((t, min(start, end_s), workload.rps))
            if start < end_s:
                pieces.append((start, min(start + b.length_s, end_s), b.burst_rps))
            t, k = start + b.length_s, k + 1
        return [p for p in pieces if p[1] > p[0]]
    if kind == "schedule":
        assert workload.schedule is not None
        edges = [c.at_s for c in workload.schedule] + [end_s]
        return [
            (a, min(b, end_s), c.rps)
            for c, a, b in zip(workload.schedule, edges, edges[1:], strict=False)
            if a < end_s
        ]
    raise ValueError(f"arrivals {kind!r} has no rate")


def arrival_times_s(workload: Workload, end_s: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times in seconds within [0, end_s)."""
    kind = workload.arrivals
    if kind == "trace":
        times = workload.trace_s
        return times[times < end_s]
    if kind == "constant":
        return np.arange(0.0, end_s, 1.0 / workload.rps)  # type: ignore[operator]
    chunks = []
    for a, b, rps in rate_segments(workload, end_s):
        n = rng.poisson(rps * (b - a))
        chunks.append(np.sort(rng.uniform(a, b, n)))
    return np.concatenate(chunks) if chunks else np.empty(0)


def expected_arrivals(workload: Workload, start_s: float, end_s: float) -> float:
    """Expected number of arrivals in [start_s, end_s) (exact count for a trace)."""
    if workload.arrivals == "trace":
        t = workload.trace_s
        return float(np.sum((t >= start_s) & (t < end_s)))
    return sum(
        rps * max(0.0, min(b, end_s) - max(a, start_s))
        for a, b, rps in rate_segments(workload, end_s)
    )
