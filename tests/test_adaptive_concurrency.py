"""Serving-side adaptive concurrency limits (AIMD, gradient): the limit rules, an admission
limit in front of workers, and load shedding under overload."""

from __future__ import annotations

import pytest
from conftest import run
from test_semantics import const, run_trace

from simulator.engine.limits import Limit
from simulator.scenario.model import Concurrency


def aimd(**kw) -> Limit:
    return Limit(Concurrency(algorithm="aimd", **kw))


def test_aimd_adds_one_when_busy_and_backs_off_on_drops():
    """AIMD: +1 after a good call with at least half the limit in use; x0.9 after a drop."""
    limit = aimd(initial=10)
    assert limit.update(5.0, False, in_flight=5) == 11
    assert limit.update(5.0, False, in_flight=2) == 11  # mostly idle: no increase
    assert limit.update(5.0, True, in_flight=9) == pytest.approx(9.9)
    assert limit.update(2000.0, False, in_flight=9) == pytest.approx(8.91)  # over the target


def test_limits_stay_within_min_and_max():
    """A limit never leaves [min, max]."""
    limit = aimd(initial=2, min=2, max=3)
    for _ in range(5):
        limit.update(1.0, True, in_flight=1)
    assert limit.limit == 2
    for _ in range(5):
        limit.update(1.0, False, in_flight=3)
    assert limit.limit == 3


def test_gradient_shrinks_when_latency_rises_and_grows_when_steady():
    """Gradient: steady RTT adds smoothing x queue_size; an RTT jump pulls the limit down."""
    limit = Limit(Concurrency(algorithm="gradient", initial=20, smoothing=0.2, queue_size=4))
    for _ in range(200):
        limit.update(10.0, False, in_flight=10)
    steady = limit.limit
    assert steady > 20
    for _ in range(30):
        limit.update(40.0, False, in_flight=10)
    assert limit.limit < steady * 0.7


def test_limit_in_front_of_workers_queues_admitted_calls(tmp_path):
    """With workers 1 and a limit of 2, two calls are admitted (one waits for the worker);
    a third, with queue_limit 0, is rejected."""
    svc = const(10, workers=1, queue_limit=0,
                concurrency={"algorithm": "aimd", "initial": 2, "min": 2, "max": 2})  # fmt: skip
    res = run_trace(tmp_path, [0.0, 0.0, 0.0], {"api": svc}, [{"call": "api"}])
    assert sorted(res.latencies_ms.tolist()) == pytest.approx([0.0, 10.0, 20.0])
    assert res.summary["requests"]["rejected"] == 1
    assert res.summary["services"]["api"]["concurrency_limit"] == pytest.approx(2)


@pytest.mark.parametrize("algorithm, extra", [("aimd", {"latency_target_ms": 40}),
                                              ("gradient", {})])  # fmt: skip
def test_adaptive_limit_sheds_load_instead_of_queueing_without_bound(algorithm, extra):
    """At 1.5x overload an adaptive admission limit keeps the tail bounded and sheds the
    excess, where an unlimited queue grows without bound."""
    api = {"latency": {"dist": "exponential", "mean_ms": 10}, "workers": 4, "queue_limit": 0,
           "concurrency": {"algorithm": algorithm, "initial": 20} | extra}  # fmt: skip
    res = run({"api": api}, [{"call": "api"}], rps=600, duration_s=20, warmup_s=5, seed=3)
    s = res.summary
    shed = s["requests"]["rejected"] / s["requests"]["arrived"]
    assert 0.25 < shed < 0.45  # capacity is 400 of 600 rps: a third must go
    assert s["latency_ms"]["p99"] < 200
    assert s["services"]["api"]["utilization"] > 0.9
    unlimited = {"latency": {"dist": "exponential", "mean_ms": 10}, "workers": 4}
    res = run({"api": unlimited}, [{"call": "api"}], rps=600, duration_s=5, seed=3)
    assert res.summary["latency_ms"]["p50"] > 1000
