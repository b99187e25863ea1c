"""The report's theory cross-checks: what ``simulator.analytic`` predicts beside what the run
measured, wherever a closed form applies.

Each check is a ``Check`` row. Which checks appear depends on the scenario:

* always: backend ops/s against the topology's arithmetic (offered rps × ops per request),
  calls per request, and each service's calls/s against what the topology implies;
* every service with a worker pool: Little's law, L (calls waiting or in service,
  time-averaged) against λW (admitted calls/s × their mean time at the service);
* a leaf service with fixed workers: its utilization from its admitted calls × its mean
  latency; with exponential latency also M/M/c (mean time at the service) or, with a
  ``queue_limit``, M/M/c/K (share of calls rejected). These assume Poisson arrivals at the
  service: exact with one call per request, a Poisson workload and no retries; fan-out,
  bursts and retries make arrivals burstier, so the run then waits longer than predicted;
* a contention-free scenario (no worker limits, policies, deadline or errors): the request
  latency's mean and percentiles from the numerical closed form of its call tree.

The differences are shown, not judged: a queue check near saturation, or one whose
assumptions the note says do not hold, can differ by more than sampling noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import analytic
from ..results.format import dig, fmt_ms, fmt_num, fmt_pct, fmt_sig, fmt_signed, is_missing
from ..results.warnings import leaf_pool, offered_load

if TYPE_CHECKING:
    from .data import ReportData

__all__ = ["Check", "cross_checks"]


@dataclass(frozen=True)
class Check:
    check: str
    theory: str  # the formula or model used
    predicted: str
    measured: str
    difference: str
    note: str = ""


def _difference(predicted: float | None, measured: float | None) -> str:
    if is_missing(predicted) or is_missing(measured):
        return "—"
    if predicted == 0:
        return "0" if measured == 0 else "—"
    if measured == predicted:
        return "0%"
    return fmt_signed(100 * (measured - predicted) / abs(predicted), "%")


def _row(check, theory, predicted, measured, fmt=fmt_num, note="") -> Check:
    diff = _difference(predicted, measured)
    return Check(check, theory, fmt(predicted), fmt(measured), diff, note)


def _fmt_share(x: float | None) -> str:
    return fmt_pct(x, 2)  # two decimals: theory rows compare fine differences


def _topology(data: ReportData) -> list[Check]:
    s = data.summary
    offered = s.get("offered_rps")
    nominal_ops = dig(s, "amplification.nominal_ops_per_request")
    rows = []
    if not is_missing(offered) and not is_missing(nominal_ops):
        rows.append(
            _row(
                "backend ops/s",
                f"offered rps × ops per request = {fmt_num(offered)} × {fmt_num(nominal_ops)}",
                offered * nominal_ops,
                dig(s, "amplification.ops_per_sec"),
                note="retries, hedges and errors move it off the arithmetic",
            )
        )
    rows.append(
        _row(
            "calls per request",
            "topology (fan-out × repeat along each path)",
            dig(s, "amplification.nominal_calls_per_request"),
            dig(s, "amplification.calls_per_request"),
        )
    )
    if data.scenario is not None and not is_missing(offered):
        per_request = data.nominal_calls
        for name in s.get("services") or {}:
            rows.append(
                _row(
                    f"{name}: calls/s",
                    f"offered rps × {fmt_num(per_request.get(name, 0.0))} calls per request",
                    offered * per_request.get(name, 0.0),
                    dig(s, f"services.{name}.calls_per_sec"),
                )
            )
    return rows


def _little(data: ReportData) -> list[Check]:
    rows = []
    for name, svc in (data.summary.get("services") or {}).items():
        lam = dig(svc, "little.admitted_per_sec")
        w_ms = dig(svc, "little.time_in_service_ms")
        l_measured = dig(svc, "little.calls_in_service")
        if is_missing(l_measured) or is_missing(lam) or is_missing(w_ms):
            continue
        rows.append(
            _row(
                f"{name}: Little's law L = λW",
                f"λ {fmt_num(lam)} calls/s × W {fmt_ms(w_ms)} ms",
                lam * w_ms / 1000.0,
                l_measured,
                fmt=lambda x: fmt_sig(x, 4),
                note="L: calls waiting or in service, time-averaged over the window",
            )
        )
    return rows


def _queues(data: ReportData) -> list[Check]:
    rows = []
    for name, svc in (data.summary.get("services") or {}).items():
        pool = leaf_pool(data.scenario, name)
        if pool is None:
            continue
        spec, mean_ms = pool
        load = offered_load(data.summary, data.scenario, name)
        if load is not None:
            rows.append(
                _row(
                    f"{name}: utilization",
                    f"admitted calls/s × mean latency {fmt_ms(mean_ms)} ms ÷ "
                    f"{spec.workers * spec.instances} workers",
                    load,
                    svc.get("utilization"),
                    fmt=_fmt_share,
                    note="cancelled calls free their worker early",
                )
            )
        if spec.latency.dist != "exponential" or spec.instances != 1:
            continue
        note = "assumes Poisson arrivals at the service" + _poisson_caveat(data, name)
        calls = svc.get("calls_per_sec")
        if spec.queue_limit is not None and not is_missing(calls) and calls > 0:
            blocked = analytic.mmck_blocking_probability(
                calls, mean_ms, spec.workers, spec.workers + spec.queue_limit
            )
            measured = svc["rejected"] / svc["calls"] if svc.get("calls") else None
            rows.append(
                _row(
                    f"{name}: rejected share",
                    f"M/M/{spec.workers}/{spec.workers + spec.queue_limit}",
                    blocked,
                    measured,
                    fmt=_fmt_share,
                    note=note,
                )
            )
        elif load is not None and 0.0 < load < 1.0:  # 0: a service no call reached
            admitted = svc["little"]["admitted_per_sec"]
            q = analytic.mmc(admitted, mean_ms, spec.workers)
            rows.append(
                _row(
                    f"{name}: mean time at the service",
                    f"M/M/{spec.workers} (Erlang C), ρ = {q.utilization:.3f}",
                    q.mean_sojourn_ms,
                    dig(svc, "latency_ms.mean"),
                    fmt=fmt_ms,
                    note=note,
                )
            )
    return rows


def _poisson_caveat(data: ReportData, name: str) -> str:
    """Why arrivals at ``name`` may not be Poisson, or '' when they are."""
    scenario = data.scenario
    reasons = []
    if scenario.workload.arrivals != "poisson":
        reasons.append(f"{scenario.workload.arrivals} workload")
    if data.nominal_calls.get(name, 0.0) != 1.0:
        reasons.append("fan-out sends calls in batches")
    if any(dig(data.summary, f"services.{name}.{k}") for k in ("retries", "hedges")):
        reasons.append("retries and hedges add correlated calls")
    return f"; not here ({', '.join(reasons)})" if reasons else ""


def _request_latency(data: ReportData) -> list[Check]:
    if data.scenario is None:
        return []
    prediction = analytic.contention_free_latency(data.scenario)
    if prediction is None:
        return []
    s = data.summary
    theory = "call tree: order statistics and sums of the latency distributions"
    rows = [
        _row(
            "request latency: mean",
            theory,
            prediction.mean_ms,
            dig(s, "latency_ms.mean"),
            fmt=fmt_ms,
        )
    ]
    for label, key, q in (("p50", "p50", 0.5), ("p99", "p99", 0.99), ("p99.9", "p999", 0.999)):
        rows.append(
            _row(
                f"request latency: {label}",
                theory,
                prediction.quantile_ms(q),
                dig(s, f"latency_ms.{key}"),
                fmt=fmt_ms,
            )
        )
    return rows


def cross_checks(data: ReportData) -> list[Check]:
    """Every check that applies to this run, in page order."""
    return _request_latency(data) + _topology(data) + _little(data) + _queues(data)
