"""A service's runtime state in one replication: its random streams, its instances (worker
pools with FIFO queues), its balancer, and its measured-window counters."""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .flows import Call, RStep
    from .histograms import LatencyHistogram
    from .slowness import Slowness

_BATCH = 8192


class Stream:
    """Draws from a distribution one at a time, sampling numpy batches behind the scenes."""

    __slots__ = ("_sample", "_rng", "_buf")

    def __init__(self, sample: Callable[[np.random.Generator, int], np.ndarray], rng):
        self._sample, self._rng, self._buf = sample, rng, []

    def __call__(self) -> float:
        buf = self._buf
        if not buf:
            buf.extend(self._sample(self._rng, _BATCH)[::-1].tolist())
        return buf.pop()

    def take(self, n: int) -> np.ndarray:
        """``n`` draws at once (what is buffered first, in the order ``__call__`` gives it)."""
        buf = self._buf
        if not buf:
            return self._sample(self._rng, n)
        first = np.array(buf[::-1][:n])
        del buf[max(len(buf) - n, 0) :]
        if len(first) == n:
            return first
        return np.concatenate([first, self._sample(self._rng, n - len(first))])


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n)


def bump(counts: list[int], i: int) -> None:
    """counts[i] += 1 past the end of the list: a run that drains beyond its planned horizon."""
    counts.extend([0] * (i + 1 - len(counts) + 64))
    counts[i] += 1


class Instance:
    """One instance of a contended service. ``cap`` calls are admitted at once (``workers``,
    or an adaptive ``limit``); the rest wait in ``queue``. With both a limit and ``workers``,
    admitted calls wait in ``inner`` for one of the ``workers``."""

    __slots__ = ("busy", "queue", "cap", "limit", "workers", "serving", "inner", "index")

    def __init__(self, cap: float, limit=None, workers: float = float("inf"), index: int = 0):
        self.index = index  # its place among its service's instances
        self.busy = 0  # admitted
        self.queue: deque[Call] = deque()
        self.cap = cap
        self.limit = limit
        self.workers = workers
        self.serving = 0
        self.inner: deque[Call] = deque()


class Svc:
    """Runtime state and window counters of one service."""

    def __init__(self, name: str, spec, rng: np.random.Generator, horizon_s: int):
        self.name = name
        self.index = 0  # its place among the scenario's services (Sim sets it)
        self.spec = spec
        self.draw = Stream(spec.latency.sample, rng)
        self.error_rate = spec.error_rate
        self.draw_u = Stream(_uniform, rng)
        self.leaf = not spec.steps
        self.workers = spec.workers
        self.queue_limit = spec.queue_limit if spec.queue_limit is not None else float("inf")
        workers = float(spec.workers) if spec.workers is not None else float("inf")
        if spec.concurrency is not None:
            from .limits import Limit

            limit = float(spec.concurrency.initial)
            self.instances = [
                Instance(limit, Limit(spec.concurrency), workers, i) for i in range(spec.instances)
            ]
        else:
            limit = 0.0
            self.instances = [Instance(workers, None, float("inf"), i)
                              for i in range(spec.instances)]  # fmt: skip
        self.slowness: Slowness | None = None  # slow periods and pauses (Sim sets them)
        self.only = self.instances[0] if len(self.instances) == 1 else None  # no balancing
        self.limited = spec.workers is not None or spec.concurrency is not None
        self.adaptive = spec.concurrency is not None
        self.limit_total = limit * spec.instances  # adaptive limits summed over instances
        # utilization's denominator: the workers, or (with only a limit) the limits
        self.fixed_cap = workers * spec.instances if spec.workers is not None else None
        self.rr = 0
        self.plan: tuple[RStep, ...] = ()
        self.segments: tuple = ()
        self.event_segments: tuple = ()  # every step on the event path (cancellable calls)
        self.free = False
        self.free_below = False  # every downstream step is contention-free
        # ... and can be evaluated at once for an event-path call too (Sim.serve_free_subtree)
        self.free_below_events = False
        # measured-window counters (every window call answered records its latency)
        self.rejected = 0
        self.errors = 0
        self.cancelled = 0
        self.wasted = 0  # calls answered after their caller (or an ancestor's) gave up
        self.timeouts = 0
        self.circuit_open = 0  # attempts refused by an open breaker, never sent
        self.sent = [0, 0, 0]  # attempts policy steps sent here, by their own kind
        # calls that took a worker, and calls answered after a policy gave up on them, by
        # the kind of attempt they belong to (first, retry, hedge; inherited); first tries
        # are not counted as served (results.summary.calls_by_cause derives them)
        self.served_by_kind = [0, 0, 0]
        self.wasted_by_kind = [0, 0, 0]
        self.unstarted = 0  # window calls cancelled before a worker took them
        self.latency_ms = array("f")  # float32: 4 bytes a call, precision ~1e-7 relative
        # streaming percentiles: latency_ms is emptied into this every simulated second
        self.latency_hist: LatencyHistogram | None = None
        # whole-run time series
        self.started_per_s = [0] * horizon_s
        self.busy = 0
        self.queued = 0
        # busy worker-ms up to now = busy_done + busy * now - busy_since (kept per call, so
        # that starting a call needs no integration step)
        self.busy_done = 0.0  # worker-ms of the calls that have left their worker
        self.busy_since = 0.0  # the sum of the start times of the calls holding a worker
        self.queue_time = [0.0] * 64  # ms spent with i calls waiting (i >= 1), whole run
        self.cancelled_ms = 0.0  # window calls cancelled: time from arrival to cancellation
        self.limit_area = 0.0  # limit-ms: the adaptive limits x time
        self.t_last = 0.0

    @property
    def calls(self) -> int:
        """Window calls sent to this service: answered (each left a latency), rejected, and
        cancelled."""
        streamed = self.latency_hist.count if self.latency_hist is not None else 0
        return len(self.latency_ms) + streamed + self.rejected + self.cancelled

    def account(self, now: float) -> None:
        """Accumulate the time spent at each queue length (and the adaptive limits' area) up
        to ``now``. Called before ``queued`` or a limit changes; skipped while nothing queues
        (a stretch with an empty queue adds nothing)."""
        dt = now - self.t_last
        if dt:
            q = self.queued
            if q:
                try:
                    self.queue_time[q] += dt
                except IndexError:
                    self.queue_time.extend([0.0] * (q + 1 - len(self.queue_time) + 64))
                    self.queue_time[q] += dt
            if self.adaptive:  # integrate the moving limits (fixed capacity: see areas())
                self.limit_area += self.limit_total * dt
            self.t_last = now

    def areas(self, now: float) -> tuple[float, float, float, float]:
        """Busy, queue, capacity (workers, or with only an adaptive limit the limits) and limit
        areas up to ``now``, in unit-ms."""
        self.account(now)
        cap = self.fixed_cap * now if self.fixed_cap is not None else self.limit_area
        queue_area = sum(i * ms for i, ms in enumerate(self.queue_time))  # call-ms
        busy_area = self.busy_done + self.busy * now - self.busy_since
        return busy_area, queue_area, cap, self.limit_area

    def pick(self) -> Instance:
        """The balancer: which instance takes the next call."""
        inst = self.instances
        n = len(inst)
        if n == 1:
            return inst[0]
        kind = self.spec.balancer
        if kind == "round_robin":
            self.rr = (self.rr + 1) % n
            return inst[self.rr]
        if kind == "random":
            return inst[int(self.draw_u() * n)]
        if kind == "least_outstanding":
            return min(inst, key=lambda x: x.busy + len(x.queue))  # ties: lowest index
        i = int(self.draw_u() * n)  # p2c: two distinct instances, the less loaded
        j = int(self.draw_u() * (n - 1))
        j += j >= i
        a, b = inst[i], inst[j]
        return b if b.busy + len(b.queue) < a.busy + len(a.queue) else a
