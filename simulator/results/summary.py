"""Turn a finished replication into the contract's figures (SPEC §4): the summary dict, the
window's request latencies, and the per-second time series; combine replications with
Student-t 95% confidence intervals.

Window rule: request figures cover requests that arrive in [warmup_s, warmup_s + duration_s)
and the calls they cause. The time series covers the whole run, warm-up and drain included,
one row per simulated second (requests binned by the second they end in, calls by the second
they start in).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.flows import OK, OUTCOMES, PARTIAL
from ..engine.histograms import LatencyHistogram
from ..engine.sim import Sim
from ..scenario.topology import nominal_amplification
from .cost import cost_summary
from .tail import tail_attribution

PERCENTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999}


def _quantiles(x: np.ndarray, names: dict[str, float]) -> dict[str, float | None]:
    if not len(x):
        return {k: None for k in names}
    values = np.quantile(x, list(names.values()))
    return {k: float(v) for k, v in zip(names, values, strict=True)}


def summarize(sim: Sim, seed: int) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """The summary dict, the window's request latencies (ms) and the time series of one run."""
    s = sim.scenario
    # to the run's last event, or its last answer (contention-free requests are answered
    # without an event): calls abandoned by their request can start after it ended
    if sim.streaming:
        last_answer_ms = sim.requests_stream.last_end_ms
    else:
        ends = np.frombuffer(sim.req_t0, dtype=float) + np.frombuffer(sim.req_ms, dtype=float)
        last_answer_ms = float(ends.max()) if len(ends) else 0.0
    n = int(math.ceil(max(sim.end_ms, sim.env.now, last_answer_ms) / 1000.0)) or 1
    # the last work: an answer, or a worker freed by a call abandoned after its request
    # ended; with worker pools the clock itself runs on to the queue sampler's next second
    last_work_ms = sim.last_release_ms if sim.contended else sim.env.now
    run_end_ms = max(sim.end_ms, last_answer_ms, last_work_ms)
    req = _streamed_requests(sim, n) if sim.streaming else _exact_requests(sim, n)
    counts = req.counts
    arrived = int(sum(counts))
    duration_s = s.duration_s

    services = {name: _service_summary(sim, svc, duration_s) for name, svc in sim.svcs.items()}
    calls = sum(svc.calls for svc in sim.svcs.values())
    leaves = [svc for svc in sim.svcs.values() if svc.leaf]
    # an op is a call a backend served: not a rejected one, nor one cancelled while it waited
    ops = sum(svc.calls - svc.rejected - svc.unstarted for svc in leaves)
    retry_ops = sum(svc.served_by_kind[1] for svc in leaves)
    hedge_ops = sum(svc.served_by_kind[2] for svc in leaves)
    nominal = nominal_amplification(s)
    per_req = (lambda x: x / arrived) if arrived else (lambda x: None)
    summary = {
        "scenario": s.name,
        "seed": seed,
        "duration_s": s.duration_s,
        "warmup_s": s.warmup_s,
        "run_end_s": run_end_ms / 1000.0,  # the drain's end: the time series' last row's
        "requests": {"arrived": arrived}
        | {o: int(c) for o, c in zip(OUTCOMES, counts, strict=True)},
        "throughput_rps": float(counts[0] + counts[1]) / duration_s,
        "offered_rps": s.workload.mean_rps(s.duration_s, s.warmup_s),
        "latency_ms": req.latency,
        # ok and partial answers only: a request refused in 0 ms must not flatter the tail
        "latency_ok_ms": req.latency_ok,
        "amplification": {
            "calls_per_request": per_req(calls),
            "ops_per_request": per_req(ops),
            "ops_per_sec": ops / duration_s,
            "nominal_ops_per_request": nominal["ops_per_request"],
            "nominal_calls_per_request": nominal["calls_per_request"],
            # the measured ops split by why their attempt was sent (retries and hedges include
            # the ops their subtrees made)
            "ops_split_per_request": {
                "nominal": per_req(ops - retry_ops - hedge_ops),
                "retries": per_req(retry_ops),
                "hedges": per_req(hedge_ops),
            },
            "wasted_ops_per_request": per_req(sum(svc.wasted for svc in leaves)),
        },
        "services": services,
        # steps with calling-side policies: what their attempts were and what became of them
        "steps": {name: _step_summary(st) for name, st in sim.steps.items() if st.policy},
    }
    coarse = req.per_second.get("coarse")
    if coarse is not None:  # too few requests a second for a p99: coarser buckets too
        summary["latency_over_time"] = {
            "bucket_s": coarse["bucket_s"],
            **{k: [None if math.isnan(v) else float(v) for v in coarse[k]]
               for k in ("t_s", "p50_ms", "p99_ms")},
        }  # fmt: skip
    summary["cost"] = cost_summary(s, summary)  # None when nothing is priced
    # which service the slowest requests waited on, and where their time went
    summary["tail_attribution"] = tail_attribution(sim, int(np.sum(counts)))
    if sim.streaming:
        summary["percentiles"] = "streaming"  # HdrHistogram, 3 significant figures
    return summary, req.window_latencies, _timeseries(sim, n, req.per_second)


@dataclass
class _Requests:
    """What the requests of one run show: window outcome counts and latencies, and the
    per-second request columns of the time series (length ``n``)."""

    counts: list[int]
    latency: dict[str, float | None]
    latency_ok: dict[str, float | None]
    window_latencies: np.ndarray  # every window request's, or a quantile sample when streaming
    per_second: dict[str, np.ndarray]


def _exact_requests(sim: Sim, n: int) -> _Requests:
    t0 = np.frombuffer(sim.req_t0, dtype=float)
    lat = np.frombuffer(sim.req_ms, dtype=float)
    outcome = np.frombuffer(sim.req_outcome, dtype=np.int8)
    window = (t0 >= sim.warmup_ms) & (t0 < sim.end_ms)
    answered = (outcome == OK) | (outcome == PARTIAL)
    end_s = np.minimum(((t0 + lat) // 1000).astype(np.int64), n - 1)
    p50, p99 = _binned_p50_p99(end_s, lat, n)
    per_second = {
        "arrivals": np.bincount((t0 // 1000).astype(np.int64), minlength=n)[:n],
        "completions": np.bincount(end_s, minlength=n),
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": np.bincount(end_s[~answered], minlength=n),
        "goodput": np.bincount(end_s[answered], minlength=n),  # ok + partial, an extension
    }
    counts = np.bincount(outcome[window], minlength=len(OUTCOMES)).tolist()
    coarse = coarse_latency(t0 + lat, lat, per_second["completions"])
    if coarse is not None:
        per_second["coarse"] = coarse
    return _Requests(
        counts, _latency(lat[window]), _latency(lat[window & answered]), lat[window].copy(),
        per_second,
    )  # fmt: skip


BUCKETS_S = (2, 5, 10, 15, 30, 60)  # coarser latency buckets, tried in this order
MIN_PER_BUCKET = 100  # completions a bucket needs for its p99 to be more than its maximum


def _binned_p50_p99(index: np.ndarray, lat: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """p50 and p99 of the latencies in each of ``m`` bins (``index``: each one's bin); NaN for
    an empty bin."""
    p50, p99 = np.full(m, np.nan), np.full(m, np.nan)
    order = np.argsort(index, kind="stable")
    cuts = np.searchsorted(index[order], np.arange(m + 1))
    for b in range(m):
        chunk = lat[order[cuts[b] : cuts[b + 1]]]
        if len(chunk):
            p50[b], p99[b] = np.quantile(chunk, [0.5, 0.99])
    return p50, p99


def coarse_latency(
    end_ms: np.ndarray, lat: np.ndarray, completions: np.ndarray
) -> dict[str, Any] | None:
    """p50 and p99 of the requests completing in buckets of several seconds, when a typical
    second (``completions``: requests ending in each) holds fewer than ``MIN_PER_BUCKET`` (its
    p99 is then little more than its slowest request): ``{"bucket_s", "t_s", "p50_ms",
    "p99_ms"}``, or None when seconds do."""
    busy = completions[completions > 0]
    if not len(busy) or np.median(busy) >= MIN_PER_BUCKET:
        return None
    rate = float(np.median(busy))
    bucket_s = next((b for b in BUCKETS_S if rate * b >= MIN_PER_BUCKET), BUCKETS_S[-1])
    m = int(math.ceil(len(completions) / bucket_s))
    index = np.minimum((end_ms // (1000.0 * bucket_s)).astype(np.int64), m - 1)
    p50, p99 = _binned_p50_p99(index, lat, m)
    return {"bucket_s": bucket_s, "t_s": np.arange(m, dtype=float) * bucket_s,
            "p50_ms": p50, "p99_ms": p99}  # fmt: skip


def _streamed_requests(sim: Sim, n: int) -> _Requests:
    stream = sim.requests_stream

    def column(values, fill) -> np.ndarray:
        out = np.full(n, fill, dtype=float if isinstance(fill, float) else np.int64)
        got = np.asarray(values)[:n]
        out[: len(got)] = got
        return out

    per_second = {
        "arrivals": column(stream.arrivals, 0),
        "completions": column(stream.completions, 0),
        "p50_ms": column(stream.p50, math.nan),
        "p99_ms": column(stream.p99, math.nan),
        "errors": column(stream.errors, 0),
        "goodput": column(stream.goodput, 0),
    }
    return _Requests(
        list(stream.outcomes), _streamed_latency(stream.latency),
        _streamed_latency(stream.latency_ok), stream.latency.sample(), per_second,
    )  # fmt: skip


def _streamed_latency(hist: LatencyHistogram) -> dict[str, float | None]:
    out: dict[str, Any] = {"mean": hist.mean()}
    out.update({name: hist.quantile(q) for name, q in PERCENTILES.items()})
    out["max"] = hist.quantile(1.0)
    return out


def _latency(lat: np.ndarray) -> dict[str, float | None]:
    """Mean, percentiles and max of a latency sample (ms); None where it is empty."""
    out: dict[str, Any] = {"mean": float(lat.mean()) if len(lat) else None}
    out.update(_quantiles(lat, PERCENTILES))
    out["max"] = float(lat.max()) if len(lat) else None
    return out


def _service_summary(sim: Sim, svc, duration_s: float) -> dict[str, Any]:
    window_ms = duration_s * 1000.0
    utilization = limit = queue_mean = queue_p99 = in_service = None
    if svc.limited and len(sim.edges) == 2:
        i = sim.contended.index(svc)
        busy_ms = sim.edges[1][i][0] - sim.edges[0][i][0]
        queue_ms = sim.edges[1][i][1] - sim.edges[0][i][1]
        cap_ms = sim.edges[1][i][2] - sim.edges[0][i][2]
        # time-averaged busy / time-averaged workers (limit); the areas are sums of floats,
        # so a saturated pool can round to a hair above 1
        # float sums of busy areas: clamped to [0, 1] (rounding can leave -1e-17 or 1 + 1e-16)
        utilization = min(max(busy_ms / cap_ms, 0.0), 1.0) if cap_ms > 0 else None
        limit_ms = sim.edges[1][i][3] - sim.edges[0][i][3]
        limit = limit_ms / (window_ms * len(svc.instances))
        queue_mean = queue_ms / window_ms
        in_service = (busy_ms + queue_ms) / window_ms  # Little's L: waiting or being served
        queue_p99 = time_quantile(
            sim.queue_time_edges[0][i], sim.queue_time_edges[1][i], window_ms, 0.99
        )
    # Little's law: admitted calls (answered or cancelled; rejections never enter) per second
    # times their mean time at the service should equal the calls there, time-averaged.
    if svc.latency_hist is not None:  # streaming: the engine emptied latency_ms into it
        hist = svc.latency_hist
        answered, answered_ms = hist.count, hist.total_ms
        latency = {"mean": hist.mean(), "p50": hist.quantile(0.5), "p99": hist.quantile(0.99)}
    else:
        lat = np.frombuffer(svc.latency_ms, dtype=np.float32)
        answered, answered_ms = len(lat), float(lat.sum(dtype=np.float64))
        latency = {"mean": answered_ms / answered if answered else None}
        latency |= _quantiles(lat, {"p50": 0.5, "p99": 0.99})
    admitted = answered + svc.cancelled
    time_ms = (answered_ms + svc.cancelled_ms) / admitted if admitted else None
    out = {
        "calls": svc.calls,
        "calls_per_sec": svc.calls / duration_s,
        "utilization": utilization,
        "rejected": svc.rejected,
        "errors": svc.errors,
        "timeouts": svc.timeouts,
        "retries": svc.sent[1],
        "hedges": svc.sent[2],
        "first_tries": svc.calls - svc.sent[1] - svc.sent[2],
        "circuit_open": svc.circuit_open,
        "cancelled": svc.cancelled,
        "wasted": svc.wasted,
        "calls_by_cause": calls_by_cause(svc),
        "latency_ms": latency,
        # saturation: calls waiting for a worker (time-averaged, and the level exceeded 1% of
        # the window's time); null with unlimited workers
        "queue_mean": queue_mean,
        "queue_p99": queue_p99,
        "little": {
            "admitted_per_sec": admitted / duration_s,
            "time_in_service_ms": time_ms,
            "calls_in_service": in_service,  # measured L; null with unlimited workers
        },
        "backend": svc.leaf,
        "workers": svc.workers,
        "instances": len(svc.instances),
    }
    if svc.spec.concurrency is not None:
        out["concurrency_limit"] = limit  # the adaptive limit per instance, window average
    return out


def time_quantile(start: list[float], end: list[float], window_ms: float, q: float) -> int:
    """The ``q``-quantile of a time-weighted level (the queue length) over the window, from
    the time spent at each level >= 1 at the window's start and end (level 0: the rest)."""
    ms = np.asarray(end, dtype=float)
    ms[: len(start)] -= np.asarray(start, dtype=float)
    ms[0] = max(window_ms - ms[1:].sum(), 0.0)
    share = np.cumsum(ms) / max(ms.sum(), 1e-300)
    return int(np.searchsorted(share, q - 1e-12))


def _step_summary(st) -> dict[str, int]:
    """A step's window counters (attempts it sent and what became of them)."""
    return {
        "first_tries": st.sent[0],
        "retries": st.sent[1],
        "hedges": st.sent[2],
        "timeouts": st.timeouts,
        "rejected": st.rejected,
        "circuit_open": st.circuit_open,
        "cancelled": st.cancelled,
        "wasted": st.wasted,
    }


def _timeseries(sim: Sim, n: int, per_second: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    ops = np.zeros(n, dtype=np.int64)
    for svc in sim.svcs.values():
        if svc.leaf:
            per_s = np.asarray(svc.started_per_s[:n], dtype=np.int64)
            ops[: len(per_s)] += per_s
    ps = per_second
    table = {"t_s": np.arange(n, dtype=np.int64), "arrivals": ps["arrivals"],
             "completions": ps["completions"], "ops": ops, "p50_ms": ps["p50_ms"],
             "p99_ms": ps["p99_ms"], "errors": ps["errors"], "goodput": ps["goodput"]}  # fmt: skip
    snaps = sim.snapshots
    for i, svc in enumerate(sim.contended):
        if not svc.limited:
            continue  # unlimited workers, on the event path only for its policies
        busy, queued, cap, limits = (np.array([a[i][j] for _, a in snaps]) for j in range(4))
        util, queue, limit = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        m = min(n, len(snaps) - 1)
        if m > 0:
            with np.errstate(all="ignore"):  # a second with no capacity: NaN
                util[:m] = np.clip(np.diff(busy)[:m] / np.diff(cap)[:m], 0.0, 1.0)
            queue[:m] = np.diff(queued)[:m] / 1000.0
            limit[:m] = np.diff(limits)[:m] / 1000.0
        table[f"queue_{svc.name}"] = queue
        table[f"util_{svc.name}"] = util
        if svc.spec.concurrency is not None:
            table[f"limit_{svc.name}"] = limit  # adaptive limit summed over instances
    return table


def mean_half_width(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean of ``values`` (finite numbers, one per replication) and the half-width of its
    two-sided Student-t interval at ``confidence``; NaN where there is no value, and a NaN
    half-width for a single value (one run gives no interval)."""
    x = np.asarray(values, dtype=float)
    if not len(x):
        return math.nan, math.nan
    if len(x) == 1:
        return float(x[0]), math.nan
    from scipy import stats

    t = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1))
    return float(x.mean()), t * float(x.std(ddof=1)) / math.sqrt(len(x))


def calls_by_cause(svc) -> dict[str, int]:
    """The window calls a service served (took a worker: not rejected, not cancelled while
    waiting), by why they were made: ``wasted`` answered after a policy had given up on them
    or an ancestor (a timeout, a lost hedge or retry race, a deadline); of the rest,
    ``retries`` and ``hedges`` sent as (or below) a retry or hedge attempt, ``nominal`` the
    others (work a fan-in no longer needed is counted under its attempt's kind). The four
    add up to the calls served; what usage costs is split by them (results.cost)."""
    served = svc.calls - svc.rejected - svc.unstarted
    wasted = sum(svc.wasted_by_kind)
    retries = svc.served_by_kind[1] - svc.wasted_by_kind[1]
    hedges = svc.served_by_kind[2] - svc.wasted_by_kind[2]
    return {
        "nominal": served - retries - hedges - wasted,
        "retries": retries,
        "hedges": hedges,
        "wasted": wasted,
    }


def combine(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over replications of every figure, plus ``ci95``: Student-t 95% half-widths."""
    if len(summaries) == 1:
        return summaries[0]
    from scipy import stats

    t = float(stats.t.ppf(0.975, len(summaries) - 1))

    def merge(values: list[Any]) -> tuple[Any, Any]:
        first = values[0]
        if isinstance(first, dict):
            pairs = {k: merge([v[k] for v in values]) for k in first}
            return {k: p[0] for k, p in pairs.items()}, {
                k: p[1] for k, p in pairs.items() if p[1] is not None
            }
        if isinstance(first, bool) or not isinstance(first, (int, float)):
            return first, None
        if any(v is None for v in values):
            return None, None
        x = np.asarray(values, dtype=float)
        return float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(len(x)))

    mean, ci = merge(summaries)
    for key in ("scenario", "seed", "duration_s", "warmup_s"):
        mean[key] = summaries[0][key]
        ci.pop(key, None)
    mean["replications"] = len(summaries)
    mean["ci95"] = ci
    return mean
