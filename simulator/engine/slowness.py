"""Correlated slowness of a service's instances: slow periods and stop-the-world pauses.

Real tails are not independent per call: an instance in a GC pause, next to a noisy neighbour
or on a slow disk is slow for every call it serves for a while ("The Tail at Scale"). Each
instance has its own random phase, drawn from its service's own seeded stream, so instances
are independent of each other and a run is reproducible:

* ``slow_periods``: the instance's time is cut into periods of ``every_s``; in each one, with
  probability ``instances``, it is slow for the period's first ``length_s``. A call it starts
  serving while slow takes ``factor`` times its own latency.
* ``pauses``: every ``every_s`` the instance stops for ``length_ms``. A call it is serving waits
  each pause out (its own time grows by the pause); a call it takes during a pause starts when
  the pause ends.

A call's own time is computed when a worker takes it (``own_time``), so a slowed or paused
call holds its worker for the whole of it, and balancers that count outstanding calls
(``least_outstanding``, ``p2c``) see a slow instance fill up and steer around it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..scenario.model import Service

SLOW_HORIZON_FACTOR = 2.0  # slow periods are drawn for twice the run (drains included)


class Slowness:
    """One service's slow periods and pauses, per instance."""

    __slots__ = ("slow_every", "slow_length", "factor", "slow_phase", "slow_on", "pause_every",
                 "pause_length", "pause_phase")  # fmt: skip

    def __init__(self, spec: Service, run_ms: float, rng: np.random.Generator) -> None:
        n = spec.instances
        self.slow_every = self.pause_every = 0.0
        self.slow_length = self.pause_length = self.factor = 0.0
        self.slow_phase: list[float] = []
        self.slow_on: list[list[bool]] = []
        self.pause_phase: list[float] = []
        if spec.slow_periods is not None:
            sp = spec.slow_periods
            self.slow_every, self.slow_length = sp.every_s * 1000.0, sp.length_s * 1000.0
            self.factor = sp.factor
            self.slow_phase = rng.uniform(0.0, self.slow_every, n).tolist()
            periods = math.ceil(SLOW_HORIZON_FACTOR * run_ms / self.slow_every) + 2
            self.slow_on = (rng.random((n, periods)) < sp.instances).tolist()
        if spec.pauses is not None:
            self.pause_every = spec.pauses.every_s * 1000.0
            self.pause_length = spec.pauses.length_ms
            self.pause_phase = rng.uniform(0.0, self.pause_every, n).tolist()

    def slow(self, instance: int, t_ms: float) -> bool:
        """Whether the instance is in a slow period at ``t_ms``."""
        if not self.slow_on:
            return False
        since = t_ms - self.slow_phase[instance]  # periods start at phase + k x every
        k = math.floor(since / self.slow_every)
        periods = self.slow_on[instance]
        if not 0 <= k + 1 < len(periods):  # period -1 starts before time 0
            return False
        return periods[k + 1] and since - k * self.slow_every < self.slow_length

    def own_time(self, instance: int, t_ms: float, own_ms: float) -> float:
        """How long a call whose own latency is ``own_ms`` holds the instance when its worker
        takes it at ``t_ms``: slowed if the instance is slow then, stretched by every pause
        it waits out (one under way when it starts, and each that starts before it ends)."""
        if self.factor and self.slow(instance, t_ms):
            own_ms *= self.factor
        if not self.pause_every:
            return own_ms
        every, length = self.pause_every, self.pause_length
        phase = self.pause_phase[instance]
        last = phase + math.floor((t_ms - phase) / every) * every  # the last pause start <= t
        start = max(t_ms, last + length)  # a pause under way: the call starts when it ends
        end = start + own_ms
        nxt = last + every
        while nxt < end:  # each pause starting while it runs delays its end
            end += length
            nxt += every
        return end - t_ms
