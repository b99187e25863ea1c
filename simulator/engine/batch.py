"""Contention-free requests in numpy blocks.

When a request's whole call tree has no worker limit, no policy and no deadline, no request
affects another (every service is an infinite-server station), so a block of requests can be
evaluated at once: every call's latency drawn as an array, fan-ins as row-wise maxima or k-th
order statistics, sequential steps as sums. The result is exactly what ``free.run_free`` gives
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

from . import spans
from .tail import NO_SERVICE

if TYPE_CHECKING:
    from .flows import RStep
    from .services import Svc


def run_steps(
    steps: tuple[RStep, ...], t_ms: np.ndarray, rec: np.ndarray, flags: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``steps`` in sequence for calls starting at ``t_ms``: each one's duration (ms), success
    and the service it waited on (engine.tail: index of the critical path's service with the
    largest own time). ``flags``: each row's ``spans.Traced`` (a sampled request) or None,
    when spans are recorded."""
    top, _top_ms, total, ok = _steps(steps, t_ms, rec, flags)
    return total, ok, top


def _steps(steps, t_ms, rec, flags=None):
    """``run_steps`` plus the own time (ms) of the service waited on."""
    n = len(t_ms)
    total = np.zeros(n)
    ok = np.ones(n, dtype=bool)
    top = np.full(n, NO_SERVICE, dtype=np.int64)
    top_ms = np.full(n, -np.inf)
    live = np.arange(n)  # calls whose steps have not failed yet
    for step in steps:
        if not len(live):
            break
        start, r = t_ms[live] + total[live], rec[live]
        f = None if flags is None else flags[live]
        if step.n == 1:
            d, good, s_top, s_ms = call(step.targets[0][0], start, r, f, step)[:4]
        else:
            answers = [call(svc, start, r, f, step) for svc, _ in step.targets]
            d, good, s_top, s_ms = fan_in(answers, step.k)
            if f is not None:  # sampled requests' spans: the fan-in's losers
                spans.mark_losers(answers, start, d)
        total[live] += d
        later = s_ms > top_ms[live]  # the earlier step keeps a tie (engine.tail.join)
        top[live] = np.where(later, s_top, top[live])
        top_ms[live] = np.maximum(top_ms[live], s_ms)
        ok[live[~good]] = False
        live = live[good]
    return top, top_ms, total, ok


def call(svc: Svc, t_ms: np.ndarray, rec: np.ndarray, flags=None, step=None):
    """Calls to contention-free ``svc`` starting at ``t_ms``: durations (ms), success, and the
    service each waited on with its own time (ms); their starts counted per second, window
    calls' latencies and errors recorded (and sampled requests' spans, with ``flags``: their
    own calls' flags are the answer's fifth element, None without)."""
    n = len(t_ms)
    d = svc.draw.take(n)
    below = None if flags is None else spans.open_block(svc, step, t_ms, flags)
    count_per_second(svc.started_per_s, t_ms)
    top = np.full(n, svc.index, dtype=np.int64)
    top_ms = d.copy()  # its own latency
    if svc.error_rate:
        ok = svc.draw_u.take(n) >= svc.error_rate
    else:
        ok = np.ones(n, dtype=bool)
    if svc.plan:
        go = np.flatnonzero(ok)
        f = None if below is None else below[go]
        sub_top, sub_ms, sub, sub_ok = _steps(svc.plan, t_ms[go] + d[go], rec[go], f)
        deeper = sub_ms > top_ms[go]  # the caller keeps a tie (engine.tail.above)
        top[go] = np.where(deeper, sub_top, svc.index)
        top_ms[go] = np.maximum(top_ms[go], sub_ms)
        d[go] += sub
        ok[go] = sub_ok
    if rec.any():
        svc.latency_ms.frombytes(d[rec].astype(np.float32).tobytes())
        if svc.error_rate or svc.plan:
            svc.errors += int(np.count_nonzero(rec & ~ok))
    if below is not None:
        spans.close_block(below, t_ms, d, ok)
    return d, ok, top, top_ms, below


def fan_in(answers: list[tuple[np.ndarray, ...]], k: int):
    """When each row's fan-in of ``n`` answers needing ``k`` is decided, whether it succeeded
    (the ``k``-th success, or the failure that leaves fewer than ``k`` possible), and the
    deciding answer's service waited on and its own time."""
    d = np.stack([a[0] for a in answers], axis=1)
    ok = np.stack([a[1] for a in answers], axis=1)
    n = d.shape[1]
    rows = np.arange(len(d))
    if ok.all():  # the common case: the k-th smallest
        if k == n:
            col = d.argmax(axis=1)
        else:
            col = np.argpartition(d, k - 1, axis=1)[:, k - 1]
        good = np.ones(len(d), dtype=bool)
    else:
        order = np.argsort(d, axis=1, kind="stable")
        ok_sorted = np.take_along_axis(ok, order, axis=1)
        successes = np.cumsum(ok_sorted, axis=1)
        failures = np.cumsum(~ok_sorted, axis=1)
        # the first answer after which the outcome is known (a row always decides by its n-th)
        decided = (successes >= k) | (failures > n - k)
        at = decided.argmax(axis=1)
        col = order[rows, at]
        good = successes[rows, at] >= k
    tops = np.stack([a[2] for a in answers], axis=1)
    top_ms = np.stack([a[3] for a in answers], axis=1)
    return d[rows, col], good, tops[rows, col], top_ms[rows, col]


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
