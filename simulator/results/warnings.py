"""When a run's figures should not be taken as a steady-state answer (SPEC §4 ``warnings``).

Computed from the run's flat results (summary, per-second time series, window latencies) and,
when known, its scenario; each warning is ``{"kind", "service", "message"}`` (``service`` None
when it concerns the whole run). The same list goes to ``summary.json``, ``Result.warnings``,
the terminal after ``fansim run`` and the report. Kinds:

* ``unstable``: a service whose offered load reaches its capacity (utilization at or above
  ``UNSTABLE_UTILIZATION``, a leaf whose admitted calls × mean latency exceed its workers, or a
  queue still growing at the end of the window); its queue, and every latency above it, grow
  with run length;
* ``too_few_samples``: fewer than ``MIN_TAIL_SAMPLES`` requests above a shown percentile;
* ``warmup_too_short``: the window starts while queues are still filling (no warm-up at all
  with worker pools, or the window's first tenth much emptier than the rest at the same offered
  rate, by medians: a burst the scenario schedules later, and its drain, are not signs of a
  short warm-up);
* ``no_recovery``: the window ends answering far fewer requests than arrive, and far fewer than
  it did at its start: a collapse that did not heal (steady, intended load shedding is not one).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..scenario.arrivals import rate_segments
from .files import MIN_TAIL_SAMPLES
from .format import dig, fmt_num, fmt_pct, is_missing

if TYPE_CHECKING:
    from ..scenario.model import Scenario, Service

UNSTABLE_UTILIZATION = 0.95
# A queue counts as growing when its mean over the window's last quarter exceeds this many
# calls and twice its mean over the window's first quarter.
GROWING_QUEUE_CALLS = 5.0
# Warm-up: the window's first tenth holds less than this share of the rest's median queue.
FILLING_SHARE = 0.5
# No recovery: the last quarter answers less than this share of arrivals ...
RECOVERED_SHARE = 0.8
# ... and this much less (as a share of arrivals) than the first quarter did.
COLLAPSE_DROP = 0.2

Warning = dict[str, Any]


def leaf_pool(scenario: Scenario | None, name: str) -> tuple[Service, float] | None:
    """``(spec, mean latency in ms)`` of a leaf service with a fixed worker pool and a known
    mean latency (what a queueing formula covers), else None."""
    spec = scenario.services.get(name) if scenario is not None else None
    if spec is None or spec.steps or spec.workers is None or spec.concurrency is not None:
        return None
    try:
        return spec, float(spec.latency.mean())
    except (ValueError, NotImplementedError, ArithmeticError):
        return None


def offered_load(summary: Mapping[str, Any], scenario: Scenario | None, name: str) -> float | None:
    """Admitted calls/s × mean latency ÷ workers of a ``leaf_pool`` service: its utilization
    as theory predicts it, at or above 1 when it cannot keep up; None when not a leaf pool."""
    pool = leaf_pool(scenario, name)
    admitted = dig(summary, f"services.{name}.little.admitted_per_sec")
    if pool is None or is_missing(admitted):
        return None
    spec, mean_ms = pool
    return admitted * mean_ms / 1000.0 / (spec.workers * spec.instances)


def run_warnings(
    summary: Mapping[str, Any],
    timeseries: Mapping[str, np.ndarray],
    latencies_ms: np.ndarray,
    scenario: Scenario | None = None,
) -> list[Warning]:
    """Every warning for this run, unstable services first."""
    rows = _window_rows(summary, timeseries)
    unstable = _unstable(summary, timeseries, scenario, rows)
    return [
        *unstable,
        *_too_few_samples(_request_count(summary, latencies_ms)),
        *_warmup_too_short(summary, timeseries, scenario, rows, {w["service"] for w in unstable}),
        *_no_recovery(timeseries, rows),
    ]


def _warning(kind: str, message: str, service: str | None = None) -> Warning:
    return {"kind": kind, "service": service, "message": message}


def _window_rows(summary: Mapping[str, Any], timeseries: Mapping[str, np.ndarray]) -> np.ndarray:
    """Row indices of the time series inside the measured window."""
    t = timeseries.get("t_s")
    duration = summary.get("duration_s")
    if t is None or not len(t) or duration is None:
        return np.arange(0)
    warmup = float(summary.get("warmup_s") or 0.0)
    t = np.asarray(t, dtype=float)
    return np.flatnonzero((t >= warmup) & (t < warmup + float(duration)))


def _column(timeseries: Mapping[str, np.ndarray], name: str) -> np.ndarray | None:
    col = timeseries.get(name)
    return None if col is None else np.asarray(col, dtype=float)


def _quarter_means(values: np.ndarray) -> tuple[float, float]:
    """Mean over the first and the last quarter of ``values`` (NaN rows ignored)."""
    q = max(len(values) // 4, 1)
    with _quiet():
        return float(np.nanmean(values[:q])), float(np.nanmean(values[-q:]))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's "mean of empty slice" (a column all NaN is simply no evidence)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _unstable(summary, timeseries, scenario, rows) -> list[Warning]:
    out = []
    for name, svc in (summary.get("services") or {}).items():
        reasons = []
        util = svc.get("utilization")
        if not is_missing(util) and util >= UNSTABLE_UTILIZATION:
            reasons.append(f"its workers were {fmt_pct(util)} busy")
        load = offered_load(summary, scenario, name)
        if load is not None and load >= 1.0:
            reasons.append(f"admitted calls × mean latency need {fmt_pct(load)} of its workers")
        queue = _column(timeseries, f"queue_{name}")
        if queue is not None and len(rows) >= 8:
            first, last = _quarter_means(queue[rows])
            if last > GROWING_QUEUE_CALLS and last > 2 * first:
                reasons.append(
                    f"its queue grew from {fmt_num(first)} to {fmt_num(last)} calls "
                    "(first vs last quarter of the window)"
                )
        if reasons:
            out.append(
                _warning(
                    "unstable",
                    f"{name} is unstable: {'; '.join(reasons)}. Offered load reaches its "
                    "capacity, so its queue and the latencies above it grow with run length "
                    "rather than settle; add workers or instances, or cut the load reaching it.",
                    name,
                )
            )
    return out


def _request_count(summary: Mapping[str, Any], latencies_ms: np.ndarray) -> int:
    """Window requests behind the percentiles: every latency kept, or with streaming
    percentiles (where ``latencies_ms`` is only a sample) the summary's count."""
    if summary.get("percentiles") == "streaming":
        arrived = dig(summary, "requests.arrived") or 0
        return int(round(arrived * (summary.get("replications") or 1)))
    return int(np.isfinite(np.asarray(latencies_ms, dtype=float)).sum())


def _too_few_samples(n: int) -> list[Warning]:
    percentiles = (("p99", 0.99), ("p99.9", 0.999))
    thin = [(label, p) for label, p in percentiles if n * (1 - p) < MIN_TAIL_SAMPLES]
    if not n or not thin:
        return []
    label, p = thin[0]
    shown = " and ".join(label for label, _ in thin)
    need = int(np.ceil(MIN_TAIL_SAMPLES / (1 - thin[-1][1])))
    return [
        _warning(
            "too_few_samples",
            f"Too few samples for the {shown} shown: {n:,} requests leave about "
            f"{n * (1 - p):.1f} above the {label}, so a handful of requests set it. Run at "
            f"least {need:,} requests (longer duration_s, or replications) for a stable "
            f"{thin[-1][0]}.",
        )
    ]


def _same_rate_rows(scenario: Scenario | None, timeseries, rows: np.ndarray) -> np.ndarray:
    """The window rows whose scheduled arrival rate is the one at the window's start (all rows
    when the scenario is unknown or its rate is constant; none for a trace)."""
    if scenario is None or scenario.workload.arrivals in ("poisson", "constant"):
        return rows
    if scenario.workload.arrivals == "trace":
        return rows[:0]
    t = np.asarray(timeseries["t_s"], dtype=float)[rows]
    end = float(t[-1]) + 1.0
    segments = rate_segments(scenario.workload, end)
    rate = np.zeros(len(t))
    for a, b, rps in segments:
        rate[(t >= a) & (t < b)] = rps  # a second straddling two segments takes the later
    return rows[np.isclose(rate, rate[0])]


def _warmup_too_short(summary, timeseries, scenario, rows, unstable: set[str]) -> list[Warning]:
    names = [
        k.removeprefix("queue_")
        for k in timeseries
        if k.startswith("queue_") and k.removeprefix("queue_") not in unstable
    ]
    if not names:
        return []
    warmup = float(summary.get("warmup_s") or 0.0)
    if warmup == 0:
        return [
            _warning(
                "warmup_too_short",
                "No warm-up: the window starts with empty queues at "
                f"{', '.join(names)}, so early requests wait less than in steady state. "
                "Set warmup_s to a few seconds.",
            )
        ]
    if len(rows) < 10:
        return []
    head = rows[: max(len(rows) // 10, 1)]
    alike = _same_rate_rows(scenario, timeseries, rows)
    if len(alike) < 2 * len(head):
        return []
    filling = []
    for name in names:
        queue = _column(timeseries, f"queue_{name}")
        with _quiet():  # medians: a burst the scenario schedules, and its drain, are outliers
            early, rest = float(np.nanmedian(queue[head])), float(np.nanmedian(queue[alike]))
        if rest >= 1.0 and early < FILLING_SHARE * rest:
            filling.append((name, f"{name} (queue {fmt_num(early)} vs {fmt_num(rest)} calls)"))
    if not filling:
        return []
    return [
        _warning(
            "warmup_too_short",
            f"Warm-up too short ({fmt_num(warmup)} s): queues were still filling when the "
            f"window began at {', '.join(text for _, text in filling)}, medians of the first tenth "
            "of the window vs the whole at the same offered rate. Lengthen warmup_s.",
            filling[0][0] if len(filling) == 1 else None,
        )
    ]


def _no_recovery(timeseries, rows: np.ndarray) -> list[Warning]:
    arrivals, goodput = _column(timeseries, "arrivals"), _column(timeseries, "goodput")
    if len(rows) < 8 or arrivals is None or goodput is None:
        return []
    quarter = max(len(rows) // 4, 1)
    head, tail = rows[:quarter], rows[-quarter:]
    came, served = float(np.mean(arrivals[tail])), float(np.mean(goodput[tail]))
    if came <= 0 or served >= RECOVERED_SHARE * came:
        return []
    came_0, served_0 = float(np.mean(arrivals[head])), float(np.mean(goodput[head]))
    start_share = served_0 / came_0 if came_0 > 0 else 1.0
    if served / came > start_share - COLLAPSE_DROP:
        return []  # as bad at the start: steady shedding or overload, not a collapse
    return [
        _warning(
            "no_recovery",
            f"No recovery: over the window's last {len(tail)} s, {fmt_num(served)} requests/s "
            f"were answered ok or partial against {fmt_num(came)}/s arriving "
            f"({fmt_pct(served / came)}), down from {fmt_pct(start_share)} over its first "
            f"{len(head)} s.",
        )
    ]
