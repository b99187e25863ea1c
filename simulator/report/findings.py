"""What a reader should notice first: the report's key findings and its warnings.

Plain functions of the report's data (``ReportData``: the summary, the window's latencies,
the per-second time series and, when known, the scenario), each returning sentences.

Warnings say when a figure should not be trusted as a steady-state answer:

* **unstable**: a service whose offered load reaches its capacity (utilization at or above
  ``UNSTABLE_UTILIZATION``, a leaf whose admitted calls × mean latency exceed its workers,
  or a queue still growing at the end of the window); its queue, and every latency above
  it, grow with run length;
* **too few samples**: fewer than ``MIN_TAIL_SAMPLES`` requests above a shown percentile
  (p99, p99.9): that percentile is set by a handful of requests;
* **warm-up too short**: the measured window starts while queues are still filling (no
  warm-up at all with worker pools, or the window's first tenth is much emptier than the
  rest).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..results.files import MIN_TAIL_SAMPLES
from .crosscheck import offered_load
from .format import dig, fmt_ms, fmt_num, fmt_pct, fmt_sig, is_missing

if TYPE_CHECKING:
    from .data import ReportData

__all__ = ["key_findings", "warnings"]

UNSTABLE_UTILIZATION = 0.95
# A queue counts as growing when its mean over the window's last quarter exceeds this many
# calls and twice its mean over the window's first quarter.
GROWING_QUEUE_CALLS = 5.0
# Warm-up: the window's first tenth holds less than this share of the rest's mean queue.
FILLING_SHARE = 0.5


def _window_rows(data: ReportData) -> np.ndarray:
    """Row indices of the time series inside the measured window."""
    if data.n_seconds == 0 or data.window_end_s is None:
        return np.arange(0)
    t = np.asarray(data.timeseries["t_s"], dtype=float)
    return np.flatnonzero((t >= data.warmup_s) & (t < data.window_end_s))


def _quarter_means(values: np.ndarray) -> tuple[float, float]:
    """Mean over the first and the last quarter of ``values`` (NaN rows ignored)."""
    q = max(len(values) // 4, 1)
    with np.errstate(all="ignore"):
        return float(np.nanmean(values[:q])), float(np.nanmean(values[-q:]))


def _unstable(data: ReportData) -> dict[str, str]:
    """A warning per unstable service, by name."""
    out = {}
    rows = _window_rows(data)
    for name, svc in (data.summary.get("services") or {}).items():
        reasons = []
        util = svc.get("utilization")
        if not is_missing(util) and util >= UNSTABLE_UTILIZATION:
            reasons.append(f"its workers were {fmt_pct(util)} busy")
        load = offered_load(data, name)
        if load is not None and load >= 1.0:
            reasons.append(f"admitted calls × mean latency need {fmt_pct(load)} of its workers")
        queue = data.timeseries.get(f"queue_{name}")
        if queue is not None and len(rows) >= 8:
            first, last = _quarter_means(np.asarray(queue, dtype=float)[rows])
            if last > GROWING_QUEUE_CALLS and last > 2 * first:
                reasons.append(
                    f"its queue grew from {fmt_num(first)} to {fmt_num(last)} calls "
                    "(first vs last quarter of the window)"
                )
        if reasons:
            out[name] = (
                f"{name} is unstable: {'; '.join(reasons)}. Offered load reaches its capacity, "
                "so its queue and the latencies above it grow with run length rather than "
                "settle; add workers or instances, or cut the load reaching it."
            )
    return out


def _too_few_samples(data: ReportData) -> list[str]:
    n = int(np.isfinite(data.latencies_ms).sum())
    thin = [
        (label, p)
        for label, p in (("p99", 0.99), ("p99.9", 0.999))
        if n * (1 - p) < MIN_TAIL_SAMPLES
    ]
    if not n or not thin:
        return []
    label, p = thin[0]
    shown = " and ".join(label for label, _ in thin)
    need = int(np.ceil(MIN_TAIL_SAMPLES / (1 - thin[-1][1])))
    return [
        f"Too few samples for the {shown} shown: {n:,} requests leave about "
        f"{n * (1 - p):.1f} above the {label}, so a handful of requests set it. Run at least "
        f"{need:,} requests (longer duration_s, or replications) for a stable {thin[-1][0]}."
    ]


def _warmup_too_short(data: ReportData, unstable: set[str]) -> list[str]:
    names = [n for n in data.services_with("queue_") if n not in unstable]
    if not names:
        return []
    if data.warmup_s == 0:
        return [
            "No warm-up: the window starts with empty queues at "
            f"{', '.join(names)}, so early requests wait less than in steady state. "
            "Set warmup_s to a few seconds."
        ]
    rows = _window_rows(data)
    if len(rows) < 10:
        return []
    head = rows[: max(len(rows) // 10, 1)]
    filling = []
    for name in names:
        queue = np.asarray(data.timeseries[f"queue_{name}"], dtype=float)
        with np.errstate(all="ignore"):
            early, rest = float(np.nanmean(queue[head])), float(np.nanmean(queue[rows]))
        if rest >= 1.0 and early < FILLING_SHARE * rest:
            filling.append(f"{name} (queue {fmt_num(early)} vs {fmt_num(rest)} calls)")
    if not filling:
        return []
    return [
        f"Warm-up too short ({fmt_num(data.warmup_s)} s): queues were still filling when the "
        f"window began at {', '.join(filling)}, first tenth of the window vs the whole. "
        "Lengthen warmup_s."
    ]


def warnings(data: ReportData) -> list[str]:
    """Why some figures may mislead: unstable services, thin tails, a short warm-up."""
    unstable = _unstable(data)
    return [*unstable.values(), *_too_few_samples(data), *_warmup_too_short(data, set(unstable))]


def key_findings(data: ReportData) -> list[str]:
    """A few sentences: outcomes, tail, fan-out, load, saturation, recovery."""
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

    recovery = _end_of_window(data)
    if recovery:
        out.append(recovery)
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


def _end_of_window(data: ReportData) -> str | None:
    """A sentence when the window ends with far less goodput than arrivals (no recovery)."""
    rows = _window_rows(data)
    if len(rows) < 8 or "goodput" not in data.timeseries:
        return None
    tail = rows[-max(len(rows) // 4, 1) :]
    arrivals = float(np.mean(np.asarray(data.timeseries["arrivals"], dtype=float)[tail]))
    goodput = float(np.mean(np.asarray(data.timeseries["goodput"], dtype=float)[tail]))
    if arrivals <= 0 or goodput >= 0.8 * arrivals:
        return None
    return (
        f"No recovery: over the window's last {len(tail)} s, {fmt_num(goodput)} requests/s "
        f"were answered ok or partial against {fmt_num(arrivals)}/s arriving "
        f"({fmt_pct(goodput / arrivals)})."
    )
