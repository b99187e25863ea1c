"""``tail_attribution`` in summary.json: which service the slowest window requests waited on,
and where their time went (the critical paths the engine kept, engine.tail).

For the window's slowest 1% of requests (``p99``) and slowest 0.1% (``p99.9``, when that is at
least ``MIN_REQUESTS`` requests), with ``threshold_ms`` the fastest of them:

* ``waited_on``: the share of them whose critical path's largest own time (queueing plus own
  latency, downstream calls excluded) was at each service; ``none`` when a request's path
  reached no service (a deadline before any answer);
* ``time_share``: the share of their summed latency spent queueing for workers, in failed
  attempts (timed out, errors, refusals before the attempt that counted, or all of them when
  none did), in retry backoff, waiting for a hedge to be sent, and the rest in service;
* ``mean_ms``: the same split as mean milliseconds per request.

Every key is present in every run (figures ``None`` when too few requests), so replications
combine figure by figure. Streaming percentiles keep the same paths.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .format import fmt_ms

if TYPE_CHECKING:
    from ..engine.sim import Sim

LEVELS = {"p99": 0.99, "p99.9": 0.999}
MIN_REQUESTS = 10  # fewer requests above a percentile: no attribution for it
PARTS = ("queueing", "service", "failed_attempts", "backoff", "hedge_delay")
NONE = "none"


def tail_attribution(sim: Sim, window_requests: int) -> dict[str, Any]:
    """The ``tail_attribution`` figures of one run with ``window_requests`` requests: for each
    level, its slowest ``ceil((1 - q) x window_requests)`` requests (by rank, so that a
    latency many requests share, such as a timeout, still yields the right count)."""
    slowest = sorted(sim.tail.entries, reverse=True)  # (latency_ms, order, path)
    names = [*sim.svcs, NONE]
    out = {}
    for level, q in LEVELS.items():
        count = math.ceil(round((1.0 - q) * window_requests, 9))
        out[level] = _attribute(slowest[:count], names)
    return out


def _attribute(entries: list, names: list[str]) -> dict[str, Any]:
    n = len(entries)
    threshold = entries[-1][0] if entries else None  # the fastest of them
    if n < MIN_REQUESTS:
        return {
            "threshold_ms": threshold,
            "requests": n,
            "waited_on": dict.fromkeys(names),
            "time_share": dict.fromkeys(PARTS),
            "mean_ms": dict.fromkeys(PARTS),
        }
    latency = np.array([e[0] for e in entries])
    paths = [e[2] or (-1, 0.0, 0.0, 0.0, 0.0, 0.0) for e in entries]
    top = np.array([p[0] for p in paths])
    parts = np.array([p[2:6] for p in paths], dtype=float)  # queue, failed, backoff, hedge
    service = np.maximum(latency - parts.sum(axis=1), 0.0)
    columns = {
        "queueing": parts[:, 0],
        "service": service,
        "failed_attempts": parts[:, 1],
        "backoff": parts[:, 2],
        "hedge_delay": parts[:, 3],
    }
    total = float(latency.sum())
    counts = np.bincount(top + 1, minlength=len(names))  # index -1 (none) first
    waited = {name: float(counts[i + 1]) / n for i, name in enumerate(names[:-1])}
    waited[NONE] = float(counts[0]) / n
    return {
        "threshold_ms": threshold,
        "requests": n,
        "waited_on": waited,
        "time_share": {k: float(v.sum()) / total if total else None for k, v in columns.items()},
        "mean_ms": {k: float(v.mean()) for k, v in columns.items()},
    }


def headline(attribution: dict[str, Any], level: str = "p99") -> str | None:
    """One line for a planner: "The slowest 1% (602 requests, 122 ms or more): 62% waited
    on inventory, 33% on recommendations; their time was 99% service, 1% queueing." None when
    there is no attribution at that level."""
    figures = attribution.get(level) if attribution else None
    if not figures or figures["waited_on"].get(NONE) is None:
        return None  # too few requests (in some replication)
    waited = sorted(((v, k) for k, v in figures["waited_on"].items() if v), reverse=True)
    parts = sorted(((v, k) for k, v in figures["time_share"].items() if v), reverse=True)
    who = [f"{v:.0%} {'on ' if i else 'waited on '}"
           f"{'no service (a deadline came first)' if k == NONE else k}"
           for i, (v, k) in enumerate(waited[:2]) if v >= 0.005]  # fmt: skip
    how = [f"{v:.0%} {k.replace('_', ' ')}" for v, k in parts[:2] if v >= 0.005]
    share = "1%" if level == "p99" else "0.1%"
    return (
        f"The slowest {share} ({figures['requests']:,.0f} requests, "
        f"{fmt_ms(figures['threshold_ms'])} ms or more): {', '.join(who)}; "
        f"their time was {', '.join(how)}."
    )
