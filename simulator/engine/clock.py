"""Timers on SimPy's event loop, at the least cost per event.

The engine schedules a callback after a delay millions of times a run (a call's service time,
an arrival, a timeout, a backoff). ``simpy.Timeout`` does that with an ``Event`` (a callbacks
list, an environment reference) and two function calls; ``timer`` puts a three-slot object on
the same heap ``Environment.step`` pops from, with the same ``(time, priority, id)`` key, so
events keep SimPy's order exactly (ties: first scheduled, first run). ``Environment.step`` reads
only ``callbacks``, ``_ok`` and ``_value``, which is all a ``Timer`` has. Delays are never
negative here (latencies are drawn non-negative, deadlines clipped at now), so the check
``Timeout`` makes is left out. The engine reads the clock as ``env._now`` for the same reason
(``Environment.now`` is a property over it).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import Any

from simpy.events import NORMAL


class Timer:
    """A scheduled callback: what ``Environment.step`` needs of an event, nothing more."""

    __slots__ = ("callbacks", "_ok", "_value")

    def __init__(self, callback: Callable[[Timer], None], value: Any) -> None:
        self.callbacks = (callback,)
        self._ok = True
        self._value = value


def timer(callback: Callable[[Timer], None], env, delay_ms: float, value: Any = None) -> None:
    """Call ``callback(event)`` ``delay_ms`` from now, with ``event._value`` = ``value``."""
    heappush(env._queue, (env._now + delay_ms, NORMAL, next(env._eid), Timer(callback, value)))
