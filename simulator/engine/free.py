"""Contention-free calls evaluated one request at a time, off the event path.

A service with no worker limit, and no policy below it, is an infinite-server station: nothing
a call to it does depends on other requests, so its whole subtree (its own latency, then its
steps in sequence, each step's fan-in as an order statistic) is evaluated at once from the
services' batch-sampled streams, and the caller waits for it with one timer. ``engine.batch``
does the same for whole blocks of requests with numpy; this module is its one-call form, used
where a contended call or flow meets a contention-free subtree.

Each evaluation also returns the subtree's critical path (``engine.tail``): the service waited
on and its own time; a contention-free subtree has no queueing, retry, backoff or hedge time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .services import bump
from .tail import NO_SERVICE

if TYPE_CHECKING:
    from .flows import RStep
    from .services import Svc


def free_call(svc: Svc, t: float, rec: bool, trace: list | None = None) -> tuple:
    """``(duration ms, success, service waited on, its own ms)`` of a call to a
    contention-free service started at ``t``: the last two are its critical path
    (engine.tail), which in a contention-free subtree has no queueing, retry, backoff or
    hedge time. ``trace``: see ``run_free``."""
    d = svc.draw()
    try:
        svc.started_per_s[int(t * 0.001)] += 1
    except IndexError:
        bump(svc.started_per_s, int(t * 0.001))
    top, top_ms = svc.index, d
    if svc.error_rate and svc.draw_u() < svc.error_rate:
        ok = False
    elif svc.plan:
        sub, ok, sub_top, sub_ms = run_free(svc.plan, t + d, rec, trace)
        if sub_ms > d:  # the caller keeps a tie (engine.tail.above)
            top, top_ms = sub_top, sub_ms
        d += sub
    else:
        ok = True
    if rec:
        svc.latency_ms.append(d)
        if not ok:
            svc.errors += 1
    return d, ok, top, top_ms


def run_free(steps: tuple[RStep, ...], t: float, rec: bool, trace: list | None = None) -> tuple:
    """Run contention-free steps in sequence from ``t``: ``(total duration ms, success,
    service waited on, its own ms)`` (see ``free_call``). A ``trace`` list gets
    ``(answered at ms, service, step)`` of every call made."""
    total = 0.0
    top, top_ms = NO_SERVICE, -1.0
    for step in steps:
        start = t + total
        if step.n == 1:
            svc = step.targets[0][0]
            d, ok, s_top, s_ms = free_call(svc, start, rec, trace)
            if trace is not None:
                trace.append((start + d, svc, step))
        else:
            answers = [free_call(svc, start, rec, trace) for svc, _ in step.targets]
            if trace is not None:
                trace += [
                    (start + a[0], svc, step)
                    for a, (svc, _) in zip(answers, step.targets, strict=True)
                ]
            d, ok, s_top, s_ms = fan_in(answers, step.k, step.n)
        total += d
        if s_ms > top_ms:  # the earlier step keeps a tie (engine.tail.join)
            top, top_ms = s_top, s_ms
        if not ok:
            return total, False, top, top_ms
    return total, True, top, top_ms


def fan_in(answers: list[tuple], k: int, n: int) -> tuple:
    """The answer ``(ms, ok, ...)`` that decides a fan-in of ``n`` answers needing ``k``: the
    k-th success, or the failure that leaves fewer than ``k`` possible."""
    if k == n:  # all required: the slowest, or the first failure
        worst = first_fail = None
        for answer in answers:
            if answer[1]:
                if worst is None or answer[0] > worst[0]:
                    worst = answer
            elif first_fail is None or answer[0] < first_fail[0]:
                first_fail = answer
        return worst if first_fail is None else first_fail
    need, spare = k, n - k
    for answer in sorted(answers, key=lambda a: (a[0], a[1])):
        if answer[1]:
            need -= 1
            if need == 0:
                return answer
        else:
            spare -= 1
            if spare < 0:
                return answer
    raise AssertionError("fan-in undecided")  # unreachable: n answers decide k of n


def no_losers(steps: tuple[RStep, ...]) -> bool:
    """Whether contention-free ``steps`` and everything below them wait for every answer and
    never fail: no call is ever given up on inside them."""
    return all(
        step.k == step.n and not svc.error_rate and no_losers(svc.plan)
        for step in steps
        for svc, _ in step.targets
    )
