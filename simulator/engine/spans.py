"""Spans of a sample of simulated requests (``fansim run --traces``): one per call.

A sampled request's calls carry a :class:`Traced` as their ``rec`` flag (it is truthy, as a
window request's ``rec`` is): it names the request's root span and the caller, so each call's
span knows its parent. Recording reads what the engine does and never changes it: the random
streams are consumed in the same order, so a traced run's summary is the untraced run's
(``tests/test_spans.py`` proves it on every shipped scenario).

Calls are recorded where they end on each path:

* event path: when a call answers, is rejected or cancelled (``Sim.end``, ``Sim.send``,
  ``Sim.cancel``); the calling-side policies note retries, hedges and timeouts (``note``);
* contention-free subtrees evaluated at once: :func:`traced_run_free` mirrors
  ``free.run_free`` draw for draw and records each call;
* numpy blocks (``engine.batch``): :func:`open_block` and :func:`close_block` around a block's
  calls to one service.

A span's times are simulated milliseconds; ``results.traces`` writes them as OTLP JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .free import fan_in
from .services import bump
from .tail import NO_SERVICE

if TYPE_CHECKING:
    from .flows import RStep
    from .services import Svc

ATTEMPTS = ("first", "retry", "hedge")  # by the engine's FIRST, RETRY, HEDGE


class Span:
    """One call of a sampled request (or, with ``service`` None, the request itself).

    ``parent`` is the caller: a ``Call`` of the event path, another ``Span``, or None (the
    request's root span). ``key`` is what children name as their parent: the ``Call`` for an
    event-path call, the span itself otherwise."""

    __slots__ = (
        "request", "key", "parent", "service", "instance", "start_ms", "served_ms", "end_ms",
        "outcome", "attempt", "given_up_ms", "timed_out", "step",
    )  # fmt: skip

    def __init__(self, request: int, parent: Any, service: str | None, start_ms: float) -> None:
        self.request = request  # the arrival index of its request
        self.key: Any = self
        self.parent = parent
        self.service = service
        self.instance = -1  # -1: none picked (a contention-free service)
        self.start_ms = start_ms  # sent
        self.served_ms = start_ms  # a worker took it (queueing = served - start)
        self.end_ms = start_ms  # answered (or rejected, cancelled)
        self.outcome = "ok"  # ok | error | rejected | cancelled; a request's: ok | partial | ...
        self.attempt = "first"
        self.given_up_ms: float | None = None  # when its caller gave up on it (timeout, loser)
        self.timed_out = False
        self.step = ""  # the scenario step that sent it, e.g. "services.api.steps.0"


class Traced:
    """The ``rec`` flag of a sampled request's calls: where their spans go, the request's
    root span, and the caller whose steps they are (None: the request's own steps)."""

    __slots__ = ("sink", "root", "parent")

    def __init__(self, sink: list[Span], root: Span, parent: Any) -> None:
        self.sink, self.root, self.parent = sink, root, parent

    def below(self, parent: Any) -> Traced:
        """The flag of ``parent``'s own downstream calls."""
        return Traced(self.sink, self.root, parent)


class SpanRecorder:
    """Chooses the sampled requests and holds their spans: ``roots`` (one per request, in
    arrival order) and ``spans`` (every call, in the order they ended)."""

    def __init__(self, window_indices: np.ndarray, sample: int, rng: np.random.Generator):
        if sample >= len(window_indices):
            chosen = window_indices
        else:  # uniformly, without replacement, from the measured window's arrivals
            chosen = np.sort(rng.choice(window_indices, size=sample, replace=False))
        self.sampled = set(chosen.tolist())
        self.window_requests = len(window_indices)
        self.roots: list[Span] = []
        self.spans: list[Span] = []
        self.notes: dict[Any, list] = {}  # Call -> [attempt, timed out]: see note()

    def request(self, index: int, t0_ms: float) -> Traced:
        """A sampled request arrives: its root span, and the flag its calls carry."""
        root = Span(index, None, None, t0_ms)
        self.roots.append(root)
        return Traced(self.spans, root, None)

    def note(self, call: Any, attempt: int = 0, timed_out: bool = False) -> None:
        """A policy's word on an event-path call: which attempt it is, or that it timed out."""
        if call.state >= 3:  # DONE already: refused as it was sent, its span just recorded
            for span in reversed(self.spans):
                if span.key is call:
                    span.attempt = ATTEMPTS[attempt]
                    return
        note = self.notes.setdefault(call, [0, False])
        if attempt:
            note[0] = attempt
        note[1] = note[1] or timed_out


class PendingFree:
    """A sampled request's contention-free call in an event-path step, among the step's items
    (``Flow.items``): when the step stops waiting for it before it answered, its span is
    marked as given up. It has no path a deadline could count (``path_so_far``: None), as
    such a call has none on the untraced path either."""

    __slots__ = ("span", "env")

    def __init__(self, span: Span, env: Any) -> None:
        self.span, self.env = span, env

    def drop(self, cancel: bool, policy: bool = False) -> None:
        now = self.env._now
        if self.span.end_ms > now:
            self.span.given_up_ms = now

    def path_so_far(self, now: float) -> None:
        return None


def request_done(traced: Traced, end_ms: float, outcome: str) -> None:
    """A sampled request answered its user."""
    traced.root.end_ms = end_ms
    traced.root.served_ms = traced.root.start_ms
    traced.root.outcome = outcome


def call_ended(
    recorder: SpanRecorder, call: Any, outcome: str, now_ms: float, served: bool = True
) -> None:
    """An event-path call of a sampled request answered, was rejected or was cancelled
    (``served``: whether a worker had taken it)."""
    traced: Traced = call.rec
    span = Span(traced.root.request, traced.parent, call.svc.name, call.t0)
    span.key = call
    span.instance = call.inst.index
    # (a call never served waited all along; a call's ``served`` may be 0.0, a real time)
    span.served_ms = call.served if served else now_ms
    span.end_ms = now_ms
    span.outcome = outcome
    if call.abandoned < now_ms:
        span.given_up_ms = call.abandoned
    note = recorder.notes.pop(call, None)
    if note is not None:
        span.attempt = ATTEMPTS[note[0]]
        span.timed_out = note[1]
    if call.step is not None:
        span.step = call.step.name
    traced.sink.append(span)


# ---- contention-free subtrees evaluated at once ------------------------------------------


def traced_free_call(svc: Svc, t: float, rec: Traced, step: RStep, trace=None) -> tuple:
    """``free.free_call`` for a sampled request: the same draws in the same order, plus a span
    for the call and each call below it; the span is the answer's fifth element."""
    span = Span(rec.root.request, rec.parent, svc.name, t)
    span.step = step.name
    d = svc.draw()
    try:
        svc.started_per_s[int(t * 0.001)] += 1
    except IndexError:
        bump(svc.started_per_s, int(t * 0.001))
    top, top_ms = svc.index, d
    if svc.error_rate and svc.draw_u() < svc.error_rate:
        ok = False
    elif svc.plan:
        sub, ok, sub_top, sub_ms = traced_run_free(svc.plan, t + d, rec.below(span), trace)
        if sub_ms > d:
            top, top_ms = sub_top, sub_ms
        d += sub
    else:
        ok = True
    svc.latency_ms.append(d)  # a sampled request is in the window
    if not ok:
        svc.errors += 1
    span.end_ms = t + d
    span.outcome = "ok" if ok else "error"
    rec.sink.append(span)
    return d, ok, top, top_ms, span


def traced_run_free(steps: tuple[RStep, ...], t: float, rec: Traced, trace=None) -> tuple:
    """``free.run_free`` for a sampled request (see ``traced_free_call``)."""
    total = 0.0
    top, top_ms = NO_SERVICE, -1.0
    for step in steps:
        start = t + total
        answers = [traced_free_call(svc, start, rec, step, trace) for svc, _ in step.targets]
        if trace is not None:
            trace += [
                (start + a[0], svc, step) for a, (svc, _) in zip(answers, step.targets, strict=True)
            ]
        d, ok, s_top, s_ms = (answers[0] if step.n == 1 else fan_in(answers, step.k, step.n))[:4]
        for answer in answers:  # those answering after the fan-in decided were given up on
            if answer[0] > d:
                answer[4].given_up_ms = start + d
        total += d
        if s_ms > top_ms:
            top, top_ms = s_top, s_ms
        if not ok:
            return total, False, top, top_ms
    return total, True, top, top_ms


# ---- numpy blocks --------------------------------------------------------------------------


def open_block(svc: Svc, step: RStep, t_ms: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Spans for a block's calls to ``svc`` whose request is sampled (``flags``: a ``Traced``
    or None per row); returns the flags of their own downstream calls."""
    below = np.full(len(t_ms), None, dtype=object)
    for i in np.flatnonzero(flags != None):  # noqa: E711 (elementwise on an object array)
        rec: Traced = flags[i]
        span = Span(rec.root.request, rec.parent, svc.name, float(t_ms[i]))
        span.step = step.name
        below[i] = rec.below(span)
    return below


def mark_losers(answers: list[tuple], start: np.ndarray, decided_ms: np.ndarray) -> None:
    """A numpy block's fan-in decided after ``decided_ms``: the sampled calls answering later
    were given up on (``answers``: ``batch.call``'s, with their flags fifth)."""
    for answer in answers:
        below = answer[4]
        if below is None:
            continue
        for i in np.flatnonzero((below != None) & (answer[0] > decided_ms)):  # noqa: E711
            below[i].parent.given_up_ms = float(start[i] + decided_ms[i])


def close_block(below: np.ndarray, t_ms: np.ndarray, d: np.ndarray, ok: np.ndarray) -> None:
    """The block's sampled calls answered after ``d`` ms (``ok``): record their spans."""
    for i in np.flatnonzero(below != None):  # noqa: E711
        rec: Traced = below[i]
        span: Span = rec.parent
        span.end_ms = float(t_ms[i] + d[i])
        span.outcome = "ok" if ok[i] else "error"
        rec.sink.append(span)
