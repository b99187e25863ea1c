"""One replication of a scenario on SimPy. Simulated time is in milliseconds.

How a request flows (SPEC §1): it runs its steps in order; a step sends its calls in parallel and
its fan-in waits for ``require`` answers; a service holds a worker for the whole call (its own
latency, then its own steps). Two paths carry a call:

* **Contention-free** (the service and everything below it have unlimited workers): nothing it
  does depends on other requests, so the call's whole subtree is evaluated at once from
  batch-sampled latencies, and the caller waits for it with a single SimPy timeout (or none,
  when the caller is contention-free too). This is exact, not an approximation: an
  infinite-server station has no interaction between calls.
* **Contended** (``workers`` set): a FIFO pool per instance with an optional ``queue_limit``;
  arrivals, service completions and downstream steps are callbacks on bare SimPy timeouts,
  with no process per call.

When ``require`` is met the step goes on; its other calls keep running and keep their workers.
A call that errs (``error_rate``) fails after its own latency and makes no downstream calls; a
required step that fails fails its caller, carrying the cause (``error`` or ``rejected``) up.
"""

from __future__ import annotations

import zlib
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy
from simpy.events import Timeout

from .arrivals import arrival_times_s
from .model import Scenario, Step

OK, PARTIAL, FAILED, REJECTED = 0, 1, 2, 3
OUTCOMES = ("ok", "partial", "failed", "rejected")
FIRST, RETRY, HEDGE = 0, 1, 2  # why an attempt was sent; its subtree's calls inherit it
KINDS = ("first_tries", "retries", "hedges")
QUEUED, ADMITTED, RUNNING, DONE, CANCELLED = 0, 1, 2, 3, 4  # a call's state
_BATCH = 8192
INF = float("inf")


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


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random(n)


def _bump(counts: list[int], i: int) -> None:
    """counts[i] += 1 past the end of the list: a run that drains beyond its planned horizon."""
    counts.extend([0] * (i + 1 - len(counts) + 64))
    counts[i] += 1


class Instance:
    """One instance of a contended service. ``cap`` calls are admitted at once (``workers``,
    or an adaptive ``limit``); the rest wait in ``queue``. With both a limit and ``workers``,
    admitted calls wait in ``inner`` for one of the ``workers``."""

    __slots__ = ("busy", "queue", "cap", "limit", "workers", "serving", "inner")

    def __init__(self, cap: float, limit=None, workers: float = float("inf")) -> None:
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
                Instance(limit, Limit(spec.concurrency), workers) for _ in range(spec.instances)
            ]
        else:
            limit = 0.0
            self.instances = [Instance(workers) for _ in range(spec.instances)]
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
        # measured-window counters (every window call answered records its latency)
        self.rejected = 0
        self.errors = 0
        self.cancelled = 0
        self.wasted = 0  # calls answered after their caller (or an ancestor's) gave up
        self.timeouts = 0
        self.circuit_open = 0  # attempts refused by an open breaker, never sent
        self.sent = [0, 0, 0]  # attempts policy steps sent here, by their own kind
        self.ops_by_kind = [0, 0, 0]  # answered leaf calls by kind (event path)
        self.latency_ms = array("f")  # float32: 4 bytes a call, precision ~1e-7 relative
        # whole-run time series
        self.started_per_s = [0] * horizon_s
        self.busy = 0
        self.queued = 0
        self.busy_area = 0.0  # worker-ms
        self.queue_area = 0.0  # call-ms
        self.limit_area = 0.0  # limit-ms: the adaptive limits x time
        self.t_last = 0.0

    @property
    def calls(self) -> int:
        """Window calls sent to this service: answered (each left a latency), rejected, and
        cancelled."""
        return len(self.latency_ms) + self.rejected + self.cancelled

    def account(self, now: float) -> None:
        """Accumulate busy-worker and queue-length areas up to ``now``."""
        dt = now - self.t_last
        if dt:
            self.busy_area += self.busy * dt
            self.queue_area += self.queued * dt
            if self.adaptive:  # integrate the moving limits (fixed capacity: see areas())
                self.limit_area += self.limit_total * dt
            self.t_last = now

    def areas(self, now: float) -> tuple[float, float, float, float]:
        """Busy, queue, capacity (workers, or with only an adaptive limit the limits) and limit
        areas up to ``now``, in unit-ms."""
        self.account(now)
        cap = self.fixed_cap * now if self.fixed_cap is not None else self.limit_area
        return self.busy_area, self.queue_area, cap, self.limit_area

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
        "event_mode", "step", "probe", "started", "deadline",
    )  # fmt: skip

    def __init__(self, svc, inst, rec, t0, parent, kind, up, event_mode, step):
        self.svc, self.inst, self.rec, self.t0, self.parent = svc, inst, rec, t0, parent
        self.kind, self.up, self.event_mode, self.step = kind, up, event_mode, step
        self.state = QUEUED
        self.flow: Flow | None = None
        self.abandoned = False
        self.probe = False  # a circuit breaker's half-open probe
        self.started = 0.0  # when it took a worker
        self.deadline = INF  # its request's deadline, inherited by its downstream steps

    def given_up(self) -> bool:
        """Whether this call or one of its ancestors was abandoned by its caller."""
        call = self
        while call is not None:
            if call.abandoned:
                return True
            call = call.up
        return False


class FanIn:
    """Counts a step's answers; tells its flow once ``require`` is met or cannot be. With
    ``max_parallel``, ``backlog`` holds the calls not yet sent: each answer sends the next."""

    __slots__ = ("need", "spare", "flow", "backlog")

    def __init__(self, need: int, spare: int, flow: Flow, backlog=None):
        self.need, self.spare, self.flow, self.backlog = need, spare, flow, backlog

    def answer(self, ok: bool, cause: int, _who=None) -> None:
        if self.flow is None:
            return  # decided already; late answers only count in their service's stats
        if self.backlog:
            svc, shard = self.backlog.popleft()
            self.flow.launch(svc, shard, self)
            if self.flow is None:
                return  # the launched call was rejected at once and decided the step
        if ok:
            self.need -= 1
            if self.need == 0:
                flow, self.flow = self.flow, None
                flow.step_done(True, OK)
        else:
            self.spare -= 1
            if self.spare < 0:
                flow, self.flow = self.flow, None
                flow.step_done(False, cause)


class Flow:
    """Runs a plan of steps on the event path; calls ``done(ok, cause)`` at its end.

    ``up`` is the call whose downstream steps these are (None for a request), ``kind`` what
    its calls inherit, ``event_mode`` whether every call goes on the event path (so that it
    can be cancelled). ``items`` are the current step's calls or policy slots."""

    __slots__ = ("sim", "segments", "i", "rec", "done", "up", "kind", "event_mode", "items",
                 "step", "cancelled", "partial", "deadline")  # fmt: skip

    def __init__(self, sim, segments, rec, done, up=None, kind=FIRST, event_mode=False,
                 deadline=INF):  # fmt: skip
        self.sim, self.segments, self.i, self.rec, self.done = sim, segments, 0, rec, done
        self.up, self.kind, self.event_mode = up, kind, event_mode
        self.items: list = []
        self.step: RStep | None = None
        self.cancelled = False
        self.partial = False  # an optional step went missing
        self.deadline = deadline  # the request's deadline (ms): no step waits past it

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
            d, ok = sim.run_free(steps, sim.env.now, self.rec)
            ev = Timeout(sim.env, d)
            ev.callbacks.append(self.advance if ok else self._fail)
            return
        step = self.step = steps
        self.items = []
        targets = step.targets
        limit = step.spec.max_parallel
        if step.n == 1:
            fanin = self
        elif limit and limit < step.n:
            fanin = FanIn(step.k, step.n - step.k, self, deque(targets[limit:]))
            targets = targets[:limit]
        else:
            fanin = FanIn(step.k, step.n - step.k, self)
        for svc, shard in targets:
            self.launch(svc, shard, fanin)
        if self.deadline < INF and not self.cancelled:
            ev = Timeout(sim.env, max(0.0, self.deadline - sim.env.now), self.i)
            ev.callbacks.append(self._past_deadline)

    def _past_deadline(self, event) -> None:
        """The request's deadline: stop waiting for this step (if it is still the current one)."""
        if not self.cancelled and self.i == event._value:
            self.step_done(False, FAILED)

    def launch(self, svc: Svc, shard: int, fanin) -> None:
        """Send one of the current step's calls."""
        sim, step = self.sim, self.step
        assert step is not None
        if step.policy is not None:
            self.items.append(step.policy.slot(self, svc, shard, fanin))
        elif svc.free and not self.event_mode:
            d, ok = sim.free_call(svc, sim.env.now, self.rec)
            ev = Timeout(sim.env, d, ok)
            ev.callbacks.append(lambda e, f=fanin: f.answer(e._value, FAILED))
        else:
            call = sim.send(svc, shard, self.rec, fanin, self.kind, self.up, self.event_mode, step,
                            self.deadline)  # fmt: skip
            self.items.append(call)

    def _fail(self, _event) -> None:
        self._finish(False, FAILED)

    def _finish(self, ok: bool, cause: int) -> None:
        """End the flow once: later answers, timers and deadlines find it closed."""
        if not self.cancelled:
            self.cancelled = True
            self.done(ok, cause)

    def answer(self, ok: bool, cause: int, _who=None) -> None:
        """The answer of a one-call step (no fan-in to count)."""
        self.step_done(ok, cause)

    def step_done(self, ok: bool, cause: int) -> None:
        """The current step is decided: drop its other calls, then go on or fail."""
        if self.cancelled:
            return
        step, items = self.step, self.items
        self.items = []
        if len(items) > 1 or (items and not ok):
            cancel = step is not None and step.spec.cancel_losers
            for item in items:
                self.sim.drop(item, cancel)
        if ok:
            self.advance()
        elif step is not None and step.spec.optional:
            self.partial = True  # carry on without it
            self.advance()
        else:
            self._finish(False, cause)

    def cancel(self, cancel_calls: bool = True) -> None:
        """Stop: no further step starts; the current step's calls are cancelled (or, with
        ``cancel_calls`` False, abandoned to run on)."""
        self.cancelled = True
        items, self.items = self.items, []
        for item in items:
            self.sim.drop(item, cancel_calls)

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
        sim._record(self.t0, sim.env.now - self.t0, outcome)

    def deadline(self, _event) -> None:
        """The deadline: the user gets what has arrived. Missing only optional steps is a
        partial answer; a missing required step fails the request."""
        if self.finished:
            return
        flow = self.flow
        ok = flow.only_optional_left()
        flow.partial = True
        step = flow.step
        flow.cancel(cancel_calls=step is not None and step.spec.cancel_losers)
        self.done(ok, FAILED)


def _segments(plan: tuple[RStep, ...]) -> tuple:
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


class Sim:
    """One replication: build with a scenario and seed, then :meth:`run`."""

    def __init__(self, scenario: Scenario, seed: int):
        self.scenario = scenario
        self.env = simpy.Environment()
        self.warmup_ms = scenario.warmup_s * 1000.0
        self.end_ms = (scenario.warmup_s + scenario.duration_s) * 1000.0
        horizon_s = int(scenario.warmup_s + scenario.duration_s) + 2
        # One stream per purpose, keyed by name, so adding a service shifts no other stream.
        self.svcs = {
            name: Svc(name, spec, _rng(seed, 1, zlib.crc32(name.encode())), horizon_s)
            for name, spec in scenario.services.items()
        }
        self.arrivals_ms = (
            arrival_times_s(scenario.workload, self.end_ms / 1000.0, _rng(seed, 0)) * 1000.0
        )
        for svc in self.svcs.values():
            svc.free = self._is_free(svc.name)
        self.steps: dict[str, StepStats] = {}
        self.policy_rng = _rng(seed, 2)
        self.plan = self._compile(scenario.request.steps, "request")
        for svc in self.svcs.values():
            svc.plan = self._compile(svc.spec.steps, f"services.{svc.name}")
            svc.segments = _segments(svc.plan)
            svc.event_segments = tuple((False, step) for step in svc.plan)
        self.deadline_ms = scenario.request.deadline_ms
        if scenario.request.deadline_ms is None:
            self.segments = _segments(self.plan)
        else:  # every call on the event path, so that the deadline can stop it
            self.segments = tuple((False, step) for step in self.plan)
        self.root_free = scenario.request.deadline_ms is None and all(s.free for s in self.plan)
        self.contended = [s for s in self.svcs.values() if not s.free]
        # per request, whole run (the window is cut at the end)
        self.req_t0 = array("d")
        self.req_ms = array("d")
        self.req_outcome = array("b")
        self.outstanding = 0
        self.snapshots: list[tuple[float, list[tuple[float, float]]]] = []
        self.edges: list[list[tuple[float, float]]] = []  # areas at the window's start and end

    def _is_free(self, name: str) -> bool:
        spec = self.scenario.services[name]
        return (
            spec.workers is None
            and spec.concurrency is None
            and all(
                not step.has_policies and self._is_free(c)
                for step in spec.steps
                for c in step.callees
            )
        )

    def _compile(self, steps: list[Step], owner: str) -> tuple[RStep, ...]:
        from .policies import StepPolicy

        out = []
        for index, step in enumerate(steps):
            targets: list[tuple[Svc, int]] = []
            for name in step.callees:
                svc = self.svcs[name]
                if step.fanout == "shards":
                    targets += [(svc, i) for i in range(len(svc.instances))]
                else:
                    targets += [(svc, -1)] * step.fanout
            n = len(targets)
            k = self.scenario.required(step)
            free = not step.has_policies and all(svc.free for svc, _ in targets)
            name = f"{owner}.steps.{index}"
            stats = StepStats(step.has_policies)
            self.steps[name] = stats
            policy = StepPolicy(self, step, stats) if step.has_policies else None
            rstep = RStep(tuple(targets), n, k, free, step, name, stats, policy)
            out += [rstep] * step.repeat
        return tuple(out)

    # ---- contention-free path: a call's whole subtree, evaluated at once -------------------

    def free_call(self, svc: Svc, t: float, rec: bool) -> tuple[float, bool]:
        """Duration (ms) and success of a call to a contention-free service started at ``t``."""
        d = svc.draw()
        try:
            svc.started_per_s[int(t * 0.001)] += 1
        except IndexError:
            _bump(svc.started_per_s, int(t * 0.001))
        if svc.error_rate and svc.draw_u() < svc.error_rate:
            ok = False
        elif svc.plan:
            sub, ok = self.run_free(svc.plan, t + d, rec)
            d += sub
        else:
            ok = True
        if rec:
            svc.latency_ms.append(d)
            if not ok:
                svc.errors += 1
        return d, ok

    def run_free(self, steps: tuple[RStep, ...], t: float, rec: bool) -> tuple[float, bool]:
        """Run contention-free steps in sequence from ``t``: total duration (ms) and success."""
        total = 0.0
        for step in steps:
            if step.n == 1:
                d, ok = self.free_call(step.targets[0][0], t + total, rec)
            else:
                start = t + total
                answers = [self.free_call(svc, start, rec) for svc, _ in step.targets]
                d, ok = _fan_in(answers, step.k, step.n)
            total += d
            if not ok:
                return total, False
        return total, True

    # ---- event path: FIFO worker pools, callbacks on timeouts ------------------------------

    def send(self, svc, shard, rec, parent, kind=FIRST, up=None, event_mode=False, step=None,
             deadline=INF):  # fmt: skip
        """A call arrives at a service: start, queue, or reject it. Returns the Call; a
        rejection is answered to ``parent`` before this returns."""
        inst = svc.instances[shard] if shard >= 0 else svc.pick()
        now = self.env.now
        call = Call(svc, inst, rec, now, parent, kind, up, event_mode, step)
        call.deadline = deadline
        if inst.busy < inst.cap:
            self._start(call)
        elif len(inst.queue) < svc.queue_limit:
            svc.account(now)
            svc.queued += 1
            inst.queue.append(call)
        else:
            call.state = DONE
            if rec:
                svc.rejected += 1
                if step is not None:
                    step.stats.rejected += 1
            parent.answer(False, REJECTED, call)
        return call

    def _start(self, call: Call) -> None:
        """Admit a call: serve it, or (limit in front of workers) queue it for a worker."""
        inst, now = call.inst, self.env.now
        inst.busy += 1
        call.started = now
        if inst.serving < inst.workers:
            self._serve(call)
        else:
            call.svc.account(now)
            call.svc.queued += 1
            call.state = ADMITTED
            inst.inner.append(call)

    def _serve(self, call: Call) -> None:
        """A worker takes the call: its own latency, then its downstream steps."""
        svc, now = call.svc, self.env.now
        svc.account(now)
        svc.busy += 1
        call.inst.serving += 1
        call.state = RUNNING
        try:
            svc.started_per_s[int(now * 0.001)] += 1
        except IndexError:
            _bump(svc.started_per_s, int(now * 0.001))
        d = svc.draw()
        if svc.error_rate and svc.draw_u() < svc.error_rate:
            ev = Timeout(self.env, d, call)
            ev.callbacks.append(self._failed)
        elif not svc.segments:
            ev = Timeout(self.env, d, call)
            ev.callbacks.append(self._succeeded)
        elif not call.event_mode and len(svc.segments) == 1 and svc.segments[0][0]:
            sub, ok = self.run_free(svc.plan, now + d, call.rec)  # all downstream free
            ev = Timeout(self.env, d + sub, call)
            ev.callbacks.append(self._succeeded if ok else self._failed)
        else:
            segments = svc.event_segments if call.event_mode else svc.segments
            flow = Flow(self, segments, call.rec, lambda ok, cause: self._end(call, ok, cause),
                        call, call.kind, call.event_mode, call.deadline)  # fmt: skip
            call.flow = flow
            ev = Timeout(self.env, d)
            ev.callbacks.append(flow.advance)

    def _succeeded(self, event) -> None:
        self._end(event._value, True, OK)

    def _failed(self, event) -> None:
        self._end(event._value, False, FAILED)

    def _release(self, call: Call, dropped: bool = False) -> None:
        """Free the call's worker (an adaptive limit learns from the call); queued calls take
        the free places."""
        svc, inst, now = call.svc, call.inst, self.env.now
        svc.account(now)
        if call.state == RUNNING:  # it held a worker: the next admitted call takes it
            inst.serving -= 1
            svc.busy -= 1
            if inst.inner:
                svc.queued -= 1
                self._serve(inst.inner.popleft())
        else:  # admitted, still waiting for a worker
            inst.inner.remove(call)
            svc.queued -= 1
        inst.busy -= 1
        if inst.limit is not None:
            old = inst.cap
            inst.cap = inst.limit.update(now - call.started, dropped, inst.busy + 1)
            svc.limit_total += inst.cap - old
        while inst.queue and inst.busy < inst.cap:
            svc.queued -= 1
            self._start(inst.queue.popleft())

    def _end(self, call: Call, ok: bool, cause: int) -> None:
        """The call answers: free its worker, record it, tell the caller."""
        if call.state == CANCELLED:
            return
        self._release(call)
        call.state = DONE
        if call.rec:
            svc = call.svc
            svc.latency_ms.append(self.env.now - call.t0)
            if not ok:
                svc.errors += 1
            if svc.leaf and call.event_mode:
                svc.ops_by_kind[call.kind] += 1
            if call.event_mode and call.given_up():
                svc.wasted += 1
                if call.step is not None:
                    call.step.stats.wasted += 1
        call.parent.answer(ok, cause, call)

    def cancel(self, call: Call) -> None:
        """Cancel a call: out of its queue, or its worker freed at once and its downstream
        steps cancelled (no further calls)."""
        if call.state == QUEUED:
            call.svc.account(self.env.now)
            call.inst.queue.remove(call)
            call.svc.queued -= 1
        elif call.state in (ADMITTED, RUNNING):
            self._release(call, dropped=True)
            if call.flow is not None:
                call.flow.cancel()
        else:
            return
        call.state = CANCELLED
        if call.rec:
            call.svc.cancelled += 1
            if call.step is not None:
                call.step.stats.cancelled += 1

    def drop(self, item, cancel: bool) -> None:
        """The caller no longer waits for ``item`` (a Call or a policy slot): cancel it, or
        let it run on, abandoned (its work is then wasted)."""
        if isinstance(item, Call):
            if item.state in (QUEUED, ADMITTED, RUNNING):
                if cancel:
                    self.cancel(item)
                else:
                    item.abandoned = True
        else:
            item.drop(cancel)

    # ---- requests --------------------------------------------------------------------------

    def _arrive(self, event) -> None:
        i = event._value
        times = self.arrivals_ms
        if i + 1 < len(times):
            ev = Timeout(self.env, times[i + 1] - times[i], i + 1)
            ev.callbacks.append(self._arrive)
        t0 = self.env.now
        rec = self.warmup_ms <= t0 < self.end_ms
        if self.root_free:
            d, ok = self.run_free(self.plan, t0, rec)
            self._record(t0, d, OK if ok else FAILED)
            return
        self.outstanding += 1
        deadline = self.deadline_ms
        request = Request(self, t0, rec, self.segments, deadline)
        if deadline is not None:
            ev = Timeout(self.env, deadline)
            ev.callbacks.append(request.deadline)
        request.flow.advance()

    def _record(self, t0: float, latency_ms: float, outcome: int) -> None:
        self.req_t0.append(t0)
        self.req_ms.append(latency_ms)
        self.req_outcome.append(outcome)

    def _sample_queues(self, event) -> None:
        """Snapshot busy and queue areas of contended services (each second and window edge)."""
        now = self.env.now
        self.snapshots.append((now, [s.areas(now) for s in self.contended]))
        after = now >= self.end_ms and not self.outstanding
        if not (after and not any(s.busy or s.queued for s in self.contended)):
            nxt = Timeout(self.env, 1000.0)
            nxt.callbacks.append(self._sample_queues)

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        """Simulate to the end of the window, then drain: every window request gets answered."""
        env = self.env
        if len(self.arrivals_ms):
            ev = Timeout(env, self.arrivals_ms[0], 0)
            ev.callbacks.append(self._arrive)
        if self.contended:
            self._sample_queues(None)
            for edge in (self.warmup_ms, self.end_ms):
                ev = Timeout(env, edge)
                ev.callbacks.append(self._window_edge)
        chunks = 50 if progress else 1
        for j in range(1, chunks + 1):
            env.run(until=self.end_ms * j / chunks)
            if progress:
                progress(j / chunks)
        env.run()

    def _window_edge(self, event) -> None:
        now = self.env.now
        self.edges.append([s.areas(now) for s in self.contended])


def _fan_in(answers: list[tuple[float, bool]], k: int, n: int) -> tuple[float, bool]:
    """When a fan-in of ``n`` answers needing ``k`` is decided, and whether it succeeded."""
    if k == n:  # all required: the slowest, or the first failure
        worst, first_fail = 0.0, None
        for d, ok in answers:
            if ok:
                if d > worst:
                    worst = d
            elif first_fail is None or d < first_fail:
                first_fail = d
        return (worst, True) if first_fail is None else (first_fail, False)
    need, spare = k, n - k
    for d, ok in sorted(answers):
        if ok:
            need -= 1
            if need == 0:
                return d, True
        else:
            spare -= 1
            if spare < 0:
                return d, False
    raise AssertionError("fan-in undecided")  # unreachable: n answers decide k of n


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))
