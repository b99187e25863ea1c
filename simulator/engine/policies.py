"""Calling-side policies of a step: per-attempt timeout, retries (backoff, jitter, budget),
hedging (fixed or observed-percentile delay) and cancellation of losers.

Each logical call of a policy step is a :class:`Slot`. It sends attempts through the engine
(``Sim.send``) on the event path and answers its fan-in once: with the first successful
attempt, or with a failure when no attempt is running and no retry is left. Attempts it stops
waiting for (timed out, hedge losers) are cancelled when the step has ``cancel_losers: true``;
otherwise they run on, holding their workers, and their work counts as wasted.

Semantics (documented in the README):

* ``timeout_ms`` is per attempt, measured from when the attempt is sent (queueing included).
  Once an attempt has timed out (or lost to a hedge) the slot has given up on it: its late
  answer, success or error, is ignored (the work is wasted); only a live attempt completes the
  call or leads to a retry.
* A retry follows an error, a timeout or a rejection, once no other attempt of the slot is
  still running, after ``backoff_ms * multiplier ** (n - 1)`` (jittered) for the n-th retry
  (a timer even when that is 0). While a retry waits, no other failure (a refused hedge, a
  late error) sends another or ends the call.
* The retry budget counts the step's first tries and retries over the last 10 simulated
  seconds: a retry is allowed while retries < ``budget_ratio`` x first tries +
  ``min_per_s`` x 10.
* A hedge copy is sent ``after_ms`` after the first attempt (then again after each hedge, up
  to ``max``) while the slot has no answer; with ``after: pNN`` the delay is that percentile
  of the step's **first attempts'** latencies (sent to answer), and no hedge is sent until 100
  have been observed. A first attempt given up on before it answered (timed out, beaten by a
  hedge, no longer needed by the fan-in) is a censored observation, "longer than it ran": the
  percentile is the Kaplan-Meier estimate over the last 1,000, so hedged winners do not pull
  it down and a fan-in that needs few answers does not either; one that errs or is rejected
  says nothing about the delay and is not counted. Timed-out and failed attempts do not stop
  hedging.
* A circuit breaker watches the outcomes of the attempts on its step's edge to one callee
  (errors, timeouts and rejections are failures). An attempt it refuses is never sent: it
  counts as ``circuit_open`` and is treated like a rejection (retried if retries are left).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from .clock import timer
from .flows import DONE, FAILED, FIRST, HEDGE, INF, OK, REJECTED, RETRY
from .tail import join

if TYPE_CHECKING:
    from ..scenario.model import Step
    from .flows import Call, Flow, StepStats
    from .services import Svc
    from .sim import Sim

BUDGET_WINDOW_MS = 10_000.0
HEDGE_MIN_ANSWERS = 100
HEDGE_WINDOW = 1000  # the observed percentile uses the step's last this-many answers
HEDGE_REFRESH = 50  # ... recomputed every this-many answers
BLOCK, PASS, PROBE = 0, 1, 2  # a breaker's verdict on an attempt
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class Breaker:
    """A circuit breaker on one step-to-callee edge: closed -> open -> half-open -> closed."""

    __slots__ = ("spec", "outcomes", "failures", "state", "until", "probing")

    def __init__(self, spec):
        self.spec = spec
        self.outcomes: deque[bool] = deque()
        self.failures = 0
        self.state = CLOSED
        self.until = 0.0
        self.probing = False

    def allow(self, now: float) -> int:
        """BLOCK, PASS, or PROBE (the one attempt let through while half-open)."""
        if self.state == CLOSED:
            return PASS
        if self.state == OPEN:
            if now < self.until:
                return BLOCK
            self.state, self.probing = HALF_OPEN, False
        if self.probing:
            return BLOCK
        self.probing = True
        return PROBE

    def record(self, ok: bool, now: float, probe: bool) -> None:
        """An attempt's outcome. While half-open only the probe's counts."""
        if self.state == HALF_OPEN:
            if probe:
                self._close() if ok else self._open(now)
            return
        if self.state == OPEN:
            return
        self.outcomes.append(ok)
        self.failures += not ok
        if len(self.outcomes) > self.spec.window:
            self.failures -= not self.outcomes.popleft()
        full = len(self.outcomes) == self.spec.window
        if full and self.failures / self.spec.window > self.spec.failure_ratio:
            self._open(now)

    def _open(self, now: float) -> None:
        self.state, self.until, self.probing = OPEN, now + self.spec.open_ms, False
        self.outcomes.clear()
        self.failures = 0

    def _close(self) -> None:
        self.state, self.probing = CLOSED, False

    def forget_probe(self) -> None:
        """The half-open probe was cancelled before it answered: the next attempt probes."""
        if self.state == HALF_OPEN:
            self.probing = False


class StepPolicy:
    """What the calls of one step share: its spec, its retry budget, its observed latencies."""

    def __init__(self, sim: Sim, spec: Step, stats: StepStats):
        self.sim, self.spec, self.stats = sim, spec, stats
        self.rng = sim.policy_rng
        self.first_times: deque[float] = deque()
        self.retry_times: deque[float] = deque()
        self.observed: deque[float] = deque(maxlen=HEDGE_WINDOW)
        self.answers = 0
        # Only ``hedge: {after: pNN}`` follows first attempts' latencies.
        self.observing = spec.hedge is not None and spec.hedge.after is not None
        self.hedge_delay_ms: float | None = None
        if spec.hedge is not None and spec.hedge.after_ms is not None:
            self.hedge_delay_ms = spec.hedge.after_ms
        self.breakers: dict[str, Breaker] = {}
        retries = spec.retries
        self.budgeted = retries is not None and retries.budget_ratio is not None
        # retry at once (with jitter, a draw is still taken, to keep the stream's order)
        self.no_backoff = (
            retries is not None and retries.backoff_ms == 0 and retries.jitter == "none"
        )
        self.hedging = spec.hedge is not None

    def breaker(self, svc: Svc) -> Breaker | None:
        """The breaker on this step's edge to ``svc`` (None without circuit_breaker)."""
        if self.spec.circuit_breaker is None:
            return None
        if svc.name not in self.breakers:
            self.breakers[svc.name] = Breaker(self.spec.circuit_breaker)
        return self.breakers[svc.name]

    def slot(self, flow: Flow, svc: Svc, shard: int, fanin) -> Slot:
        """Start one logical call of this step."""
        slot = Slot(self, flow, svc, shard, fanin)
        slot.attempt(FIRST)
        return slot

    # -- retry budget ------------------------------------------------------------------------

    def _trim(self, now: float) -> None:
        horizon = now - BUDGET_WINDOW_MS
        for times in (self.first_times, self.retry_times):
            while times and times[0] < horizon:
                times.popleft()

    def note_first_try(self, now: float) -> None:
        if self.budgeted:
            self.first_times.append(now)

    def may_retry(self, now: float) -> bool:
        """Whether the budget allows one more retry now (and spend it if so)."""
        if not self.budgeted:
            return True
        retries = self.spec.retries
        assert retries is not None
        self._trim(now)
        allowed = retries.budget_ratio * len(self.first_times)
        allowed += retries.min_per_s * BUDGET_WINDOW_MS / 1000.0
        if len(self.retry_times) + 1 > allowed:
            return False
        self.retry_times.append(now)
        return True

    def backoff_ms(self, n: int) -> float:
        """Delay before the n-th retry (1-based)."""
        if self.no_backoff:
            return 0.0
        r = self.spec.retries
        assert r is not None
        base = r.backoff_ms * r.multiplier ** (n - 1)
        if r.jitter == "full":
            return float(self.rng.uniform(0.0, base))
        if r.jitter == "equal":
            return float(base / 2 + self.rng.uniform(0.0, base / 2))
        return base

    # -- hedging -----------------------------------------------------------------------------

    def observe(self, elapsed_ms: float, answered: bool) -> None:
        """A first attempt answered after ``elapsed_ms``, or was given up on then (a censored
        observation: it would have taken longer): update the pNN hedge delay."""
        hedge = self.spec.hedge
        assert hedge is not None
        self.observed.append((elapsed_ms, answered))
        self.answers += 1
        if self.answers >= HEDGE_MIN_ANSWERS and self.answers % HEDGE_REFRESH == 0:
            self.hedge_delay_ms = censored_quantile(self.observed, hedge.percentile / 100.0)


def censored_quantile(observed, q: float) -> float:
    """The ``q``-quantile of latencies some of which are censored (``(elapsed_ms, answered)``:
    not answered means only "longer than elapsed"), by the Kaplan-Meier estimator; ``INF``
    when the answers seen never reach ``q`` (too many given up on early)."""
    data = np.array(observed, dtype=float)
    order = np.lexsort((1.0 - data[:, 1], data[:, 0]))  # by time, answers before censorings
    t, answered = data[order, 0], data[order, 1]
    at_risk = len(t) - np.arange(len(t))
    survival = np.cumprod(1.0 - answered / at_risk)
    reached = np.flatnonzero((answered > 0) & (1.0 - survival >= q - 1e-12))
    return float(t[reached[0]]) if len(reached) else INF


class Slot:
    """One logical call of a policy step: its attempts, timers and single answer."""

    __slots__ = ("policy", "flow", "svc", "shard", "fanin", "live", "retries", "hedges", "done",
                 "breaker", "sending", "first", "retrying", "t_start", "backoff_ms_total",
                 "hedge_calls", "path", "before")  # fmt: skip

    def __init__(self, policy: StepPolicy, flow: Flow, svc: Svc, shard: int, fanin):
        self.policy, self.flow, self.svc, self.shard, self.fanin = policy, flow, svc, shard, fanin
        self.live: list[Call] = []
        self.retries = 0
        self.hedges = 0
        self.done = False
        self.breaker = policy.breaker(svc)
        self.sending = 0  # the breaker's verdict on the attempt being sent right now, or 0
        self.first: Call | None = None  # the live first attempt, while pNN hedging watches it
        self.retrying = False  # a retry waits out its backoff: no other failure retries
        # for its critical path (engine.tail): when it started, the backoff it waited, the
        # hedge attempts it sent, and once it answered the path
        self.t_start = policy.sim.env._now
        self.backoff_ms_total = 0.0
        self.hedge_calls: list[Call] | None = None
        self.path: tuple | None = None
        # with max_parallel: the path of the answer that let it be sent (FanIn.chain)
        self.before: tuple | None = getattr(fanin, "chain", None)

    def attempt(self, kind: int) -> None:
        """Send one attempt and arm its timers."""
        if self.done or self.flow.cancelled:
            return
        policy, flow, sim = self.policy, self.flow, self.policy.sim
        now = sim.env._now
        if kind == FIRST and policy.budgeted:
            policy.note_first_try(now)
        verdict = self.breaker.allow(now) if self.breaker is not None else PASS
        if verdict == BLOCK:
            if flow.rec:
                self.svc.circuit_open += 1
                policy.stats.circuit_open += 1
            if not self.live and not self.retrying:
                self._retry_or_fail(REJECTED)
            return
        inherited = flow.kind if flow.kind != FIRST else kind
        step, rec = flow.step, flow.rec
        if rec:
            self.svc.sent[kind] += 1
            policy.stats.sent[kind] += 1
        self.sending = verdict
        call = sim.send(self.svc, self.shard, rec, self, inherited, flow.up, True, step,
                        flow.deadline)  # fmt: skip
        call.probe, self.sending = verdict == PROBE, 0
        if rec is not True and rec:  # a sampled request's (engine.spans)
            sim.spans.note(call, attempt=kind)
        if kind == HEDGE:
            self.hedge_calls = (self.hedge_calls or []) + [call]
        if call.state >= DONE:
            return  # rejected at once; answer() has already dealt with it
        self.live.append(call)
        if kind == FIRST and policy.observing:
            self.first = call
        timeout_ms = policy.spec.timeout_ms
        if timeout_ms is not None and call.answer_at > now + timeout_ms:
            # (an attempt known to answer in time needs no timer: at a tie its answer,
            # scheduled first, would come first)
            timer(self._timed_out, sim.env, timeout_ms, call)
        if kind == FIRST and policy.hedging:
            self._arm_hedge()

    def _arm_hedge(self) -> None:
        hedge, delay = self.policy.spec.hedge, self.policy.hedge_delay_ms
        if hedge is not None and delay is not None and delay < INF and self.hedges < hedge.max:
            timer(self._hedge, self.policy.sim.env, delay)

    def _hedge(self, _event) -> None:
        if self.done or self.flow.cancelled:
            return
        self.hedges += 1
        self.attempt(HEDGE)
        self._arm_hedge()

    def answer(self, ok: bool, cause: int, call: Call) -> None:
        """An attempt answered (or was rejected at once)."""
        live = call in self.live
        if not live and not self.sending:
            # given up on (timed out, lost): its late answer is ignored, its work wasted; but a
            # half-open probe's answer still decides the breaker (or it would never close)
            if call.probe and self.breaker is not None:
                self.breaker.record(ok, self.policy.sim.env._now, True)
            return
        now = self.policy.sim.env._now
        if self.breaker is not None:
            self.breaker.record(ok, now, self.sending == PROBE or call.probe)
        if live:
            self.live.remove(call)
        if self.done:
            return
        if call is self.first:
            self.first = None
            if ok:
                self.policy.observe(now - call.t0, True)
        if ok:
            self._finish(True, OK, call)
        elif not self.live and not self.retrying:
            self._retry_or_fail(cause)

    def _timed_out(self, event) -> None:
        call: Call = event._value
        if self.done or call not in self.live:
            return
        self.live.remove(call)
        if call is self.first:
            self.first = None
            self.policy.observe(self.policy.sim.env._now - call.t0, False)
        if self.breaker is not None:
            self.breaker.record(False, self.policy.sim.env._now, call.probe)
            call.probe = False  # decided: its late answer is no probe's
        if call.rec:
            call.svc.timeouts += 1
            self.policy.stats.timeouts += 1
            if call.rec is not True:  # a sampled request's (engine.spans)
                self.policy.sim.spans.note(call, timed_out=True)
        self.policy.sim.drop(call, self.policy.spec.cancel_losers, True)  # a policy's
        if not self.live and not self.retrying:
            self._retry_or_fail(FAILED)

    def _retry_or_fail(self, cause: int) -> None:
        policy, sim = self.policy, self.policy.sim
        retries = policy.spec.retries
        if (
            retries is not None
            and self.retries < retries.max
            and not self.flow.cancelled
            and policy.may_retry(sim.env._now)
        ):
            self.retries += 1
            # always through a timer, also with no backoff: an attempt refused at once
            # (queue full, breaker open) retries from the event loop, not by recursion
            self.retrying = True
            backoff_ms = policy.backoff_ms(self.retries)
            self.backoff_ms_total += backoff_ms
            timer(self._retry, sim.env, backoff_ms, RETRY)
            return
        self._finish(False, cause)

    def _retry(self, _event) -> None:
        self.retrying = False
        self.attempt(RETRY)

    def _finish(self, ok: bool, cause: int, winner: Call | None = None) -> None:
        """Answer the fan-in once (with ``winner``, the attempt that succeeded, if one did);
        attempts still running are losers."""
        self.path = self._path(winner)
        self.drop(self.policy.spec.cancel_losers, True)  # the race's losers: a policy's
        self.fanin.answer(ok, cause, self)

    def critical_path(self) -> tuple:
        """Its critical path (engine.tail), once it answered: what it waited for before it
        was sent (max_parallel), then its own."""
        assert self.path is not None
        return self.path if self.before is None else join(self.before, self.path)

    def path_so_far(self, now: float) -> tuple | None:
        """Its critical path if it answered ``now`` (a deadline stops waiting for it): its
        oldest live attempt's so far, after the wait before it; None once answered."""
        if self.done:
            return None
        live = self.live[0].path_so_far(now) if self.live else None
        if live is None:  # between attempts: all of it failed attempts and backoff
            path = self._wait(self.svc.index, now, False)
        else:
            first = self.live[0]
            path = self._after_wait(live, first.t0, first in (self.hedge_calls or ()))
        return path if self.before is None else join(self.before, path)

    def _path(self, winner: Call | None) -> tuple:
        """The call's critical path (engine.tail): the winning attempt's, after the time spent
        before it was sent: backoff, then failed attempts (or, for a hedge, the hedge delay).
        Without a winner, every attempt failed: all but the backoff was failed attempts."""
        now = self.policy.sim.env._now
        if winner is None:
            return self._wait(self.svc.index, now, False)
        is_hedge = self.hedge_calls is not None and winner in self.hedge_calls
        return self._after_wait(winner.critical_path(), winner.t0, is_hedge)

    def _wait(self, index: int, until: float, is_hedge: bool) -> tuple:
        """The path of the time from the call's start to ``until``, spent waiting: backoff,
        and the rest in failed attempts (for a hedge, the wait for it to be sent)."""
        spent = until - self.t_start
        backoff = min(self.backoff_ms_total, spent)
        rest = spent - backoff
        if is_hedge:
            return (index, rest, 0.0, 0.0, backoff, rest)
        return (index, rest, 0.0, rest, backoff, 0.0)

    def _after_wait(self, p: tuple, sent_at: float, is_hedge: bool) -> tuple:
        """Path ``p`` of an attempt sent at ``sent_at``, after the wait before it."""
        if sent_at <= self.t_start:
            return p
        w = self._wait(p[0], sent_at, is_hedge)
        return (p[0], p[1], p[2], p[3] + w[3], p[4] + w[4], p[5] + w[5])

    def drop(self, cancel: bool, policy: bool = False) -> None:
        """The step no longer needs this call (or, ``policy``, this slot's race is decided or
        the deadline passed): stop retrying and hedging; cancel or abandon what is running."""
        self.done = True
        self.hedge_calls = None  # (they refer back to this slot: no cycle left)
        first, self.first = self.first, None
        if first is not None:  # beaten by a hedge, or no longer needed: censored here
            self.policy.observe(self.policy.sim.env._now - first.t0, False)
        losers, self.live = self.live, []
        for call in reversed(losers):  # the last sent first: a freed worker takes no loser
            if cancel and call.probe and self.breaker is not None:
                self.breaker.forget_probe()  # a cancelled probe never answers
            self.policy.sim.drop(call, cancel, policy)
