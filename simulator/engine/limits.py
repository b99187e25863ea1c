"""Adaptive concurrency limits on the serving side, after Netflix's concurrency-limits.

Each instance of a service with ``concurrency`` keeps its own adaptive limit on the calls it
admits: alone, the limit replaces a fixed ``workers``; with ``workers`` it admits calls in
front of them (admitted calls wait for a worker). Calls beyond the limit wait in the
instance's queue (``queue_limit`` applies) or are rejected. The limit moves as calls
complete: ``rtt_ms`` is a call's time from admission to answer, ``dropped`` marks a call its
caller gave up on (cancelled); aimd also treats a call slower than ``latency_target_ms`` as
dropped.

* **aimd** (AIMDLimit): +1 after a good call while at least half the limit is in use; x
  ``backoff_ratio`` after a dropped one.
* **gradient** (Gradient2Limit): compares a long-term average RTT (``long_window`` calls)
  with a short-term one (10 calls); ``gradient`` = clamp(long / short, 0.5, 1); the new limit
  is ``limit * gradient + queue_size``, smoothed: ``limit = (1 - smoothing) * limit +
  smoothing * new``. Like Gradient2, it lets the long average decay when it is more than
  twice the short one. The long average also absorbs sustained queueing, so under a steady
  overload the limit settles where latency has grown by some factor; use aimd with
  ``latency_target_ms`` to hold latency to a target.
"""

from __future__ import annotations

from ..scenario.model import Concurrency

SHORT_WINDOW = 10  # calls in the gradient's short-term RTT average


class Limit:
    """One instance's adaptive concurrency limit."""

    __slots__ = ("spec", "limit", "long_rtt_ms", "short_rtt_ms", "samples")

    def __init__(self, spec: Concurrency):
        self.spec = spec
        self.limit = float(spec.initial)
        self.long_rtt_ms = 0.0
        self.short_rtt_ms = 0.0
        self.samples = 0

    def update(self, rtt_ms: float, dropped: bool, in_flight: int) -> float:
        """Feed one completed call; return the new limit."""
        spec = self.spec
        if spec.algorithm == "aimd":
            if dropped or rtt_ms > spec.latency_target_ms:
                self.limit *= spec.backoff_ratio
            elif 2 * in_flight >= self.limit:
                self.limit += 1.0
        else:
            self.samples += 1
            self.long_rtt_ms += (rtt_ms - self.long_rtt_ms) / min(self.samples, spec.long_window)
            self.short_rtt_ms += (rtt_ms - self.short_rtt_ms) / min(self.samples, SHORT_WINDOW)
            if self.long_rtt_ms > 2 * self.short_rtt_ms:
                self.long_rtt_ms *= 0.95  # latency fell for good: let the baseline follow
            if dropped:
                gradient = 0.5
            else:
                ratio = self.long_rtt_ms / self.short_rtt_ms if self.short_rtt_ms > 0 else 1.0
                gradient = max(0.5, min(1.0, ratio))
            new = self.limit * gradient + spec.queue_size
            self.limit = (1 - spec.smoothing) * self.limit + spec.smoothing * new
        self.limit = min(float(spec.max), max(float(spec.min), self.limit))
        return self.limit
