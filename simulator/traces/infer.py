"""Call trees to a scenario's structure: steps, fan-outs, repeats, retries, rates, own times.

For each visit (a service's work for one call, or a user request) its calls are sorted by
start and put together into **logical calls** (a first attempt with its retries and hedges)
and **steps**:

* **Retries and hedges.** A span that says it is one (``fansim.attempt``, or OpenTelemetry's
  ``http.request.resend_count`` > 0) is one. When no span in the traces says so, a call to a
  service that starts once an earlier call to it failed (error, timeout, refusal) is a retry of
  it ("repeated sibling calls after an error").
* **Parallel or sequential.** A logical call that starts before any call of the current step
  has answered is sent in parallel with them; one that starts at or after an answer starts the
  next step. A start less than ``ambiguity_ms`` before the first answer could be either (a
  sequential call under clock jitter) and is counted as ambiguous.
* **Require.** The answers a step had when the next step started (or the visit ended): fewer
  than its calls means the step needed only that many.
* **Own time.** The visit's duration minus the time its logical calls covered (a retry's
  backoff included) and minus queueing when the span gives it (``fansim.queue_ms``).

Per service, the most common sequence of steps (by the services each calls) among visits
that succeeded is the service's plan: each step keeps the most common fan-out (its whole
distribution is reported), and consecutive identical steps become ``repeat``. Policies are
read per caller → callee edge over all visits: the most retries a logical call had, the
median wait before a first retry, the median time after which attempts timed out, the median
hedge delay.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from statistics import median

import numpy as np

from .calls import Call, Visit


@dataclass
class Logical:
    """A logical call: its first attempt, then retries and hedges, in order sent."""

    callee: str
    attempts: list[Call]

    @property
    def start_ms(self) -> float:
        return self.attempts[0].start_ms

    def answered_ms(self) -> float | None:
        """When the caller had its answer: the first success it waited for, else its last
        failure; None when it was given up on before any answer (a loser)."""
        ok = [a.end_ms for a in self.attempts if a.given_up_ms is None and not a.error]
        if ok:
            return min(ok)
        failures = [_failed_at(a) for a in self.attempts]
        failures = [t for t in failures if t is not None]
        return max(failures) if failures else None

    def failed(self) -> bool:
        return not any(a.given_up_ms is None and not a.error for a in self.attempts) and any(
            _failed_at(a) is not None for a in self.attempts
        )


def _failed_at(a: Call) -> float | None:
    """When the caller saw attempt ``a`` fail, if it did."""
    if a.error_type == "timeout":
        return a.given_up_ms if a.given_up_ms is not None else a.end_ms
    if a.error and a.given_up_ms is None:
        return a.end_ms
    return None


def ambiguity_ms(step_ms: float) -> float:
    """How close (ms) to a step's first answer a start is ambiguous: 1 us plus 1% of the
    time the step had run."""
    return 0.001 + 0.01 * max(step_ms, 0.0)


@dataclass
class Shape:
    """A visit's steps: per step, the logical calls (grouped) and how many it waited for."""

    steps: list[list[Logical]]
    required: list[int]
    ambiguous: int


def shape_of(visit: Visit, explicit: bool) -> Shape:
    """Group ``visit``'s calls into logical calls and steps (see the module docstring)."""
    logical: list[Logical] = []
    for call in sorted(visit.calls, key=lambda c: (c.start_ms, c.end_ms)):
        if explicit and call.attempt in ("retry", "hedge"):
            owner = _latest(logical, call)
            if owner is not None:
                owner.attempts.append(call)
                continue
        elif not explicit:
            owner = _retried(logical, call)
            if owner is not None:
                owner.attempts.append(call)
                continue
        logical.append(Logical(call.callee, [call]))
    steps: list[list[Logical]] = []
    ambiguous = 0
    first_answer = float("inf")
    for item in logical:  # in order of start
        if steps:  # just before an answer: parallel, or sequential with clock jitter?
            gap = item.start_ms - first_answer
            if -ambiguity_ms(first_answer - steps[-1][0].start_ms) <= gap < 0:
                ambiguous += 1
        if not steps or item.start_ms >= first_answer:
            steps.append([])
            first_answer = float("inf")
        steps[-1].append(item)
        answered = item.answered_ms()
        if answered is not None:
            first_answer = min(first_answer, answered)
    required = []
    for i, step in enumerate(steps):
        decided = steps[i + 1][0].start_ms if i + 1 < len(steps) else visit.end_ms
        tol = ambiguity_ms(decided - step[0].start_ms)
        required.append(sum(1 for item in step if _answered_by(item, decided + tol)))
    return Shape(steps, required, ambiguous)


def _answered_by(item: Logical, t: float) -> bool:
    """Whether ``item`` had answered by ``t`` (an answer at 0.0 ms is an answer)."""
    answered = item.answered_ms()
    return answered is not None and answered <= t


def _latest(logical: list[Logical], call: Call) -> Logical | None:
    """The logical call a marked retry or hedge ``call`` belongs to: one to the same service,
    started before it and without a success by then (a retry: one that had failed by then),
    the one with the fewest attempts so far (calls fanned out to one service look alike)."""
    t = call.start_ms
    best = None
    for item in logical:
        if item.callee != call.callee or item.start_ms > t:
            continue
        if any(a.given_up_ms is None and not a.error and a.end_ms < t for a in item.attempts):
            continue  # it had its answer
        failures = [_failed_at(a) for a in item.attempts]
        if call.attempt == "retry" and not any(f is not None and f <= t for f in failures):
            continue
        if best is None or len(item.attempts) < len(best.attempts):
            best = item
    return best


def _retried(logical: list[Logical], call: Call) -> Logical | None:
    """The logical call ``call`` retries: the latest one to the same service whose last
    attempt failed before ``call`` started."""
    for item in reversed(logical):
        last = item.attempts[-1]
        failed = _failed_at(last)
        if item.callee == call.callee and failed is not None and failed <= call.start_ms:
            return item
    return None


def own_ms(visit: Visit, shape: Shape) -> float:
    """The visit's own time (ms): its duration minus what its logical calls covered (each
    from its first start to its answer, or the visit's end) minus its queueing."""
    intervals = []
    for step in shape.steps:
        for item in step:
            end = item.answered_ms()
            end = visit.end_ms if end is None else min(end, visit.end_ms)
            intervals.append((max(item.start_ms, visit.start_ms), end))
    covered, reach = 0.0, -float("inf")
    for lo, hi in sorted(intervals):
        lo = max(lo, reach)
        if hi > lo:
            covered += hi - lo
            reach = hi
    return max(0.0, visit.end_ms - visit.start_ms - covered - visit.queue_ms)


@dataclass
class StepGuess:
    """One step of an inferred plan."""

    callees: tuple[str, ...]
    fanout: int
    fanout_counts: Counter  # calls per callee per visit -> visits
    require: int | None  # None: all
    repeat: int = 1
    optional: bool = False  # the visit usually went on with none of its answers


@dataclass
class EdgePolicy:
    """What the traces show of a caller -> callee edge's calling-side policies."""

    logical_calls: int = 0
    retries_max: int = 0
    first_retry_wait_ms: list[float] = field(default_factory=list)
    timed_out_after_ms: list[float] = field(default_factory=list)
    hedge_after_ms: list[float] = field(default_factory=list)
    hedges_max: int = 0


@dataclass
class ServiceGuess:
    """Everything inferred about one service (or, named None, the request)."""

    name: str | None
    visits: int = 0
    own_ms: list[float] = field(default_factory=list)
    own_errors: int = 0
    rejected: int = 0
    queue_ms: list[float] = field(default_factory=list)
    steps: list[StepGuess] = field(default_factory=list)
    plan_share: float = 1.0  # of successful visits, the share that had the chosen plan
    ok_visits: int = 0
    ambiguous: int = 0
    edges: dict[str, EdgePolicy] = field(default_factory=dict)


def infer(requests: list[Visit]) -> dict[str | None, ServiceGuess]:
    """Per service (and None: the request) what the visits show."""
    explicit = any(c.attempt for r in requests for c in _all_calls(r))
    visits: dict[str | None, list[Visit]] = defaultdict(list)
    for request in requests:
        _collect(request, visits)
    return {name: _guess(name, vs, explicit) for name, vs in visits.items()}


def _all_calls(visit: Visit):
    for call in visit.calls:
        yield call
        if call.visit is not None:
            yield from _all_calls(call.visit)


def _collect(visit: Visit, out: dict[str | None, list[Visit]]) -> None:
    out[visit.service].append(visit)
    for call in visit.calls:
        if call.visit is not None:
            _collect(call.visit, out)


def _guess(name: str | None, visits: list[Visit], explicit: bool) -> ServiceGuess:
    guess = ServiceGuess(name)
    shapes: list[tuple[Visit, Shape]] = []
    for visit in visits:
        if visit.error_type == "rejected":  # refused: never served
            guess.rejected += 1
            continue
        shape = shape_of(visit, explicit)
        guess.visits += 1
        guess.own_ms.append(own_ms(visit, shape))
        guess.queue_ms.append(visit.queue_ms)
        failed_below = any(item.failed() for step in shape.steps for item in step)
        if visit.error and not failed_below:
            guess.own_errors += 1
        if not visit.error and not failed_below:
            shapes.append((visit, shape))
        for step in shape.steps:
            for item in step:
                _edge_policy(guess.edges.setdefault(item.callee, EdgePolicy()), item)
    guess.ok_visits = len(shapes)
    if not shapes:
        return guess
    keys = Counter(_key(shape) for _v, shape in shapes)
    plan_key, count = keys.most_common(1)[0]
    guess.plan_share = count / len(shapes)
    chosen = [shape for _v, shape in shapes if _key(shape) == plan_key]
    guess.ambiguous = sum(shape.ambiguous for _v, shape in shapes)
    for i, callees in enumerate(plan_key):
        counts: Counter = Counter()
        required: Counter = Counter()
        for shape in chosen:
            per_callee = Counter(item.callee for item in shape.steps[i])
            counts.update(per_callee.values())
            required[(shape.required[i], len(shape.steps[i]))] += 1
        fanout = counts.most_common(1)[0][0]
        (k, n), _ = required.most_common(1)[0]
        if k == 0:  # it went on without any answer: optional (a deadline cut it, say)
            guess.steps.append(StepGuess(callees, fanout, counts, None, optional=True))
        else:
            guess.steps.append(StepGuess(callees, fanout, counts, k if k < n else None))
    guess.steps = _repeats(guess.steps)
    return guess


def _key(shape: Shape) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(sorted({item.callee for item in step})) for step in shape.steps)


def _edge_policy(edge: EdgePolicy, item: Logical) -> None:
    edge.logical_calls += 1
    retries = [a for a in item.attempts[1:] if a.attempt != "hedge"]  # unmarked: retries
    edge.retries_max = max(edge.retries_max, len(retries))
    hedges = [a for a in item.attempts if a.attempt == "hedge"]
    edge.hedges_max = max(edge.hedges_max, len(hedges))
    if hedges:
        edge.hedge_after_ms.append(hedges[0].start_ms - item.start_ms)
    for a in item.attempts:
        if a.error_type == "timeout" and a.given_up_ms is not None:
            edge.timed_out_after_ms.append(a.given_up_ms - a.start_ms)
    if retries:
        failed = _failed_at(item.attempts[0])
        if failed is not None:
            edge.first_retry_wait_ms.append(max(0.0, retries[0].start_ms - failed))


def _repeats(steps: list[StepGuess]) -> list[StepGuess]:
    """Consecutive identical steps as one step with ``repeat``."""
    out: list[StepGuess] = []
    for step in steps:
        last = out[-1] if out else None
        if (
            last is not None
            and last.callees == step.callees
            and last.fanout == step.fanout
            and last.require == step.require
            and last.optional == step.optional
        ):
            last.repeat += 1
            last.fanout_counts += step.fanout_counts
        else:
            out.append(step)
    return out


def arrival_rps(requests: list[Visit]) -> tuple[float, float]:
    """The arrival rate (per s) the requests' start times show, scaled up by their sampling
    ratio when the root spans give one; and that ratio."""
    starts = np.array([r.start_ms for r in requests])
    ratio = float(np.mean([r.sampling_ratio for r in requests])) if requests else 1.0
    if len(starts) < 2 or starts.max() <= starts.min():
        return 1.0, ratio
    rate = (len(starts) - 1) / ((starts.max() - starts.min()) / 1000.0)
    return rate / ratio, ratio


def median_or_none(values: list[float]) -> float | None:
    """The median of ``values``, None for none."""
    return float(median(values)) if values else None
