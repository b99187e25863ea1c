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
from collections.abc import Callable

import numpy as np
import simpy

from ..scenario.arrivals import arrival_times_s
from ..scenario.model import Scenario, Step
from . import batch
from .clock import timer
from .flows import (
    ADMITTED,
    CANCELLED,
    DONE,
    FAILED,
    FIRST,
    INF,
    OK,
    QUEUED,
    REJECTED,
    RUNNING,
    Call,
    Flow,
    OneCallRequests,
    Request,
    RStep,
    StepStats,
    plan_event_segments,
    plan_segments,
)
from .free import no_losers, run_free
from .histograms import LatencyHistogram, StreamingRequests
from .policies import StepPolicy
from .services import Svc, bump
from .slowness import Slowness
from .spans import SpanRecorder, call_ended, request_done, traced_run_free
from .tail import Tail, above, leaf


class Sim:
    """One replication: build with a scenario and seed, then :meth:`run`."""

    def __init__(self, scenario: Scenario, seed: int, trace_sample: int = 0):
        """``trace_sample``: record the spans of that many window requests, chosen uniformly
        (engine.spans; ``self.spans``)."""
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
        arrivals_ms = arrival_times_s(scenario.workload, self.end_ms / 1000.0, _rng(seed, 0))
        # The event path reads arrival times one by one, as Python floats: a numpy scalar
        # would become the clock, and every sum and difference of times would then cost
        # numpy's scalar overhead. numpy blocks see the same memory as an array.
        self.arrival_times = array("d", np.asarray(arrivals_ms * 1000.0, dtype=float).tobytes())
        self.arrivals_ms = np.frombuffer(self.arrival_times, dtype=float)
        in_window = (self.arrivals_ms >= self.warmup_ms) & (self.arrivals_ms < self.end_ms)
        self.tail = Tail(int(np.count_nonzero(in_window)))  # the slowest requests' paths
        self.spans: SpanRecorder | None = None
        if trace_sample > 0:  # its own stream: sampling changes no other draw
            window = np.flatnonzero(in_window)
            self.spans = SpanRecorder(window, trace_sample, _rng(seed, 4))
        for index, svc in enumerate(self.svcs.values()):
            svc.index = index  # how paths (engine.tail) name it
            if svc.spec.slow_periods is not None or svc.spec.pauses is not None:
                rng = _rng(seed, 3, zlib.crc32(svc.name.encode()))  # its own stream
                svc.slowness = Slowness(svc.spec, self.end_ms, rng)
        for svc in self.svcs.values():
            svc.free = self._is_free(svc.name)
        self.steps: dict[str, StepStats] = {}
        self.policy_rng = _rng(seed, 2)
        self.plan = self._compile(scenario.request.steps, "request")
        for svc in self.svcs.values():
            svc.plan = self._compile(svc.spec.steps, f"services.{svc.name}")
            svc.segments = plan_segments(svc.plan)
            svc.event_segments = plan_event_segments(svc.plan)
        # Without cancellation or a deadline, no call's downstream is ever stopped: an
        # event-path call's contention-free subtree can then be evaluated at once, when it has
        # no losers (every step needs all its answers, no errors) whose waste would need timing.
        stoppable = scenario.request.deadline_ms is not None or any(
            step.cancel_losers
            for steps in [scenario.request.steps] + [s.steps for s in scenario.services.values()]
            for step in steps
        )
        for svc in self.svcs.values():
            svc.free_below = len(svc.segments) == 1 and svc.segments[0][0]
            svc.free_below_events = svc.free_below and not stoppable and no_losers(svc.plan)
        self.deadline_ms = scenario.request.deadline_ms
        if self.deadline_ms is None:
            self.segments = plan_segments(self.plan)
        else:  # every call on the event path, so that the deadline can stop it
            self.segments = plan_event_segments(self.plan)
        self.root_free = self.deadline_ms is None and all(s.free for s in self.plan)
        self.one_call = self._one_call_step()
        if self.one_call is not None:
            self.one_call_requests = OneCallRequests(self, self.one_call.spec.optional)
        self.contended = [s for s in self.svcs.values() if not s.free]
        # per request, whole run (the window is cut at the end)
        self.req_t0 = array("d")
        self.req_ms = array("d")
        self.req_outcome = array("b")
        self.outstanding = 0
        self.last_release_ms = 0.0  # when a worker was last freed (ms)
        self.snapshots: list[tuple[float, list[tuple[float, float]]]] = []
        self.edges: list[list[tuple[float, float]]] = []  # areas at the window's start and end
        self.queue_time_edges: list[list[list[float]]] = []  # Svc.queue_time at the same times
        # percentiles: streaming (engine.histograms): the per-call and per-request buffers
        # are emptied into histograms and per-second aggregates every simulated second
        self.streaming = scenario.percentiles == "streaming"
        self.requests_stream: StreamingRequests | None = None
        if self.streaming:
            self.requests_stream = StreamingRequests(self.warmup_ms, self.end_ms)
            for svc in self.svcs.values():
                svc.latency_hist = LatencyHistogram()

    def _one_call_step(self) -> RStep | None:
        """The request's only step when the request is one plain call to a contended service
        (no deadline, no policy): such a request needs no Flow (flows.OneCallRequests)."""
        if self.deadline_ms is not None or len(self.segments) != 1 or self.segments[0][0]:
            return None
        step = self.segments[0][1]
        plain = step.n == 1 and step.policy is None and not step.targets[0][0].free
        return step if plain else None

    def _is_free(self, name: str) -> bool:
        spec = self.scenario.services[name]
        return (
            spec.workers is None
            and spec.concurrency is None
            and spec.slow_periods is None  # an instance's state links its calls
            and spec.pauses is None
            and all(
                not step.has_policies and self._is_free(c)
                for step in spec.steps
                for c in step.callees
            )
        )

    def _compile(self, steps: list[Step], owner: str) -> tuple[RStep, ...]:
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

    # ---- event path: FIFO worker pools, callbacks on timeouts ------------------------------

    def send(self, svc, shard, rec, parent, kind=FIRST, up=None, event_mode=False, step=None,
             deadline=INF):  # fmt: skip
        """A call arrives at a service: start, queue, or reject it. Returns the Call; a
        rejection is answered to ``parent`` before this returns."""
        inst = svc.instances[shard] if shard >= 0 else svc.only or svc.pick()
        now = self.env._now
        call = Call(svc, inst, rec, now, parent, kind, up, event_mode, step, deadline)
        if inst.busy < inst.cap:
            self._start(call)
        elif len(inst.queue) < svc.queue_limit:
            svc.account(now)
            svc.queued += 1
            inst.queue.append(call)
        else:
            call.state = DONE
            call.path = leaf(svc.index, 0.0, 0.0)
            if rec:
                svc.rejected += 1
                if step is not None:
                    step.stats.rejected += 1
                if rec is not True:  # a sampled request's (engine.spans)
                    call_ended(self.spans, call, "rejected", now, served=False)
            parent.answer(False, REJECTED, call)
        return call

    def _start(self, call: Call) -> None:
        """Admit a call: serve it, or (limit in front of workers) queue it for a worker."""
        inst, now = call.inst, self.env._now
        inst.busy += 1
        call.started = now
        if inst.serving < inst.workers:
            self._serve(call)
        else:
            self._wait_for_worker(call)

    def _wait_for_worker(self, call: Call) -> None:
        """An admitted call waits for one of the workers behind an adaptive limit."""
        call.svc.account(self.env._now)
        call.svc.queued += 1
        call.state = ADMITTED
        call.inst.inner.append(call)

    def _serve(self, call: Call) -> None:
        """A worker takes the call: its own latency, then its downstream steps."""
        svc, now = call.svc, self.env._now
        svc.busy += 1
        svc.busy_since += now  # busy area: see Svc.areas
        call.served = now
        call.inst.serving += 1
        call.state = RUNNING
        try:
            svc.started_per_s[int(now * 0.001)] += 1
        except IndexError:
            bump(svc.started_per_s, int(now * 0.001))
        if call.kind and call.rec:  # a retry's or hedge's (only the event path sends them)
            svc.served_by_kind[call.kind] += 1
        d = call.own_ms = svc.draw()
        if svc.slowness is not None:  # slowed or paused as its instance is now
            d = call.own_ms = svc.slowness.own_time(call.inst.index, now, d)
        if svc.error_rate and svc.draw_u() < svc.error_rate:
            call.answer_at = now + d  # (its path, when asked for: Call.critical_path)
            timer(self._failed, self.env, d, call)
        elif not svc.segments:
            call.answer_at = now + d
            timer(self._succeeded, self.env, d, call)
        elif svc.free_below and not call.event_mode:
            rec = call.rec
            if rec and rec is not True:  # a sampled request's (engine.spans)
                below = call.below = traced_run_free(svc.plan, now + d, rec.below(call))
            else:
                below = call.below = run_free(svc.plan, now + d, rec)  # all free
            sub = below[0]
            call.answer_at = now + d + sub
            timer(self._succeeded if below[1] else self._failed, self.env, d + sub, call)
        elif svc.free_below_events:
            self.serve_free_subtree(call, now + d)
        else:
            segments = svc.event_segments if call.event_mode else svc.segments
            rec = call.rec
            if rec and rec is not True:  # a sampled request's: its calls' parent is this call
                rec = rec.below(call)
            flow = Flow(self, segments, rec, None, call, call.kind, call.event_mode,
                        call.deadline)  # fmt: skip
            call.flow = flow
            timer(flow.advance, self.env, d)

    def serve_free_subtree(self, call: Call, t: float) -> None:
        """An event-path call whose downstream steps are contention-free, never stopped and
        without losers (``Svc.free_below_events``) runs them at once from ``t``, as a call off
        the event path does. What the event path would count per subtree call is counted here:
        leaf ops by the kind of attempt now, and the calls answered after the call (or an
        ancestor) was given up on as wasted when the call answers (``end``)."""
        rec = call.rec
        trace: list | None = [] if rec else None
        if rec and rec is not True:  # a sampled request's (engine.spans)
            below = call.below = traced_run_free(call.svc.plan, t, rec.below(call), trace)
        else:
            below = call.below = run_free(call.svc.plan, t, rec, trace)  # no errors
        sub = below[0]
        if trace:
            if call.kind:  # a retry's or hedge's subtree
                for _at, svc, _step in trace:
                    svc.served_by_kind[call.kind] += 1
            call.trace = trace
        call.answer_at = t + sub
        timer(self._succeeded, self.env, t + sub - self.env._now, call)

    def _count_wasted(self, call: Call) -> None:
        """The subtree calls of ``call`` (see ``serve_free_subtree``) answered after it or an
        ancestor was given up on."""
        for at, svc, step in call.trace:
            if call.given_up(at):
                svc.wasted += 1
                step.stats.wasted += 1
                if call.given_up_by_policy(at):
                    svc.wasted_by_kind[call.kind] += 1

    def _succeeded(self, event) -> None:
        self.end(event._value, True, OK)

    def _failed(self, event) -> None:
        self.end(event._value, False, FAILED)

    def _release(self, call: Call, dropped: bool = False) -> None:
        """Free the call's worker (an adaptive limit learns from the call); queued calls take
        the free places."""
        svc, inst, now = call.svc, call.inst, self.env._now
        self.last_release_ms = now  # the run's last work ends with its last release
        if svc.queued or svc.adaptive:  # the queue or the limit may change: integrate first
            svc.account(now)
        if call.state == RUNNING:  # it held a worker: the next admitted call takes it
            inst.serving -= 1
            svc.busy -= 1
            svc.busy_since -= call.served
            svc.busy_done += now - call.served
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

    def end(self, call: Call, ok: bool, cause: int) -> None:
        """The call answers: free its worker, record it, tell the caller."""
        if call.state == CANCELLED:
            return
        # Nothing refers back to a finished call's flow: both are freed by reference counting,
        # with no work left for the cyclic garbage collector (which, with millions of calls
        # in flight over a run, would cost as much as the simulation itself).
        if call.flow is not None:
            call.path = above(call.svc.index, call.served - call.t0, call.own_ms, call.flow.path)
            call.flow = None
        self._release(call)
        call.state = DONE
        if call.rec:
            svc = call.svc
            svc.latency_ms.append(self.env._now - call.t0)
            if not ok:
                svc.errors += 1
            if call.event_mode and call.given_up():
                svc.wasted += 1
                if call.given_up_by_policy():
                    svc.wasted_by_kind[call.kind] += 1
                if call.step is not None:
                    call.step.stats.wasted += 1
            if call.trace:
                self._count_wasted(call)
            if call.rec is not True:  # a sampled request's (engine.spans)
                call_ended(self.spans, call, "ok" if ok else "error", self.env._now)
        call.parent.answer(ok, cause, call)

    def cancel(self, call: Call) -> None:
        """Cancel a call: out of its queue, or its worker freed at once and its downstream
        steps cancelled (no further calls)."""
        started = call.state == RUNNING
        if call.state == QUEUED:
            call.svc.account(self.env._now)
            call.inst.queue.remove(call)
            call.svc.queued -= 1
        elif call.state in (ADMITTED, RUNNING):
            self._release(call, dropped=True)
            if call.flow is not None:
                call.flow.cancel()
                call.flow = None
        else:
            return
        call.state = CANCELLED
        if call.rec:
            call.svc.cancelled += 1
            call.svc.cancelled_ms += self.env._now - call.t0
            if not started:  # sent, never served: not an op
                call.svc.unstarted += 1
            if call.step is not None:
                call.step.stats.cancelled += 1
            if call.rec is not True:  # a sampled request's (engine.spans)
                call_ended(self.spans, call, "cancelled", self.env._now, started)

    def drop(self, item, cancel: bool, policy: bool = False) -> None:
        """The caller no longer waits for ``item`` (a Call or a policy slot): cancel it, or
        let it run on, abandoned (its work is then wasted; ``policy``: a policy gave up on
        it, see ``Call.given_up_by_policy``)."""
        if isinstance(item, Call):
            if item.state < DONE:  # queued, admitted or running
                if cancel:
                    self.cancel(item)
                else:
                    item.abandoned = self.env._now
                    if policy:
                        item.policy_abandoned = self.env._now
        else:
            item.drop(cancel, policy)

    # ---- requests --------------------------------------------------------------------------

    def _arrive(self, event) -> None:
        i = event._value
        times = self.arrival_times
        if i + 1 < len(times):
            timer(self._arrive, self.env, times[i + 1] - times[i], i + 1)
        t0 = self.env._now
        rec = self.warmup_ms <= t0 < self.end_ms
        if rec and self.spans is not None and i in self.spans.sampled:
            rec = self.spans.request(i, t0)  # its calls record spans (engine.spans)
        self.outstanding += 1
        step = self.one_call
        if step is not None:
            svc, shard = step.targets[0]
            self.send(svc, shard, rec, self.one_call_requests, FIRST, None, False, step, INF)
            return
        deadline = self.deadline_ms
        request = Request(self, t0, rec, self.segments, deadline)
        if deadline is not None:
            timer(request.deadline, self.env, deadline)
        request.flow.advance()

    def _arrive_block(self, event) -> None:
        """Every arrival in one simulated second of a contention-free request tree, evaluated
        at once (engine.batch); the next block is scheduled at the next second's first."""
        second, times = event._value, self.arrivals_ms
        lo, hi = np.searchsorted(times, [second * 1000.0, (second + 1) * 1000.0])
        t0 = times[lo:hi]
        rec = (t0 >= self.warmup_ms) & (t0 < self.end_ms)
        flags = None
        if self.spans is not None:  # sampled requests record spans (engine.spans)
            flags = np.full(len(t0), None, dtype=object)
            for i in range(lo, hi):
                if i in self.spans.sampled:
                    flags[i - lo] = self.spans.request(i, float(t0[i - lo]))
        d, ok, top = batch.run_steps(self.plan, t0, rec, flags)
        if flags is not None:
            for j in np.flatnonzero(flags != None):  # noqa: E711 (elementwise)
                request_done(flags[j], float(t0[j] + d[j]), "ok" if ok[j] else "failed")
        tail = self.tail
        for i in np.flatnonzero(rec & (d >= tail.floor)):  # the floor rises as they come
            if d[i] >= tail.floor:
                tail.offer(float(d[i]), leaf(int(top[i]), float(d[i]), 0.0))
        batch.extend(self.req_t0, t0, "f8")
        batch.extend(self.req_ms, d, "f8")
        batch.extend(self.req_outcome, np.where(ok, OK, FAILED), "i1")
        if hi < len(times):
            t_next = self.arrival_times[hi]
            timer(self._arrive_block, self.env, t_next - self.env._now, int(t_next // 1000.0))

    def record(self, t0: float, latency_ms: float, outcome: int) -> None:
        self.req_t0.append(t0)
        self.req_ms.append(latency_ms)
        self.req_outcome.append(outcome)

    def _sample_queues(self, event) -> None:
        """Snapshot busy and queue areas of contended services (each second and window edge)."""
        now = self.env._now
        self.snapshots.append((now, [s.areas(now) for s in self.contended]))
        after = now >= self.end_ms and not self.outstanding
        if not (after and not any(s.busy or s.queued for s in self.contended)):
            timer(self._sample_queues, self.env, 1000.0)

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        """Simulate to the end of the window, then drain: every window request gets answered."""
        env = self.env
        times = self.arrival_times
        if self.root_free and len(times):  # numpy blocks, one simulated second each
            timer(self._arrive_block, env, times[0], int(times[0] // 1000.0))
        elif len(times):
            timer(self._arrive, env, times[0], 0)
        if self.contended:
            self._sample_queues(None)
            for edge in (self.warmup_ms, self.end_ms):
                timer(self._window_edge, env, edge)
        if self.streaming:
            timer(self._stream, env, 1000.0)
        chunks = 50 if progress else 1
        for j in range(1, chunks + 1):
            env.run(until=self.end_ms * j / chunks)
            if progress:
                progress(j / chunks)
        env.run()
        if self.streaming:
            self._stream(None)

    def _stream(self, event) -> None:
        """Streaming percentiles: empty the second's buffers into histograms and aggregates
        (every simulated second; once more, with ``event`` None, when the run is over)."""
        for svc in self.svcs.values():
            if len(svc.latency_ms):
                svc.latency_hist.add(np.array(svc.latency_ms, dtype=np.float32))
                del svc.latency_ms[:]
        records = (
            np.array(self.req_t0, dtype=float),
            np.array(self.req_ms, dtype=float),
            np.array(self.req_outcome, dtype=np.int8),
        )
        del self.req_t0[:], self.req_ms[:], self.req_outcome[:]
        now = self.env._now
        self.requests_stream.absorb(*records, now, last=event is None)
        if event is not None and not (now >= self.end_ms and not self.outstanding):
            timer(self._stream, self.env, 1000.0)

    def _window_edge(self, event) -> None:
        now = self.env._now
        self.edges.append([s.areas(now) for s in self.contended])
        self.queue_time_edges.append([list(s.queue_time) for s in self.contended])


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))
