"""What a reader should notice first: the report's key findings and its warnings.

Plain functions of the report's data (``ReportData``: the summary, the window's latencies,
the per-second time series and, when known, the scenario), each returning sentences. The
warnings (unstable services, thin tails, a short warm-up, no recovery) are the run's own,
computed with its results (:mod:`simulator.results.warnings`), so the terminal, summary.json
and the report say the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..results.format import dig, fmt_ms, fmt_num, fmt_pct, fmt_sig, is_missing
from ..results.tail import headline as tail_headline
from ..results.warnings import run_warnings

if TYPE_CHECKING:
    from .data import ReportData

__all__ = ["key_findings", "warnings"]


def warnings(data: ReportData) -> list[str]:
    """Why some figures may mislead (:mod:`simulator.results.warnings`): the run's own list
    from its summary, or computed from the report's data when the summary has none."""
    found = data.summary.get("warnings")
    if found is None:
        found = run_warnings(data.summary, data.timeseries, data.latencies_ms, data.scenario)
    return [w["message"] for w in found]


def key_findings(data: ReportData) -> list[str]:
    """A few sentences: outcomes, tail, fan-out, load, saturation, policies."""
    s = data.summary
    out = []
    arrived = dig(s, "requests.arrived")
    if arrived:
        shares = [
            f"{fmt_pct(dig(s, f'requests.{k}') / arrived)} {label}"
            for k, label in (("ok", "ok"), ("partial", "partial"), ("failed", "failed"))
            + (("rejected", "rejected"),)
            if dig(s, f"requests.{k}")
        ]
        out.append(f"Of {fmt_num(arrived)} requests, {', '.join(shares) or 'none answered'}.")

    p50, p99, p999 = (dig(s, f"latency_ms.{k}") for k in ("p50", "p99", "p999"))
    if not is_missing(p50) and not is_missing(p99):
        tail = f"Tail: p99 {fmt_ms(p99)} ms"
        if p50 > 0:
            tail += f" is {p99 / p50:.1f}× the median ({fmt_ms(p50)} ms)"
        if not is_missing(p999):
            tail += f"; p99.9 {fmt_ms(p999)} ms"
        out.append(tail + ".")

    waited = tail_headline(s.get("tail_attribution") or {}, "p99")
    if waited:
        out.append(waited)

    fanout = _fanout_sentence(data)
    if fanout:
        out.append(fanout)

    load = _load_sentence(s)
    if load:
        out.append(load)

    limited = {
        name: svc
        for name, svc in (s.get("services") or {}).items()
        if not is_missing(svc.get("utilization"))
    }
    if limited:
        name, svc = max(limited.items(), key=lambda kv: kv[1]["utilization"])
        busiest = f"Busiest service: {name}, {fmt_pct(svc['utilization'])} busy"
        details = []
        queue_p99 = svc.get("queue_p99")
        if queue_p99 == 0:
            details.append("its queue was empty 99% of the time")
        elif not is_missing(queue_p99):
            details.append(f"queue p99 {fmt_num(queue_p99)} calls")
        if svc.get("rejected"):
            details.append(f"{fmt_num(svc['rejected'])} calls rejected")
        out.append(busiest + (f" ({', '.join(details)})" if details else "") + ".")

    out += _policy_sentences(data)
    return out


def _fanout_sentence(data: ReportData) -> str | None:
    """For the request's widest wait-for-all fan-out: one call's p50 and p99 beside the
    request's p50, the fan-out tail in one line."""
    if data.scenario is None:
        return None
    widest = None
    for step in data.scenario.request.steps:
        n = data.scenario.calls_in(step)
        if n > 1 and data.scenario.required(step) == n and len(step.callees) == 1:
            if widest is None or n > widest[0]:
                widest = (n, step.callees[0])
    if widest is None:
        return None
    n, callee = widest
    s = data.summary
    call_p50, call_p99 = (dig(s, f"services.{callee}.latency_ms.{k}") for k in ("p50", "p99"))
    p50 = dig(s, "latency_ms.p50")
    if any(is_missing(x) for x in (call_p50, call_p99, p50)):
        return None
    return (
        f"Fan-out: each request waits for the slowest of {n} calls to {callee}. One call's "
        f"median is {fmt_ms(call_p50)} ms and its p99 {fmt_ms(call_p99)} ms; the request's "
        f"median is {fmt_ms(p50)} ms."
    )


def _load_sentence(s) -> str | None:
    """Calls and backend ops per request against the topology, and what retries and hedges
    added: 'Load: 4.69 calls per request (topology: 2) and 1.18 backend ops (topology: 1;
    retries add 0.539, +53.9%), 1,715 ops/s.'"""
    parts = []
    for key, what in (("calls_per_request", "calls"), ("ops_per_request", "backend ops")):
        value = dig(s, f"amplification.{key}")
        if is_missing(value):
            return None
        nominal = dig(s, f"amplification.nominal_{key}")
        text = f"{fmt_num(value)} {what}" + (" per request" if key.startswith("calls") else "")
        notes = [] if is_missing(nominal) else [f"topology: {fmt_num(nominal)}"]
        if key == "ops_per_request":
            for kind in ("retries", "hedges"):
                added = dig(s, f"amplification.ops_split_per_request.{kind}")
                if added:
                    share = f", +{fmt_pct(added / nominal)}" if nominal else ""
                    notes.append(f"{kind} add {fmt_sig(added, 3)}{share}")
        parts.append(text + (f" ({'; '.join(notes)})" if notes else ""))
    ops_s = dig(s, "amplification.ops_per_sec")
    return f"Load: {' and '.join(parts)}, {fmt_num(ops_s)} ops/s."


def _step_target(data: ReportData, name: str) -> str:
    """'request → backend' for the step ``request.steps.0``, from the scenario when known."""
    owner, _, index = name.rpartition(".steps.")
    caller = owner.removeprefix("services.")
    if data.scenario is None:
        return name
    steps = (
        data.scenario.request.steps if owner == "request" else data.scenario.services[caller].steps
    )
    return f"{caller} → {', '.join(steps[int(index)].callees)}"


def _policy_sentences(data: ReportData) -> list[str]:
    """What each step's policies sent and what became of it: the cost of a policy."""
    out = []
    for name, st in (data.summary.get("steps") or {}).items():
        first = st.get("first_tries") or 0
        sent = [
            f"{fmt_num(st[k])} {k}"
            + (f" (+{fmt_pct(st[k] / first)} of first tries)" if first else "")
            for k in ("retries", "hedges")
            if st.get(k)
        ]
        fates = [
            f"{fmt_num(st[k])} {label}"
            for k, label in (
                ("timeouts", "timed out"),
                ("rejected", "rejected"),
                ("circuit_open", "refused by an open breaker"),
                ("cancelled", "cancelled"),
                ("wasted", "answered after the caller stopped waiting (wasted)"),
            )
            if st.get(k)
        ]
        if not sent and not fates:
            continue
        text = f"Policies at {_step_target(data, name)}: {fmt_num(first)} first tries"
        text += "".join(f", {x}" for x in sent)
        if fates:
            text += f"; of all attempts {', '.join(fates)}"
        out.append(text + ".")
    return out
