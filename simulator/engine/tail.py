"""Tail attribution: what the slowest window requests waited on, and where their time went.

A request's *critical path* is the chain of calls it waited for: in each step, the call whose
answer decided the fan-in (the k-th success, or the failure that made the step fail), then
that call's own steps the same way, down the call tree (the critical path of Jaeger's and
Uber's trace analyses). Along it the engine sums the time spent queueing for a worker, in
attempts that failed or timed out before the one that counted (retries), in backoff before a
retry, and waiting for a hedge to be sent (hedge delay); what is left is service time. The
request *waited on* the service of its critical path with the largest own time: its queueing
plus its own latency, its downstream calls excluded.

A path is a tuple ``(service index, that service's own ms, queue ms, retry ms, backoff ms,
hedge ms)``; ``None`` is the empty path. Only the slowest ~1% of the window's requests are
reported, so only they are kept (:class:`Tail`): a request at least as slow as the kept ones'
fastest offers its path, any other is passed over with one comparison.
"""

from __future__ import annotations

import math
from heapq import heappush, heapreplace

NO_SERVICE = -1  # a path that never reached a service (e.g. a deadline before any answer)
TAIL_SHARE = 0.01  # p99: the share of window requests the report attributes


def leaf(index: int, latency_ms: float, queue_ms: float) -> tuple:
    """The path of a call with no downstream steps."""
    return (index, latency_ms, queue_ms, 0.0, 0.0, 0.0)


def join(a: tuple | None, b: tuple) -> tuple:
    """Path ``a``, then path ``b`` (sequential steps): components add up, the service waited
    on is the one with the larger own time."""
    if a is None:
        return b
    top = a if a[1] >= b[1] else b
    return (top[0], top[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5] + b[5])


def above(index: int, queue_ms: float, own_ms: float, down: tuple | None) -> tuple:
    """The path of a call that queued ``queue_ms``, ran ``own_ms`` itself, then waited for its
    downstream steps' path ``down``."""
    mine = queue_ms + own_ms
    if down is None:
        return (index, mine, queue_ms, 0.0, 0.0, 0.0)
    if mine >= down[1]:
        return (index, mine, queue_ms + down[2], down[3], down[4], down[5])
    return (down[0], down[1], queue_ms + down[2], down[3], down[4], down[5])


class Tail:
    """The paths of the slowest window requests: a heap of at most ``size`` entries
    ``(latency_ms, key, path)``, fastest first. ``floor`` is the latency a request must reach
    to be considered (``-inf`` until the heap is full).

    Latencies are rounded to the nanosecond, so that requests of one latency in exact
    arithmetic (a deadline, a timeout) tie exactly instead of by float noise that grows with
    the time of day; among tied requests the key, a scrambled arrival order, keeps a sample
    spread over the whole run rather than its first or last."""

    __slots__ = ("entries", "size", "floor", "order")

    def __init__(self, window_requests: int) -> None:
        # a little over 1% (p99), so that the requests above the exact p99 are all kept
        self.size = math.ceil(window_requests * TAIL_SHARE * 1.1) + 20
        self.entries: list[tuple[float, int, tuple | None]] = []
        self.floor = -math.inf
        self.order = 0

    def offer(self, latency_ms: float, path: tuple | None) -> None:
        """Keep this request's path if it is among the slowest so far (callers check
        ``latency_ms >= floor`` first, to build no path for the rest)."""
        self.order += 1
        key = (self.order * 0x9E3779B1) & 0xFFFFFFFF  # a bijection: keys never repeat
        entry = (round(latency_ms, 6), key, path)
        entries = self.entries
        if len(entries) < self.size:
            heappush(entries, entry)
            if len(entries) == self.size:
                self.floor = entries[0][0]
        elif entry[:2] > entries[0][:2]:
            heapreplace(entries, entry)
            self.floor = entries[0][0]
