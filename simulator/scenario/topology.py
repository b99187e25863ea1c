"""What the call graph alone implies per request: calls and backend ops, with no retries,
hedges or errors (every call sent, every step run). The seed example: 30 calls, 20 ops."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Scenario, Step


def nominal_amplification(scenario: Scenario) -> dict[str, float]:
    """``calls_per_request``, ``ops_per_request`` and per-service ``calls`` per request."""

    @cache
    def below(name: str) -> tuple[tuple[str, float], ...]:
        """Calls per call to ``name``, by callee, including the call itself."""
        counts: dict[str, float] = {name: 1.0}
        for callee, n in _sent(scenario, scenario.services[name].steps):
            for svc, c in below(callee):
                counts[svc] = counts.get(svc, 0.0) + n * c
        return tuple(counts.items())

    per_service: dict[str, float] = {}
    for callee, n in _sent(scenario, scenario.request.steps):
        for svc, c in below(callee):
            per_service[svc] = per_service.get(svc, 0.0) + n * c
    ops = sum(c for svc, c in per_service.items() if not scenario.services[svc].steps)
    return {
        "calls_per_request": sum(per_service.values()),
        "ops_per_request": ops,
        "calls": per_service,
    }


def _sent(scenario: Scenario, steps: list[Step]) -> list[tuple[str, float]]:
    """(callee, calls sent) for each callee of a list of steps, ``repeat`` and fan-out included."""
    out = []
    for step in steps:
        for callee in step.callees:
            per_run = (
                scenario.services[callee].instances if step.fanout == "shards" else step.fanout
            )
            out.append((callee, float(per_run * step.repeat)))
    return out
