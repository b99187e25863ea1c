"""One behaviour of the model each (SPEC §1-2), on tiny deterministic scenarios.

Most use constant latencies and a trace of arrival times, so every expected number is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TIMESERIES_COLUMNS, make_scenario

from simulator import simulate


def const(ms: float, **extra) -> dict:
    return {"latency": {"dist": "constant", "ms": ms}} | extra


def run_trace(tmp_path, times_s: list[float], services: dict, steps: list, **top):
    """Simulate with one request arriving at each of ``times_s``; per-request latencies (ms)."""
    trace = tmp_path / "arrivals.csv"
    trace.write_text("\n".join(str(t) for t in times_s) + "\n")
    deadline = top.pop("request_deadline", None)
    scenario = make_scenario(
        services,
        steps,
        rps=None,
        arrivals="trace",
        workload={"trace": str(trace)},
        duration_s=top.pop("duration_s", 1),
        **top,
    )
    if deadline is not None:
        scenario = scenario.with_overrides({"request.deadline_ms": deadline})
    return simulate(scenario, workers=1)


def test_worker_is_held_for_downstream_calls(tmp_path):
    """A service keeps its worker while its own steps run, so the next call waits for both."""
    services = {"front": const(1, workers=1, steps=[{"call": "db"}]), "db": const(9)}
    res = run_trace(tmp_path, [0.0, 0.001], services, [{"call": "front"}])
    assert res.latencies_ms.tolist() == pytest.approx([10.0, 19.0])


def test_queue_limit_rejects_at_once(tmp_path):
    """With one worker and queue_limit 1, a third simultaneous call is rejected and is no op."""
    res = run_trace(
        tmp_path, [0.0, 0.0, 0.0], {"db": const(10, workers=1, queue_limit=1)}, [{"call": "db"}]
    )
    s = res.summary
    assert s["requests"] == {"arrived": 3, "ok": 2, "partial": 0, "failed": 0, "rejected": 1}
    assert s["services"]["db"]["calls"] == 3 and s["services"]["db"]["rejected"] == 1
    assert s["amplification"]["ops_per_request"] == pytest.approx(2 / 3)
    assert sorted(res.latencies_ms.tolist()) == pytest.approx([0.0, 10.0, 20.0])


def test_queue_limit_zero_means_no_waiting(tmp_path):
    """queue_limit: 0 rejects any call that finds every worker busy."""
    res = run_trace(
        tmp_path, [0.0, 0.0], {"db": const(10, workers=1, queue_limit=0)}, [{"call": "db"}]
    )
    assert res.summary["requests"]["rejected"] == 1


def test_require_met_leaves_other_calls_running_with_their_workers(tmp_path):
    """require: any answers at the first reply; the second call still holds the worker after."""
    res = run_trace(
        tmp_path,
        [0.0, 0.012],
        {"s": const(10, workers=1)},
        [{"call": "s", "fanout": 2, "require": "any"}],
    )
    # request 1: first answer at 10 ms; its second call holds the worker 10-20 ms,
    # so request 2 (at 12 ms) is served 20-30 and 30-40: first answer at 30 ms -> 18 ms.
    assert res.latencies_ms.tolist() == pytest.approx([10.0, 18.0])
    assert res.summary["services"]["s"]["calls"] == 4


def test_error_fails_the_request_and_skips_downstream(tmp_path):
    """error_rate 1: every call fails after its own latency and makes no downstream call."""
    services = {"front": const(2, error_rate=1.0, steps=[{"call": "db"}]), "db": const(1)}
    res = run_trace(tmp_path, [0.0, 0.5], services, [{"call": "front"}])
    s = res.summary
    assert s["requests"]["failed"] == 2 and s["throughput_rps"] == 0
    assert s["services"]["front"]["errors"] == 2 and s["services"]["db"]["calls"] == 0
    assert res.latencies_ms.tolist() == pytest.approx([2.0, 2.0])


def test_rejection_deep_in_the_tree_rejects_the_request(tmp_path):
    """A refusal two levels down fails its caller and ends the request as rejected."""
    services = {
        "front": const(1, workers=4, steps=[{"call": "db"}]),
        "db": const(10, workers=1, queue_limit=0),
    }
    res = run_trace(tmp_path, [0.0, 0.0], services, [{"call": "front"}])
    assert res.summary["requests"]["rejected"] == 1 and res.summary["requests"]["ok"] == 1
    assert res.summary["services"]["front"]["errors"] == 1


def test_required_failure_ends_the_request_at_that_instant(tmp_path):
    """With require all, the request ends when the first call fails, not when the slowest ends."""
    services = {"bad": const(3, error_rate=1.0), "slow": const(50)}
    res = run_trace(tmp_path, [0.0], services, [{"call": ["bad", "slow"]}])
    assert res.latencies_ms.tolist() == pytest.approx([3.0])
    assert res.summary["services"]["slow"]["calls"] == 1  # still sent and served


@pytest.mark.parametrize("balancer", ["round_robin", "least_outstanding", "p2c"])
def test_balancers_spread_simultaneous_calls(tmp_path, balancer):
    """Two calls at once to two one-worker instances both start at once (no queueing)."""
    svc = const(10, workers=1, instances=2, balancer=balancer)
    res = run_trace(tmp_path, [0.0, 0.0], {"s": svc}, [{"call": "s"}])
    assert res.latencies_ms.tolist() == pytest.approx([10.0, 10.0])


def test_random_balancer_uses_every_instance():
    """The random balancer sends about 1/n of the calls to each instance (utilization even)."""
    scenario = make_scenario(
        {"s": const(1, workers=1, instances=4, balancer="random")},
        [{"call": "s"}],
        rps=200,
        duration_s=20,
    )
    res = simulate(scenario, workers=1)
    util = res.summary["services"]["s"]["utilization"]
    assert util == pytest.approx(200 * 0.001 / 4, rel=0.1)
    assert res.summary["services"]["s"]["rejected"] == 0


def test_shards_fanout_calls_each_instance_once(tmp_path):
    """fanout: shards sends one call to each instance, bypassing the balancer."""
    svc = const(10, workers=1, instances=4)
    res = run_trace(tmp_path, [0.0], {"cache": svc}, [{"call": "cache", "fanout": "shards"}])
    assert res.latencies_ms.tolist() == pytest.approx([10.0])  # 4 calls, 4 instances, no wait
    assert res.summary["services"]["cache"]["calls"] == 4


def test_call_list_and_repeat_counts(tmp_path):
    """A call list sends one call per service; repeat runs the step again after the first."""
    services = {"a": const(2), "b": const(5)}
    res = run_trace(tmp_path, [0.0], services, [{"call": ["a", "b"], "repeat": 2}])
    assert res.latencies_ms.tolist() == pytest.approx([10.0])
    assert res.summary["amplification"]["calls_per_request"] == 4


def test_service_latency_includes_queueing(tmp_path):
    """A service's latency percentiles run from the call's arrival, queueing included."""
    res = run_trace(tmp_path, [0.0, 0.0], {"db": const(10, workers=1)}, [{"call": "db"}])
    lat = res.summary["services"]["db"]["latency_ms"]
    assert lat["p50"] == pytest.approx(15.0) and lat["p99"] == pytest.approx(19.9)


def test_warmup_requests_are_not_counted():
    """Only requests arriving in [warmup_s, warmup_s + duration_s) count."""
    scenario = make_scenario(
        {"s": const(1)}, [{"call": "s"}], rps=100, arrivals="constant", warmup_s=2, duration_s=3
    )
    res = simulate(scenario, workers=1)
    assert res.summary["requests"]["arrived"] == 300
    assert res.summary["services"]["s"]["calls"] == 300
    assert int(res.timeseries["arrivals"].sum()) == 500  # the time series shows the whole run


def test_window_requests_are_answered_after_the_window():
    """A request arriving just before the window ends is still answered and counted."""
    scenario = make_scenario(
        {"s": const(5000)}, [{"call": "s"}], rps=10, arrivals="constant", duration_s=1
    )
    res = simulate(scenario, workers=1)
    assert res.summary["requests"]["ok"] == 10
    assert len(res.timeseries["t_s"]) >= 6  # the run went on until the last answer at ~5.9 s


def test_schedule_changes_the_rate():
    """A schedule gives each piece its own Poisson rate."""
    scenario = make_scenario(
        {"s": const(1)},
        [{"call": "s"}],
        rps=None,
        arrivals="schedule",
        workload={"schedule": [{"at_s": 0, "rps": 100}, {"at_s": 10, "rps": 1000}]},
        duration_s=20,
    )
    arrivals = simulate(scenario, workers=1).timeseries["arrivals"]
    first, second = arrivals[:10].sum(), arrivals[10:20].sum()
    assert abs(first - 1000) < 4 * np.sqrt(1000) and abs(second - 10000) < 4 * np.sqrt(10000)


def test_bursty_arrivals_burst_every_period():
    """Bursty arrivals run at burst_rps for length_s every every_s seconds."""
    scenario = make_scenario(
        {"s": const(1)},
        [{"call": "s"}],
        rps=100,
        arrivals="bursty",
        workload={"bursty": {"burst_rps": 2000, "every_s": 5, "length_s": 1}},
        duration_s=20,
    )
    arrivals = simulate(scenario, workers=1).timeseries["arrivals"]
    bursts = arrivals[[5, 10, 15]]
    calm = np.delete(arrivals[:20], [5, 10, 15])
    assert bursts.min() > 1500 and calm.max() < 200


def test_constant_arrivals_are_evenly_spaced():
    """Constant arrivals come exactly 1/rps apart."""
    scenario = make_scenario(
        {"s": const(1)}, [{"call": "s"}], rps=50, arrivals="constant", duration_s=2
    )
    assert simulate(scenario, workers=1).timeseries["arrivals"].tolist()[:2] == [50, 50]


def test_timeseries_columns_and_totals():
    """The time series has the contract's columns and its ops add up to every op simulated."""
    scenario = make_scenario(
        {"front": const(1, workers=2, steps=[{"call": "db", "repeat": 2}]), "db": const(1)},
        [{"call": "front"}],
        rps=100,
        duration_s=5,
    )
    res = simulate(scenario, workers=1)
    ts = res.timeseries
    for col in [*TIMESERIES_COLUMNS, "queue_front", "util_front"]:
        assert col in ts
    assert ts["ops"].sum() == 2 * ts["arrivals"].sum()
    assert ts["completions"].sum() == ts["arrivals"].sum()
