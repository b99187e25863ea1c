"""Streaming percentiles (``percentiles: streaming``): a long run in bounded memory.

Exact percentiles keep every latency: 4 bytes a call and 17 a request, gigabytes for an hour at
the seed example's rate. In streaming mode the engine empties those buffers every simulated
second into HdrHistograms (3 significant figures; values pre-rounded in log space to 1/4096,
so a chunk of a million latencies costs a few thousand ``record_value`` calls; whole
nanoseconds, so sub-millisecond latencies keep their precision) and into
per-second aggregates, so memory no longer grows with the run's length. Counts, sums and maxima
stay exact; percentiles are within 0.2% of the exact ones.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

from .flows import OK, PARTIAL

NS_PER_MS = 1_000_000  # latencies are recorded in whole nanoseconds
MAX_NS = 86_400 * 10**9  # one day, the longest latency a scenario allows
SIGNIFICANT_FIGURES = 3
LOG_STEP = 2.0**-12  # pre-rounding of values above EXACT_NS: relative error <= 0.0122%
EXACT_NS = 4096  # below this, whole nanoseconds (no more distinct values than this)


def _quantized(values_ms: np.ndarray) -> tuple[list[int], list[int]]:
    """Distinct values (whole nanoseconds, pre-rounded) and how often each occurs."""
    ns = np.rint(np.asarray(values_ms, dtype=np.float64) * NS_PER_MS)
    big = ns > EXACT_NS
    ns[big] = np.rint(np.exp(np.rint(np.log(ns[big]) / LOG_STEP) * LOG_STEP))
    values, counts = np.unique(np.clip(ns, 0, MAX_NS).astype(np.int64), return_counts=True)
    return values.tolist(), counts.tolist()


class LatencyHistogram:
    """Latencies (ms) in an HdrHistogram, with the exact count, sum and maximum beside it."""

    __slots__ = ("hist", "count", "total_ms", "max_ms")

    def __init__(self) -> None:
        from hdrh.histogram import HdrHistogram

        self.hist = HdrHistogram(1, MAX_NS, SIGNIFICANT_FIGURES)
        self.count = 0
        self.total_ms = 0.0
        self.max_ms = -math.inf

    def add(self, values_ms: np.ndarray) -> None:
        if not len(values_ms):
            return
        for value, n in zip(*_quantized(values_ms), strict=True):
            self.hist.record_value(value, n)
        self.count += len(values_ms)
        self.total_ms += float(np.sum(values_ms, dtype=np.float64))
        self.max_ms = max(self.max_ms, float(np.max(values_ms)))

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile in ms (None when empty); the maximum is exact."""
        if not self.count:
            return None
        if q >= 1.0:
            return self.max_ms
        return min(self.hist.get_value_at_percentile(100.0 * q) / NS_PER_MS, self.max_ms)

    def mean(self) -> float | None:
        return self.total_ms / self.count if self.count else None

    def sample(self, size: int = 100_000) -> np.ndarray:
        """``size`` latencies (ms) spread evenly over the distribution (at the ranks ``(i +
        1/2) / size``): what charts and percentiles.csv draw instead of every request."""
        if not self.count:
            return np.empty(0)
        values, counts = [], []
        for step in self.hist.get_recorded_iterator():
            values.append(step.value_iterated_to / NS_PER_MS)
            counts.append(step.count_added_in_this_iter_step)
        cumulative = np.cumsum(counts)
        m = min(size, self.count)
        ranks = (np.arange(m) + 0.5) / m * cumulative[-1]
        out = np.asarray(values)[np.searchsorted(cumulative, ranks, side="left")]
        return np.minimum(out, self.max_ms)


class StreamingRequests:
    """The measured window's request figures and the per-second time series, built a second
    at a time from the records the engine appends as requests end (in order of their end)."""

    def __init__(self, warmup_ms: float, end_ms: float):
        self.warmup_ms, self.end_ms = warmup_ms, end_ms
        self.latency = LatencyHistogram()  # every window request
        self.latency_ok = LatencyHistogram()  # ok and partial window requests
        self.outcomes = [0, 0, 0, 0]  # window requests by outcome
        self.arrivals = array("q")  # requests by the second they arrived
        self.completions = array("q")  # ... and ended
        self.errors = array("q")
        self.goodput = array("q")
        self.p50 = array("d")
        self.p99 = array("d")
        self.last_end_ms = 0.0  # the latest answer so far
        self.carry: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def absorb(
        self, t0: np.ndarray, lat: np.ndarray, outcome: np.ndarray, now_ms: float, last: bool
    ) -> None:
        """Take the records appended since the last call (copies of the engine's buffers).
        Every request ending before the second of ``now_ms`` has been recorded; records
        ending later wait for the next call, unless this is the ``last``: then, as with exact
        percentiles, the time series has ``ceil(last event / 1 s)`` rows and an answer at
        exactly its end counts in its last row."""
        if self.carry is not None:
            parts = zip(self.carry, (t0, lat, outcome), strict=True)
            t0, lat, outcome = (np.concatenate(p) for p in parts)
            self.carry = None
        end = t0 + lat
        if len(end):
            self.last_end_ms = max(self.last_end_ms, float(end.max()))
        end_s = (end // 1000).astype(np.int64)
        # the second just ended stays open one more call: it may turn out to be the run's
        # last row, which also takes answers at exactly its end
        final_s = max(int(now_ms // 1000) - 1, 0)
        if last:
            final_s = int(math.ceil(max(self.end_ms, now_ms, self.last_end_ms) / 1000)) or 1
            end_s = np.minimum(end_s, final_s - 1)
        later = end_s >= final_s
        if later.any():
            self.carry = (t0[later], lat[later], outcome[later])
            now = ~later
            t0, lat, outcome, end_s = t0[now], lat[now], outcome[now], end_s[now]
        window = (t0 >= self.warmup_ms) & (t0 < self.end_ms)
        self.latency.add(lat[window])
        answered = (outcome == OK) | (outcome == PARTIAL)
        self.latency_ok.add(lat[window & answered])
        for kind, n in enumerate(np.bincount(outcome[window], minlength=4)[:4]):
            self.outcomes[kind] += int(n)
        _add_counts(self.arrivals, (t0 // 1000).astype(np.int64))
        _add_counts(self.completions, end_s)
        _add_counts(self.errors, end_s[~answered])
        _add_counts(self.goodput, end_s[answered])
        self._quantiles(end_s, lat, final_s)

    def _quantiles(self, end_s: np.ndarray, lat: np.ndarray, final_s: int) -> None:
        """p50 and p99 of the requests ending in each second now final."""
        order = np.argsort(end_s, kind="stable")
        end_s, lat = end_s[order], lat[order]
        while len(self.p50) < final_s:
            sec = len(self.p50)
            lo, hi = np.searchsorted(end_s, [sec, sec + 1])
            if hi > lo:
                p50, p99 = np.quantile(lat[lo:hi], [0.5, 0.99])
            else:
                p50 = p99 = math.nan
            self.p50.append(float(p50))
            self.p99.append(float(p99))


def _add_counts(counts: array, seconds: np.ndarray) -> None:
    """``counts[s] += 1`` for each second in ``seconds``, growing ``counts`` as needed."""
    if not len(seconds):
        return
    top = int(seconds.max()) + 1
    if top > len(counts):
        counts.extend([0] * (top - len(counts)))
    add = np.bincount(seconds, minlength=top)
    view = np.frombuffer(counts, dtype=np.int64)
    view[:top] += add
