"""Contention-free requests evaluated in numpy blocks (engine.batch) decide exactly as the
one-request-at-a-time path: the same fan-in rule, the same counters, the same distributions."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from simulator import load_scenario
from simulator.engine import batch
from simulator.engine.free import fan_in, run_free
from simulator.engine.services import Stream
from simulator.engine.sim import Sim


@pytest.mark.parametrize("n, k", [(1, 1), (4, 4), (5, 2), (6, 1), (3, 3), (10, 9)])
def test_block_fan_in_equals_the_scalar_rule(n, k):
    """Every row: the k-th success or the failure that makes k impossible, its time, and the
    answer that decided it (the critical branch: here each answer's "service" is its
    column, and among tied answers either may be the one)."""
    rng = np.random.default_rng(n * 10 + k)
    rows = 2000
    d = rng.exponential(10.0, (rows, n)).round(1)  # rounding makes ties happen
    ok = rng.random((rows, n)) > 0.3
    column = [np.full(rows, j) for j in range(n)]
    got_d, got_ok, got_col, _ms = batch.fan_in(
        [(d[:, j], ok[:, j], column[j], d[:, j]) for j in range(n)], k
    )
    for i in range(rows):
        answers = [(d[i, j], bool(ok[i, j]), (j,)) for j in range(n)]
        want_d, want_ok, (want_col,) = fan_in(answers, k, n)
        assert (got_d[i], bool(got_ok[i])) == (want_d, want_ok), (i, d[i], ok[i])
        col = int(got_col[i])
        assert (d[i, col], bool(ok[i, col])) == (d[i, want_col], bool(ok[i, want_col]))


def test_stream_take_continues_the_buffered_draws():
    """take(n) returns what __call__ would have returned next, then fresh draws."""
    a = Stream(lambda rng, n: rng.random(n), np.random.default_rng(1))
    b = Stream(lambda rng, n: rng.random(n), np.random.default_rng(1))
    first = [a() for _ in range(5)]
    assert first == [b() for _ in range(5)]
    assert a.take(3).tolist() == [b() for _ in range(3)]


def test_blocks_count_every_call_and_error_like_the_scalar_path():
    """With errors at every level, block and scalar paths count the same calls and errors
    per service to within sampling noise, and the same ops per second exactly in total."""
    scenario = load_scenario(ROOT / "scenarios" / "seed-example.yaml").with_overrides(
        {"duration_s": 2, "warmup_s": 0.5, "services.db.error_rate": 0.01,
         "services.service.error_rate": 0.02, "request.steps.0.require": 8}
    )  # fmt: skip
    sim = Sim(scenario, 1)
    assert sim.root_free
    sim.run()
    scalar = Sim(scenario, 1)
    t0 = scalar.arrivals_ms
    rec = (t0 >= scalar.warmup_ms) & (t0 < scalar.end_ms)
    outcomes = [run_free(scalar.plan, t, r) for t, r in zip(t0, rec, strict=True)]
    block_failed = np.count_nonzero(np.frombuffer(sim.req_outcome, dtype=np.int8) != 0)
    scalar_failed = sum(not ok for _, ok, *_ in outcomes)
    assert len(sim.req_ms) == len(outcomes) == len(t0)
    assert abs(block_failed - scalar_failed) < 4 * np.sqrt(scalar_failed) + 1
    for name in ("service", "db"):
        a, b = sim.svcs[name], scalar.svcs[name]
        assert len(a.latency_ms) == pytest.approx(len(b.latency_ms), rel=0.02)
        assert abs(a.errors - b.errors) < 4 * np.sqrt(b.errors) + 1
        assert sum(a.started_per_s) == pytest.approx(sum(b.started_per_s), rel=0.02)


def test_a_one_call_request_keeps_the_outcomes_a_flow_gives():
    """A request that is one call to a pool answers without a Flow (OneCallRequest): a refused
    call is a rejected request, or a partial one when the call is optional, exactly as the
    general path says; every request is answered once."""
    from conftest import make_scenario

    from simulator import simulate

    services = {"pool": {"latency": {"dist": "constant", "ms": 10}, "workers": 1,
                         "queue_limit": 0}}  # fmt: skip
    for optional, kind in ((False, "rejected"), (True, "partial")):
        steps = [{"call": "pool", "optional": optional}]
        scenario = make_scenario(services, steps, rps=200, duration_s=5)
        requests = simulate(scenario, seed=1).summary["requests"]
        assert requests[kind] > 0.5 * requests["arrived"]  # 200 rps into 100/s of capacity
        other = "partial" if kind == "rejected" else "rejected"
        assert requests[other] == 0 and requests["failed"] == 0
        assert (
            sum(requests[k] for k in ("ok", "partial", "failed", "rejected")) == requests["arrived"]
        )
