"""How calls flow: a call in flight, a step's fan-in, a flow of steps, a user request.

A :class:`Flow` runs a plan of steps on the event path; each step sends its calls (through
``Sim.send``, or a policy :class:`~.policies.Slot`) and a :class:`FanIn` counts their answers
until ``require`` is met or cannot be. Calls the flow stops waiting for are cancelled or
abandoned (``Sim.drop``). A :class:`Request` owns the top flow, its deadline and its one
outcome.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..scenario.model import Step
from .clock import timer
from .free import free_call, run_free
from .spans import PendingFree, request_done, traced_free_call, traced_run_free
from .tail import join

if TYPE_CHECKING:
    from .services import Svc
    from .sim import Sim

OK, PARTIAL, FAILED, REJECTED = 0, 1, 2, 3
OUTCOMES = ("ok", "partial", "failed", "rejected")
FIRST, RETRY, HEDGE = 0, 1, 2  # why an attempt was sent; its subtree's calls inherit it
QUEUED, ADMITTED, RUNNING, DONE, CANCELLED = 0, 1, 2, 3, 4  # a call's state
INF = float("inf")


class StepStats:
    """Window counters of one step of the scenario (its repeats share them)."""

    __slots__ = ("policy", "sent", "timeouts", "rejected", "circuit_open", "cancelled", "wasted")

    def __init__(self, policy: bool) -> None:
        self.policy = policy  # counted only for steps with calling-side policies
        self.sent = [0, 0, 0]  # attempts by kind: first tries, retries, hedges
        self.timeouts = self.rejected = self.circuit_open = self.cancelled = self.wasted = 0


@dataclass(frozen=True)
class RStep:
    """A compiled step: the services it calls (one entry per call), fan-in ``k`` of ``n``."""

    targets: tuple[tuple[Svc, int], ...]  # (service, shard index or -1 for the balancer)
    n: int
    k: int
    free: bool
    spec: Step
    name: str  # "request.steps.0", "services.api.steps.1"
    stats: StepStats
    policy: Any = None  # the step's shared policy state (policies.StepPolicy), if any


class Call:
    """One attempt in flight to a service on the event path."""

    __slots__ = (
        "svc", "inst", "rec", "t0", "parent", "kind", "state", "flow", "up", "abandoned",
        "event_mode", "step", "probe", "started", "served", "deadline", "trace", "answer_at",
        "own_ms", "path", "below", "policy_abandoned",
    )  # fmt: skip

    def __init__(self, svc, inst, rec, t0, parent, kind, up, event_mode, step, deadline):
        self.svc, self.inst, self.rec, self.t0, self.parent = svc, inst, rec, t0, parent
        self.kind, self.up, self.event_mode, self.step = kind, up, event_mode, step
        self.deadline = deadline  # its request's deadline, inherited by its downstream steps
        self.state = QUEUED
        self.flow: Flow | None = None
        self.abandoned = INF  # when its caller gave up on it (ms), if it did
        # ... if a policy did: a timeout, a hedge or retry race it lost, a deadline
        self.policy_abandoned = INF
        self.probe = False  # a circuit breaker's half-open probe
        self.started = 0.0  # when it was admitted (under an adaptive limit, maybe not served)
        self.served = 0.0  # when it took a worker
        self.answer_at = INF  # when it will answer (ms), once a worker took it, if known then
        self.own_ms = 0.0  # its own latency, its downstream steps excluded
        # its critical path (engine.tail), set when it has downstream steps; a call with
        # none builds it only when asked (critical_path): most calls decide no step
        self.path: tuple | None = None
        self.below: tuple | None = None  # its contention-free subtree's (free.run_free)
        # its contention-free subtree's window calls, evaluated at once on the event path:
        # (answered at ms, service, step), for the wasted count (Sim.serve_free_subtree)
        self.trace: list | None = None

    def critical_path(self) -> tuple:
        """Its critical path (engine.tail), once it answered."""
        if self.path is None:  # its queueing, its own latency, then a contention-free subtree
            queue_ms = self.served - self.t0
            mine = queue_ms + self.own_ms
            below = self.below
            if below is None or mine >= below[3]:
                self.path = (self.svc.index, mine, queue_ms, 0.0, 0.0, 0.0)
            else:
                self.path = (below[2], below[3], queue_ms, 0.0, 0.0, 0.0)
        return self.path

    def path_so_far(self, now: float) -> tuple | None:
        """Its critical path if it answered ``now`` (a deadline stops waiting for it): queued
        until now, or queued then running (its downstream included); None once answered."""
        if self.state >= DONE:
            return None
        if self.state == RUNNING:
            queue_ms = self.served - self.t0
        else:  # waiting for a worker (QUEUED, or ADMITTED under an adaptive limit)
            queue_ms = now - self.t0
        return (self.svc.index, now - self.t0, queue_ms, 0.0, 0.0, 0.0)

    def given_up(self, before_ms: float = INF) -> bool:
        """Whether this call or one of its ancestors was abandoned by its caller (before
        ``before_ms``). (Asked at every event-path call's end: kept apart from
        ``given_up_by_policy``, so that this walk tests one attribute a level.)"""
        call = self
        while call is not None:
            if call.abandoned < before_ms:
                return True
            call = call.up
        return False

    def given_up_by_policy(self, before_ms: float = INF) -> bool:
        """``given_up`` by a policy: a timeout, a lost hedge or retry race, a deadline (not
        a fan-in that had its answers or had failed): work its cost counts as wasted."""
        call = self
        while call is not None:
            if call.policy_abandoned < before_ms:
                return True
            call = call.up
        return False


class FanIn:
    """Counts a step's answers; tells its flow once ``require`` is met or cannot be. With
    ``max_parallel``, ``backlog`` holds the calls not yet sent: each answer sends the next."""

    __slots__ = ("need", "spare", "flow", "backlog", "chain")

    def __init__(self, need: int, spare: int, flow: Flow, backlog=None):
        self.need, self.spare, self.flow, self.backlog = need, spare, flow, backlog
        # the critical path of the answer that sends the next backlog call: what that call
        # waited for before it was sent (engine.tail)
        self.chain: tuple | None = None

    def answer(self, ok: bool, cause: int, _who=None) -> None:
        if self.flow is None:
            return  # decided already; late answers only count in their service's stats
        if ok:
            self.need -= 1
            if self.need == 0:
                flow, self.flow = self.flow, None
                flow.step_done(True, OK, _who)
                return
        else:
            self.spare -= 1
            if self.spare < 0:
                flow, self.flow = self.flow, None
                flow.step_done(False, cause, _who)
                return
        if self.backlog:  # still undecided: the next call goes (one decided sends none)
            svc, shard = self.backlog.popleft()
            self.chain = path_of(_who)
            self.flow.launch(svc, shard, self)


class Flow:
    """Runs a plan of steps on the event path; at its end answers ``up``, the call whose
    downstream steps these are, or (for a request, ``up`` None) calls ``done(ok, cause)``.

    ``kind`` is what its calls inherit, ``event_mode`` whether every call goes on the event
    path (so that it can be cancelled). ``items`` are the current step's calls or policy
    slots; ``path`` the critical path of its decided steps (engine.tail)."""

    __slots__ = ("sim", "segments", "i", "rec", "done", "up", "kind", "event_mode", "items",
                 "step", "cancelled", "partial", "deadline", "sending", "decided",
                 "path", "expired")  # fmt: skip

    def __init__(self, sim, segments, rec, done, up=None, kind=FIRST, event_mode=False,
                 deadline=INF):  # fmt: skip
        self.sim, self.segments, self.i, self.rec, self.done = sim, segments, 0, rec, done
        self.up, self.kind, self.event_mode = up, kind, event_mode
        self.items: list = []
        self.step: RStep | None = None
        self.cancelled = False
        self.partial = False  # an optional step went missing
        self.deadline = deadline  # the request's deadline (ms): no step waits past it
        self.sending = False  # launching the current step's calls (they all leave together)
        self.decided: tuple | None = None  # a decision that came while sending
        self.path: tuple | None = None  # the critical path of its decided steps
        self.expired = False  # its request's deadline passed: what it drops, a policy dropped

    def advance(self, _event=None) -> None:
        if self.cancelled:
            return
        segments, sim = self.segments, self.sim
        if self.i == len(segments):
            self._finish(True, OK)
            return
        free, steps = segments[self.i]
        self.i += 1
        if free:  # contention-free steps in a row: one timeout for all of them
            rec = self.rec
            if rec and rec is not True:  # a sampled request's (engine.spans)
                d, ok, top, top_ms = traced_run_free(steps, sim.env._now, rec)
            else:
                d, ok, top, top_ms = run_free(steps, sim.env._now, rec)
            self.path = join(self.path, (top, top_ms, 0.0, 0.0, 0.0, 0.0))
            timer(self.advance if ok else self._fail, sim.env, d)
            return
        step = self.step = steps
        self.items = []
        targets = step.targets
        if step.n == 1 and step.policy is None and not targets[0][0].free:
            # the common case, inlined: one plain call to a contended service
            svc, shard = targets[0]
            self.items.append(sim.send(svc, shard, self.rec, self, self.kind, self.up,
                                       self.event_mode, step, self.deadline))  # fmt: skip
            if self.deadline < INF:
                self._arm_deadline()
            return
        limit = step.spec.max_parallel
        if step.n == 1:
            fanin = self
        elif limit and limit < step.n:
            fanin = FanIn(step.k, step.n - step.k, self, deque(targets[limit:]))
            targets = targets[:limit]
        else:
            fanin = FanIn(step.k, step.n - step.k, self)
        self.sending = True
        for svc, shard in targets:
            self.launch(svc, shard, fanin)
        self.sending = False
        if self.decided is not None:  # decided while sending (a call refused at once)
            decided, self.decided = self.decided, None
            self.step_done(*decided)
            return
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        """Under a request deadline, stop waiting for the current step when it comes."""
        if self.deadline < INF and not self.cancelled:
            env = self.sim.env
            timer(self._past_deadline, env, max(0.0, self.deadline - env._now), self.i)

    def _past_deadline(self, event) -> None:
        """The request's deadline: stop waiting for this step (if it is still the current one)."""
        if not self.cancelled and self.i == event._value:
            self.expired = True
            self.step_done(False, FAILED, self.pending_path())

    def pending_path(self) -> tuple | None:
        """The critical path of the current step so far, when a deadline stops waiting for
        it: its first call (or policy slot) still unanswered, as if it answered now."""
        now = self.sim.env._now
        for item in self.items:
            path = item.path_so_far(now)
            if path is not None:
                return path
        return None

    def launch(self, svc: Svc, shard: int, fanin) -> None:
        """Send one of the current step's calls."""
        sim, step, items = self.sim, self.step, self.items  # this step's, even if it is
        assert step is not None  # decided (and the flow moves on) while the call is sent
        if step.policy is not None:
            items.append(step.policy.slot(self, svc, shard, fanin))
        elif svc.free and not self.event_mode:
            rec = self.rec
            if rec and rec is not True:  # a sampled request's (engine.spans)
                d, ok, top, top_ms, span = traced_free_call(svc, sim.env._now, rec, step)
                items.append(PendingFree(span, sim.env))  # marked if the step stops waiting
            else:
                d, ok, top, top_ms = free_call(svc, sim.env._now, rec)
            path = (top, top_ms, 0.0, 0.0, 0.0, 0.0)
            timer(lambda e, f=fanin, p=path: f.answer(e._value, FAILED, p), sim.env, d, ok)
        else:
            call = sim.send(svc, shard, self.rec, fanin, self.kind, self.up, self.event_mode, step,
                            self.deadline)  # fmt: skip
            items.append(call)

    def _fail(self, _event) -> None:
        self._finish(False, FAILED)

    def _finish(self, ok: bool, cause: int) -> None:
        """End the flow once: later answers, timers and deadlines find it closed. A call's
        downstream flow answers the call (``Sim.end``), a request's flow the request."""
        if not self.cancelled:
            self.cancelled = True
            if self.up is not None:
                self.sim.end(self.up, ok, cause)
            else:
                self.done(ok, cause)

    def step_done(self, ok: bool, cause: int, who=None) -> None:
        """The current step is decided (by ``who``: the call or policy slot whose answer
        decided it, or a contention-free answer's path): drop its other calls, then go on or
        fail. (Also the answer of a one-call step, which has no fan-in to count: ``answer``.)"""
        if self.cancelled:
            return
        if self.sending:
            self.decided = (ok, cause, who)  # act once every call of the step has been sent
            return
        if who is not None:
            self.path = join(self.path, path_of(who))
        step, items = self.step, self.items
        self.items = []
        # the others are losers: a one-call step's call decided it, unless a contention-free
        # call (not an item) or a deadline did
        if len(items) > 1 or (items and (not ok or items[0] is not who)):
            cancel = step is not None and step.spec.cancel_losers
            for item in reversed(items):  # the last sent first: a freed worker takes no loser
                self.sim.drop(item, cancel, self.expired)
        if ok:
            self.advance()
        elif step is not None and step.spec.optional:
            self.partial = True  # carry on without it
            self.advance()
        else:
            self._finish(False, cause)

    answer = step_done

    def cancel(self, cancel_calls: bool = True, policy: bool = False) -> None:
        """Stop: no further step starts; the current step's calls are cancelled (or, with
        ``cancel_calls`` False, abandoned to run on; ``policy``: by a deadline)."""
        self.cancelled = True
        items, self.items = self.items, []
        for item in reversed(items):  # the last sent first: a freed worker takes no loser
            self.sim.drop(item, cancel_calls, policy)

    def only_optional_left(self) -> bool:
        """Whether the current step and every later one are optional (in event mode)."""
        steps = [self.step] if self.step is not None else []
        steps += [step for _free, step in self.segments[self.i :]]
        return all(step.spec.optional for step in steps)


class Request:
    """A user request: its flow of steps, its deadline, and its one outcome."""

    __slots__ = ("sim", "t0", "flow", "finished")

    def __init__(self, sim: Sim, t0: float, rec: bool, segments: tuple, deadline_ms):
        self.sim, self.t0, self.finished = sim, t0, False
        if deadline_ms is None:
            self.flow = Flow(sim, segments, rec, self.done)
        else:  # every call on the event path, so that the deadline can stop it
            self.flow = Flow(sim, segments, rec, self.done, None, FIRST, True, t0 + deadline_ms)

    def done(self, ok: bool, cause: int) -> None:
        if self.finished:
            return
        self.finished = True
        sim = self.sim
        sim.outstanding -= 1
        outcome = (PARTIAL if self.flow.partial else OK) if ok else cause
        latency_ms = sim.env._now - self.t0
        sim.record(self.t0, latency_ms, outcome)
        rec = self.flow.rec
        if rec and latency_ms >= sim.tail.floor:
            sim.tail.offer(latency_ms, self.flow.path)
        if rec and rec is not True:  # a sampled request (engine.spans)
            request_done(rec, sim.env._now, OUTCOMES[outcome])
        self.flow = None  # no request <-> flow cycle left for the garbage collector

    def deadline(self, _event) -> None:
        """The deadline: the user gets what has arrived. Missing only optional steps is a
        partial answer; a missing required step fails the request."""
        if self.finished:
            return
        flow = self.flow
        ok = flow.only_optional_left()
        flow.partial = True
        pending = flow.pending_path()  # the step cut short counts, as far as it got
        if pending is not None:
            flow.path = join(flow.path, pending)
        step = flow.step
        flow.cancel(cancel_calls=step is not None and step.spec.cancel_losers, policy=True)
        self.done(ok, FAILED)


class OneCallRequests:
    """Answers requests whose whole plan is one call to a contended service, with no policy
    and no deadline (the shape of M/M/c and M/G/1): the call is sent when its request arrives
    and answers the request directly, with no ``Flow`` or request object in between. The
    outcome is the one a flow would give: ok, partial when an optional call is missing, else
    the call's cause."""

    __slots__ = ("sim", "optional")

    def __init__(self, sim: Sim, optional: bool):
        self.sim, self.optional = sim, optional

    def answer(self, ok: bool, cause: int, call: Call) -> None:
        sim = self.sim
        sim.outstanding -= 1
        outcome = OK if ok else PARTIAL if self.optional else cause
        latency_ms = sim.env._now - call.t0
        sim.record(call.t0, latency_ms, outcome)
        rec = call.rec
        if rec and latency_ms >= sim.tail.floor:
            sim.tail.offer(latency_ms, call.critical_path())
        if rec and rec is not True:  # a sampled request (engine.spans)
            request_done(rec, sim.env._now, OUTCOMES[outcome])


def path_of(who) -> tuple | None:
    """The critical path an answer brings: a contention-free answer's is the tuple itself, a
    call's or policy slot's its ``critical_path()``."""
    if who is None or who.__class__ is tuple:
        return who
    return who.critical_path()


def plan_event_segments(plan: tuple[RStep, ...]) -> tuple:
    """Every step as its own event-path item (so that each call can be stopped)."""
    return tuple((False, step) for step in plan)


def plan_segments(plan: tuple[RStep, ...]) -> tuple:
    """Group a plan into (True, free steps) runs and (False, contended step) items."""
    out: list = []
    for step in plan:
        if step.free and out and out[-1][0]:
            out[-1] = (True, out[-1][1] + (step,))
        elif step.free:
            out.append((True, (step,)))
        else:
            out.append((False, step))
    return tuple(out)
