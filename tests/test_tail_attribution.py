"""Tail attribution (engine.tail, results.tail): which service the slowest requests waited
on and where their time went, against order statistics and on deterministic traces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import check, make_scenario
from test_semantics import const

from simulator import analytic, simulate
from simulator.engine.sim import Sim


def _slowest_path(tmp_path, times_s, services, steps):
    """The critical path the engine kept for the slowest request of a traced run."""
    trace = tmp_path / "arrivals.csv"
    trace.write_text("\n".join(str(t) for t in times_s) + "\n")
    scenario = make_scenario(
        services, steps, rps=None, arrivals="trace", workload={"trace": str(trace)},
        duration_s=1,
    )  # fmt: skip
    sim = Sim(scenario, 1)
    sim.run()
    latency_ms, _order, path = max(sim.tail.entries)
    return latency_ms, path, list(sim.svcs)


def test_queueing_then_service_on_one_worker(tmp_path):
    """Ten requests at once on one worker: the last waited 90 ms, then ran 10."""
    latency, path, names = _slowest_path(tmp_path, [0.0] * 10, {"db": const(10, workers=1)},
                                         [{"call": "db"}])  # fmt: skip
    assert latency == pytest.approx(100.0)
    assert names[path[0]] == "db"
    assert path[2:] == pytest.approx((90.0, 0.0, 0.0, 0.0))


def test_sequential_steps_wait_on_the_longer_one(tmp_path):
    """Steps a (5 ms) then b (20 ms): the request waited on b; no queueing."""
    services = {"a": const(5), "b": const(20, workers=4)}
    latency, path, names = _slowest_path(tmp_path, [0.0], services,
                                         [{"call": "a"}, {"call": "b"}])  # fmt: skip
    assert latency == pytest.approx(25.0) and names[path[0]] == "b"
    assert path[2:] == pytest.approx((0.0, 0.0, 0.0, 0.0))


def test_the_critical_path_goes_down_the_call_tree(tmp_path):
    """front (2 ms, pooled) calls db (30 ms): the request waited on db, below front."""
    services = {"front": const(2, workers=8, steps=[{"call": "db"}]), "db": const(30)}
    _latency, path, names = _slowest_path(tmp_path, [0.0], services, [{"call": "front"}])
    assert names[path[0]] == "db" and path[1] == pytest.approx(30.0)


def test_timeouts_and_backoff(tmp_path):
    """A 10 ms timeout on a 50 ms call, one retry after 5 ms: the call fails at 25 ms, 20 of
    them in failed attempts and 5 in backoff."""
    step = {"call": "db", "timeout_ms": 10, "retries": {"max": 1, "backoff_ms": 5}}
    latency, path, names = _slowest_path(tmp_path, [0.0], {"db": const(50, workers=2)}, [step])
    assert latency == pytest.approx(25.0) and names[path[0]] == "db"
    assert path[2:] == pytest.approx((0.0, 20.0, 5.0, 0.0))


def test_a_retry_that_succeeds_counts_the_wait_before_it(tmp_path):
    """Calls at 0, 1 and 2 ms to one 20 ms worker with one queue place: the third is refused,
    retries after 20 ms (at 22), queues behind the second until 40 and runs to 60: backoff
    20, queueing 18, service 20, and no time in the refused attempt."""
    step = {"call": "db", "retries": {"max": 1, "backoff_ms": 20}}
    services = {"db": const(20, workers=1, queue_limit=1)}
    latency, path, _names = _slowest_path(tmp_path, [0.0, 0.001, 0.002], services, [step])
    assert latency == pytest.approx(58.0)
    assert path[2:] == pytest.approx((18.0, 0.0, 20.0, 0.0))


@pytest.mark.parametrize("workers", [None, 100_000], ids=["numpy blocks", "event path"])
def test_p99_requests_wait_on_each_branch_as_order_statistics_say(workers):
    """Two parallel branches, Exp(10 ms) and Exp(7 ms), all required: among the slowest 1% of
    requests, each branch was the slowest in the share the order statistics give
    (analytic.critical_branch_shares). Tolerance: 4 binomial standard errors."""
    pool = {} if workers is None else {"workers": workers}
    services = {
        "a": {"latency": {"dist": "exponential", "mean_ms": 10}} | pool,
        "b": {"latency": {"dist": "exponential", "mean_ms": 7}} | pool,
    }
    scenario = make_scenario(services, [{"call": ["a", "b"]}], rps=2000, duration_s=60,
                             warmup_s=0, seed=3)  # fmt: skip
    tail = simulate(scenario, workers=1).summary["tail_attribution"]["p99"]
    cdfs = [lambda x, m=m: 1.0 - np.exp(-x / m) for m in (10.0, 7.0)]
    want = analytic.critical_branch_shares(cdfs, 0.99, upper_ms=400.0)
    n = tail["requests"]
    tolerance = 4 * math.sqrt(want[0] * (1 - want[0]) / n)
    label = "numpy blocks" if workers is None else "event path"
    check(f"p99 requests waiting on Exp(10) beside Exp(7), {label}",
          tail["waited_on"]["a"], float(want[0]), tolerance)  # fmt: skip
    assert tail["waited_on"]["a"] + tail["waited_on"]["b"] == pytest.approx(1.0)
    assert tail["time_share"]["service"] == pytest.approx(1.0)


def test_max_parallel_calls_carry_the_wait_for_the_calls_before_them(tmp_path):
    """Two calls one at a time (max_parallel 1) on one 10 ms worker, for requests at 0 and
    1 ms: the second request's first call queues 9 ms, its second (sent at 20) 10 ms more.
    Its path holds both waits: 19 ms of queueing in 39."""
    step = {"call": "a", "fanout": 2, "max_parallel": 1}
    latency, path, _names = _slowest_path(tmp_path, [0.0, 0.001], {"a": const(10, workers=1)},
                                          [step])  # fmt: skip
    assert latency == pytest.approx(39.0)
    assert path[2] == pytest.approx(19.0)


def test_a_deadline_counts_the_step_it_cut_short(tmp_path):
    """a (5 ms), then b (500 ms), deadline 100 ms: the request waited on b for 95 ms."""
    trace = tmp_path / "arrivals.csv"
    trace.write_text("0.0\n")
    scenario = make_scenario(
        {"a": const(5), "b": const(500)}, [{"call": "a"}, {"call": "b", "optional": True}],
        rps=None, arrivals="trace", workload={"trace": str(trace)}, duration_s=1,
    ).with_overrides({"request.deadline_ms": 100})  # fmt: skip
    sim = Sim(scenario, 1)
    sim.run()
    latency, _order, path = max(sim.tail.entries)
    assert latency == pytest.approx(100.0)
    assert list(sim.svcs)[path[0]] == "b" and path[1] == pytest.approx(95.0)
