"""Calling-side policies, one behaviour each, on deterministic scenarios (constant latencies,
traced arrivals): timeouts, cancellation, retries, backoff, budgets, hedging."""

from __future__ import annotations

import pytest
from conftest import make_scenario
from test_semantics import const, run_trace

from simulator import simulate


def test_timeout_fails_the_call_but_the_work_goes_on(tmp_path):
    """Without cancel_losers, a timed-out call keeps its worker until it really ends."""
    res = run_trace(tmp_path, [0.0, 0.020], {"slow": const(50, workers=1)},
                    [{"call": "slow", "timeout_ms": 10}])  # fmt: skip
    s = res.summary
    assert res.latencies_ms.tolist() == pytest.approx([10.0, 10.0])
    assert s["requests"]["failed"] == 2
    svc = s["services"]["slow"]
    # the second call waited for the worker held by the abandoned first one
    assert svc["timeouts"] == 2 and svc["cancelled"] == 0 and svc["wasted"] == 2
    assert svc["latency_ms"]["p99"] == pytest.approx(79.7)  # 50 ms, and 30 queued + 50


def test_cancel_losers_frees_the_worker_at_once(tmp_path):
    """With cancel_losers, a timed-out call releases its worker at the timeout."""
    res = run_trace(tmp_path, [0.0, 0.020], {"slow": const(50, workers=1)},
                    [{"call": "slow", "timeout_ms": 10, "cancel_losers": True}])  # fmt: skip
    svc = res.summary["services"]["slow"]
    assert svc["cancelled"] == 2 and svc["wasted"] == 0 and svc["calls"] == 2
    assert res.summary["services"]["slow"]["utilization"] == pytest.approx(0.010 * 2 / 1.0)


def test_cancellation_propagates_down_the_call_tree(tmp_path):
    """A cancelled call makes no further downstream calls and cancels the one in flight."""
    services = {"front": const(5, steps=[{"call": "db", "repeat": 3}]), "db": const(10)}
    res = run_trace(tmp_path, [0.0], services,
                    [{"call": "front", "timeout_ms": 12, "cancel_losers": True}])  # fmt: skip
    db = res.summary["services"]["db"]
    assert db["calls"] == 1 and db["cancelled"] == 1  # the 2nd and 3rd db calls never sent
    assert res.summary["amplification"]["ops_per_request"] == 1


def test_retries_follow_errors_with_backoff(tmp_path):
    """An always-failing call is tried 1 + max times, backoff_ms * multiplier^(n-1) apart."""
    step = {"call": "bad", "retries": {"max": 2, "backoff_ms": 10, "multiplier": 3}}
    res = run_trace(tmp_path, [0.0], {"bad": const(1, error_rate=1.0)}, [step])
    # attempts end at 1, 1+10+1 = 12, 12+30+1 = 43 ms
    assert res.latencies_ms.tolist() == pytest.approx([43.0])
    svc = res.summary["services"]["bad"]
    assert svc["calls"] == 3 and svc["retries"] == 2 and svc["first_tries"] == 1


def test_retry_after_rejection_succeeds(tmp_path):
    """A rejected call is retried and can then succeed."""
    step = {"call": "db", "retries": {"max": 1, "backoff_ms": 15}}
    res = run_trace(tmp_path, [0.0, 0.0], {"db": const(10, workers=1, queue_limit=0)}, [step])
    assert res.summary["requests"]["ok"] == 2
    assert sorted(res.latencies_ms.tolist()) == pytest.approx([10.0, 25.0])
    assert res.summary["services"]["db"]["rejected"] == 1


def test_retry_on_timeout(tmp_path):
    """A timed-out attempt is retried; the retry's ops count as retry ops; a call whose
    retry times out too fails, however soon the first attempt answers late."""
    step = {"call": "db", "timeout_ms": 5, "retries": {"max": 1}}
    services = {"db": {"latency": {"dist": "uniform", "min_ms": 0, "max_ms": 10}}}
    res = run_trace(tmp_path, [i * 0.1 for i in range(50)], services, [step])
    split = res.summary["amplification"]["ops_split_per_request"]
    assert split["nominal"] == 1 and 0 < split["retries"] < 1
    db, failed = res.summary["services"]["db"], res.summary["requests"]["failed"]
    assert failed > 0
    assert db["timeouts"] == db["retries"] + failed  # each retry follows one timeout


def test_a_late_answer_of_a_timed_out_attempt_is_ignored(tmp_path):
    """An attempt that timed out cannot complete the call when it answers late, even while a
    retry is running: the call ends with the retry."""
    # first attempt 8 ms (times out at 5, answers at 8); the retry starts at 5 and times out
    services = {"db": const(8)}
    step = {"call": "db", "timeout_ms": 5, "retries": {"max": 1}}
    res = run_trace(tmp_path, [0.0], services, [step])
    assert res.summary["requests"]["failed"] == 1
    assert res.latencies_ms.tolist() == pytest.approx([10.0])  # two timeouts, not 8 ms
    db = res.summary["services"]["db"]
    assert db["timeouts"] == 2 and db["retries"] == 1 and db["wasted"] == 2


def test_a_late_error_during_a_backoff_does_not_retry_again(tmp_path):
    """A timed-out attempt that errs while its retry waits out the backoff sends no extra
    retry: each retry follows exactly one given-up attempt."""
    services = {"db": const(10, error_rate=1.0)}  # every attempt errs after 10 ms
    step = {"call": "db", "timeout_ms": 5, "retries": {"max": 3, "backoff_ms": 100}}
    res = run_trace(tmp_path, [0.0], services, [step], duration_s=2)
    db = res.summary["services"]["db"]
    assert db["retries"] == 3 and db["timeouts"] == 4 and db["calls"] == 4
    # attempts at 0, 105, 310, 715 ms (backoff 100, 200, 400), the last times out at 720
    assert res.latencies_ms.tolist() == pytest.approx([720.0])


def test_retry_budget_caps_retries(tmp_path):
    """With budget_ratio 0.2 and min_per_s 0, retries stay under 20% of first tries."""
    step = {"call": "bad", "retries": {"max": 3, "budget_ratio": 0.2, "min_per_s": 0}}
    res = run_trace(tmp_path, [i * 0.01 for i in range(500)], {"bad": const(1, error_rate=1.0)},
                    [step], duration_s=5)  # fmt: skip
    st = res.summary["steps"]["request.steps.0"]
    assert st["first_tries"] == 500
    assert st["retries"] <= 0.2 * 500 and st["retries"] >= 0.2 * 500 - 2


def test_fixed_hedge_wins_when_the_first_attempt_is_slow(tmp_path):
    """A hedge sent after_ms later answers first when the original is slower than the delay."""
    services = {
        "s": {
            "latency": {
                "dist": "mixture",
                "components": [{"weight": 1, "dist": "constant", "ms": 100}],
            },
            "workers": 2,
        }
    }
    res = run_trace(tmp_path, [0.0], services,
                    [{"call": "s", "hedge": {"after_ms": 20, "max": 1}}])  # fmt: skip
    # both take 100 ms: the original wins at 100; the hedge (20-120) is a loser, wasted
    assert res.latencies_ms.tolist() == pytest.approx([100.0])
    svc = res.summary["services"]["s"]
    assert svc["hedges"] == 1 and svc["wasted"] == 1 and svc["calls"] == 2


def test_no_hedge_when_the_answer_comes_first(tmp_path):
    """A call answered before after_ms sends no hedge."""
    res = run_trace(tmp_path, [0.0], {"s": const(5)},
                    [{"call": "s", "hedge": {"after_ms": 20}}])  # fmt: skip
    assert res.summary["services"]["s"]["hedges"] == 0


def test_percentile_hedge_waits_for_100_answers(tmp_path):
    """after: pNN sends no hedge before the step has 100 observed answers."""
    res = run_trace(tmp_path, [i * 0.01 for i in range(99)], {"s": const(5)},
                    [{"call": "s", "hedge": {"after": "p50"}}])  # fmt: skip
    assert res.summary["services"]["s"]["hedges"] == 0


def test_circuit_breaker_opens_rejects_then_probes(tmp_path):
    """After the window fails, the breaker refuses at once for open_ms, then lets one probe."""
    step = {"call": "bad", "circuit_breaker": {"failure_ratio": 0.5, "window": 4,
                                               "open_ms": 95}}  # fmt: skip
    times = [i * 0.01 for i in range(20)]  # a request every 10 ms, 0..190 ms
    res = run_trace(tmp_path, times, {"bad": const(1, error_rate=1.0)}, [step])
    s = res.summary
    # 4 failures open it at 31 ms; it refuses until 126 ms; the probe at 130 ms fails and
    # reopens it until 226 ms: 5 calls sent, 15 refused.
    assert s["services"]["bad"]["calls"] == 5 and s["services"]["bad"]["circuit_open"] == 15
    assert s["requests"]["failed"] == 5 and s["requests"]["rejected"] == 15
    assert s["steps"]["request.steps.0"]["circuit_open"] == 15


def test_circuit_breaker_closes_after_a_good_probe(tmp_path):
    """A successful half-open probe closes the breaker again."""
    services = {"flaky": {"latency": {"dist": "constant", "ms": 1}, "error_rate": 1.0}}
    step = {"call": "flaky", "circuit_breaker": {"failure_ratio": 0.5, "window": 2,
                                                 "open_ms": 50}}  # fmt: skip
    res = run_trace(tmp_path, [0.0, 0.01], services, [step])
    assert res.summary["services"]["flaky"]["calls"] == 2  # opened after two failures
    healthy = {"flaky": const(1)}
    res = run_trace(tmp_path, [0.0, 0.01, 0.1, 0.11], healthy, [step])
    assert res.summary["services"]["flaky"]["circuit_open"] == 0


def test_optional_step_failure_gives_partial(tmp_path):
    """A failing optional step is skipped: the request goes on and ends partial."""
    services = {"ads": const(5, error_rate=1.0), "page": const(2)}
    steps = [{"call": "ads", "optional": True}, {"call": "page"}]
    res = run_trace(tmp_path, [0.0], services, steps)
    assert res.summary["requests"]["partial"] == 1
    assert res.latencies_ms.tolist() == pytest.approx([7.0])
    assert res.summary["throughput_rps"] == 1.0  # partial answers count as served


def test_deadline_with_only_optional_steps_missing_is_partial(tmp_path):
    """At the deadline the user gets what has arrived: partial if only optional steps miss."""
    services = {"core": const(10), "extras": const(100)}
    steps = [{"call": "core"}, {"call": "extras", "optional": True}]
    res = run_trace(tmp_path, [0.0], services, steps, request_deadline=50)
    assert res.summary["requests"]["partial"] == 1
    assert res.latencies_ms.tolist() == pytest.approx([50.0])


def test_deadline_with_a_required_step_missing_fails(tmp_path):
    """A required step still running at the deadline fails the request at the deadline."""
    res = run_trace(tmp_path, [0.0], {"slow": const(100)}, [{"call": "slow"}],
                    request_deadline=50)  # fmt: skip
    assert res.summary["requests"]["failed"] == 1
    assert res.latencies_ms.tolist() == pytest.approx([50.0])
    assert res.summary["services"]["slow"]["wasted"] == 1  # it ran on after the deadline


def test_max_parallel_limits_calls_in_flight(tmp_path):
    """max_parallel 2 sends 4 calls two at a time: twice one call's latency."""
    res = run_trace(tmp_path, [0.0], {"shard": const(10)},
                    [{"call": "shard", "fanout": 4, "max_parallel": 2}])  # fmt: skip
    assert res.latencies_ms.tolist() == pytest.approx([20.0])
    assert res.summary["services"]["shard"]["calls"] == 4


def test_max_parallel_sends_nothing_once_the_step_is_decided(tmp_path):
    """Four calls one at a time, one answer needed: the first answer decides the step, and
    no further call is sent (found by an independent review: one more used to go out)."""
    res = run_trace(tmp_path, [0.0], {"shard": const(10)},
                    [{"call": "shard", "fanout": 4, "require": 1, "max_parallel": 1}])  # fmt: skip
    assert res.latencies_ms.tolist() == pytest.approx([10.0])
    assert res.summary["services"]["shard"]["calls"] == 1


def test_no_call_waits_past_the_request_deadline(tmp_path):
    """A service's own downstream step stops waiting at the request's deadline: the service
    answers then (and frees its worker) instead of waiting for its slow callee."""
    services = {"front": const(5, workers=1, steps=[{"call": "db"}]), "db": const(100)}
    res = run_trace(tmp_path, [0.0, 0.060], services, [{"call": "front"}],
                    request_deadline=50)  # fmt: skip
    # request 2 (at 60 ms) finds front's worker free: front gave up on db at 50 ms
    front = res.summary["services"]["front"]
    assert front["latency_ms"]["p99"] == pytest.approx(50.0, abs=0.1)
    assert res.summary["requests"]["failed"] == 2
    assert res.latencies_ms.tolist() == pytest.approx([50.0, 50.0])


def test_a_step_decided_while_sending_still_sends_all_its_calls(tmp_path):
    """A rejection at once decides an optional step mid-send; its other calls still go out
    (parallel calls leave together) and the next step starts only after them."""
    services = {"full": const(10, workers=1, queue_limit=0), "next": const(3)}
    steps = [{"call": "full", "fanout": 3, "optional": True}, {"call": "next"}]
    res = run_trace(tmp_path, [0.0], services, steps)
    s = res.summary
    assert s["services"]["full"]["calls"] == 3 and s["services"]["full"]["rejected"] == 2
    assert s["services"]["next"]["calls"] == 1
    assert s["requests"]["partial"] == 1
    assert res.latencies_ms.tolist() == pytest.approx([3.0])
    assert s["services"]["full"]["wasted"] == 1  # the one accepted call ran for nobody


def test_a_call_cancelled_while_it_waits_is_sent_but_not_an_op(tmp_path):
    """A loser cancelled in its queue counts as a call sent, not as an op: no backend served
    it (found by the property tests: ops counted must equal ops executed)."""
    step = {"call": "db", "fanout": 3, "require": "any", "cancel_losers": True}
    res = run_trace(tmp_path, [0.0], {"db": const(2, workers=1)}, [step])
    amp, db = res.summary["amplification"], res.summary["services"]["db"]
    # at 2 ms the first answers; its worker takes the second (cancelled at once, an op), the
    # third is cancelled still waiting (not an op)
    assert db["calls"] == 3 and db["cancelled"] == 2
    assert amp["calls_per_request"] == 3 and amp["ops_per_request"] == 2
    assert res.timeseries["ops"].sum() == 2


def test_ops_started_after_the_last_request_ended_are_in_the_time_series(tmp_path):
    """An abandoned call that a worker takes after every request has ended still shows in
    the time series' ops (the table runs to the run's last event)."""
    step = {"call": "db", "timeout_ms": 1}
    res = run_trace(tmp_path, [0.0, 0.0001], {"db": const(3000, workers=1)}, [step])
    assert res.summary["amplification"]["ops_per_request"] == 1
    assert res.timeseries["ops"].tolist() == [1, 0, 0, 1, 0, 0]  # the second starts at 3 s


def test_retries_refused_at_once_do_not_recurse(tmp_path):
    """A thousand retries each refused at once (queue full) run from the event loop: no
    recursion limit, and every one is counted."""
    services = {"db": const(100, workers=1, queue_limit=0)}
    res = run_trace(tmp_path, [0.0, 0.001], services, [{"call": "db", "retries": {"max": 1000}}])
    assert res.summary["requests"]["rejected"] == 1
    assert res.summary["services"]["db"]["retries"] == 1000


def test_a_refused_hedge_during_a_backoff_leaves_the_retry_alone(tmp_path):
    """While a retry waits out its backoff, a hedge refused at once neither ends the call nor
    sends another retry: the retry goes at its time."""
    step = {"call": "db", "timeout_ms": 10, "retries": {"max": 1, "backoff_ms": 100},
            "hedge": {"after_ms": 20}}  # fmt: skip
    res = run_trace(tmp_path, [0.0], {"db": const(50, workers=1, queue_limit=0)}, [step])
    db = res.summary["services"]["db"]
    assert db["retries"] == 1 and db["hedges"] == 1 and db["rejected"] == 1
    # first attempt times out at 10; the hedge at 20 is refused; the retry at 110 times out
    assert res.latencies_ms.tolist() == [120.0]
    assert res.summary["requests"]["failed"] == 1


def _abandoned_subtree(tmp_path):
    """front (5 ms) calls three db calls in a row (10 ms each) and then two in parallel; the
    caller times front out at 18 ms and retries once, which times out at 36 ms."""
    services = {
        "front": const(5, steps=[{"call": "db", "repeat": 3}, {"call": "db", "fanout": 2}]),
        "db": const(10),
    }
    step = {"call": "front", "timeout_ms": 18, "retries": {"max": 1}}
    return run_trace(tmp_path, [0.0], services, [step])


def test_a_given_up_calls_subtree_is_wasted_from_when_it_was_given_up(tmp_path):
    """Calls below an abandoned call count as wasted only when they answer after it was given
    up on; a retry's whole subtree counts as retry ops."""
    res = _abandoned_subtree(tmp_path)
    s = res.summary
    assert res.latencies_ms.tolist() == [36.0] and s["requests"]["failed"] == 1
    # attempt 1: db answers at 15 | 25, 35 | 45, 45 (given up at 18); attempt 2 from 18:
    # db at 33 | 43, 53 | 63, 63 (given up at 36): one db call of each attempt was in time
    assert s["services"]["front"]["wasted"] == 2
    assert s["services"]["db"]["wasted"] == 8 and s["services"]["db"]["calls"] == 10
    split = s["amplification"]["ops_split_per_request"]
    assert split["nominal"] == 5 and split["retries"] == 5


def test_a_contention_free_subtree_on_the_event_path_counts_as_the_call_by_call_path(
    tmp_path, monkeypatch
):
    """Evaluating an event-path call's contention-free subtree at once (nothing can stop it)
    gives the same summary as sending every call of it through the event path."""
    from simulator.engine import sim

    for sub in ("at_once", "call_by_call"):
        (tmp_path / sub).mkdir()
    at_once = _abandoned_subtree(tmp_path / "at_once").summary
    monkeypatch.setattr(sim, "no_losers", lambda steps: False)  # every call on the event path
    call_by_call = _abandoned_subtree(tmp_path / "call_by_call").summary
    assert at_once == call_by_call


def test_a_half_open_probe_its_step_stopped_waiting_for_still_decides_the_breaker():
    """b and c are called together and the first answer wins; b's breaker opens on its
    errors. A half-open probe to b that loses to c (50 ms) is abandoned, but its answer
    still closes or reopens the breaker, so b keeps being probed. Before the fix the breaker
    stayed half-open for good: 18 calls to b in 10 s, then none."""
    scenario = make_scenario(
        {"b": {"latency": {"dist": "uniform", "min_ms": 5, "max_ms": 100}, "error_rate": 0.5},
         "c": {"latency": {"dist": "constant", "ms": 50}}},
        [{"call": ["b", "c"], "require": 1,
          "circuit_breaker": {"failure_ratio": 0.5, "window": 4, "open_ms": 50}}],
        rps=100, duration_s=10,
    )  # fmt: skip
    b = simulate(scenario, workers=1).summary["services"]["b"]
    assert b["circuit_open"] > 0  # it opened, and kept letting probes through (was 18 calls)
    assert b["calls"] > 200
    cancel = scenario.with_overrides({"request.steps.0.cancel_losers": True})
    assert simulate(cancel, workers=1).summary["services"]["b"]["calls"] > 200
