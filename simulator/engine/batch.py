"""Contention-free requests in numpy blocks.

When a request's whole call tree has no worker limit, no policy and no deadline, no request
affects another (every service is an infinite-server station), so a block of requests can be
evaluated at once: every call's latency drawn as an array, fan-ins as row-wise maxima or k-th
order statistics, sequential steps as sums. The result is exactly what ``Sim.run_free`` gives
one request at a time (the same distributions and counters), only the order in which the
random streams are consumed differs, so per-seed values differ from the one-at-a-time path.

Arrays hold one entry per call in flight: ``t_ms`` its start, ``rec`` whether its request is in
the measured window. A failed call (``error_rate``) makes no downstream calls; a step whose
fan-in fails ends its caller's steps.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .flows import RStep
    from .services import Svc


def run_steps(
    steps: tuple[RStep, ...], t_ms: np.ndarray, rec: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` in sequence for calls starting at ``t_ms``: each one's duration (ms) and
    success."""
    total = np.zeros(len(t_ms))
    ok = np.ones(len(t_ms), dtype=bool)
    live = np.arange(len(t_ms))  # calls whose steps have not failed yet
    for step in steps:
        if not len(live):
            break
        start, r = t_ms[live] + total[live], rec[live]
        if step.n == 1:
            d, good = call(step.targets[0][0], start, r)
        else:
            answers = [call(svc, start, r) for svc, _ in step.targets]
            d, good = fan_in(answers, step.k)
        total[live] += d
        ok[live[~good]] = False
        live = live[good]
    return total, ok


def call(svc: Svc, t_ms: np.ndarray, rec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calls to contention-free ``svc`` starting at ``t_ms``: durations (ms) and success;
    their starts counted per second, window calls' latencies and errors recorded."""
    n = len(t_ms)
    d = svc.draw.take(n)
    count_per_second(svc.started_per_s, t_ms)
    if svc.error_rate:
        ok = svc.draw_u.take(n) >= svc.error_rate
    else:
        ok = np.ones(n, dtype=bool)
    if svc.plan:
        go = np.flatnonzero(ok)
        sub, sub_ok = run_steps(svc.plan, t_ms[go] + d[go], rec[go])
        d[go] += sub
        ok[go] = sub_ok
    if rec.any():
        svc.latency_ms.frombytes(d[rec].astype(np.float32).tobytes())
        if svc.error_rate or svc.plan:
            svc.errors += int(np.count_nonzero(rec & ~ok))
    return d, ok


def fan_in(answers: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """When each row's fan-in of ``n`` answers needing ``k`` is decided, and whether it
    succeeded: the ``k``-th success, or the failure that leaves fewer than ``k`` possible."""
    d = np.stack([a[0] for a in answers], axis=1)
    ok = np.stack([a[1] for a in answers], axis=1)
    n = d.shape[1]
    if ok.all():  # the common case: the k-th smallest
        if k == n:
            return d.max(axis=1), np.ones(len(d), dtype=bool)
        return np.partition(d, k - 1, axis=1)[:, k - 1], np.ones(len(d), dtype=bool)
    order = np.argsort(d, axis=1, kind="stable")
    d_sorted = np.take_along_axis(d, order, axis=1)
    ok_sorted = np.take_along_axis(ok, order, axis=1)
    successes = np.cumsum(ok_sorted, axis=1)
    failures = np.cumsum(~ok_sorted, axis=1)
    # the first answer after which the outcome is known (a row always decides by its n-th)
    decided = (successes >= k) | (failures > n - k)
    at = decided.argmax(axis=1)
    rows = np.arange(len(d))
    return d_sorted[rows, at], successes[rows, at] >= k


def count_per_second(counts: list[int], t_ms: np.ndarray) -> None:
    """``counts[s] += 1`` for each time's second ``s`` (the list grows past its end)."""
    if not len(t_ms):
        return
    per_second = np.bincount((t_ms * 0.001).astype(np.int64))
    if len(per_second) > len(counts):
        counts.extend([0] * (len(per_second) - len(counts) + 64))
    for s in np.flatnonzero(per_second):
        counts[s] += int(per_second[s])


def extend(buffer: array, values: np.ndarray, dtype: str) -> None:
    """Append a numpy array to an ``array.array`` buffer of numpy ``dtype``."""
    buffer.frombytes(np.ascontiguousarray(values, dtype=dtype).tobytes())
