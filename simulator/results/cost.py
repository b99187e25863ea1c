"""What a run costs in money: ``summary.json``'s ``cost``, from the services' prices.

A service's ``cost`` prices its provisioned **capacity** (``per_instance_hour`` × its
``instances``, whatever the load) and its **usage** (``per_million_calls`` × the calls it
served: rejected calls and calls cancelled before a worker took them are not billed). Usage is
split by why the calls were made (``summary.calls_by_cause``): nominal, retries, hedges and
wasted work (calls answered after their caller had given up); ``policies`` is the last three
together, what the calling-side policies add.

Rates are the measured window's (calls served ÷ ``duration_s``), held for a month of
``HOURS_PER_MONTH`` hours; ``per_million_requests`` divides the hourly cost by the requests
arriving per hour (``requests.arrived`` ÷ ``duration_s``). Only priced services are listed;
the totals are over them.
"""

from __future__ import annotations

from typing import Any

from ..scenario.model import Scenario

HOURS_PER_MONTH = 730.0
CAUSES = ("nominal", "retries", "hedges", "wasted")
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def cost_summary(scenario: Scenario, summary: dict[str, Any]) -> dict[str, Any] | None:
    """The ``cost`` section for a summary whose ``services`` hold ``calls_by_cause``; None
    when no service has a price."""
    priced = {name: s for name, s in scenario.services.items() if s.cost is not None}
    if not priced:
        return None
    duration_s = summary["duration_s"]
    requests_per_hour = summary["requests"]["arrived"] / duration_s * 3600.0
    services = {}
    for name, spec in priced.items():
        cost = spec.cost
        assert cost is not None
        capacity_hour = (cost.per_instance_hour or 0.0) * spec.instances
        calls = summary["services"][name]["calls_by_cause"]
        per_call = (cost.per_million_calls or 0.0) / 1e6
        usage_hour = {c: per_call * calls[c] / duration_s * 3600.0 for c in CAUSES}
        services[name] = _figures(capacity_hour, usage_hour, requests_per_hour)
    capacity = sum(s["hourly"]["capacity"] for s in services.values())
    usage = {c: sum(s["hourly"]["usage_by_cause"][c] for s in services.values()) for c in CAUSES}
    total = _figures(capacity, usage, requests_per_hour)
    for s in services.values():
        del s["hourly"]
    del total["hourly"]
    return {
        "currency": scenario.currency,
        "hours_per_month": HOURS_PER_MONTH,
        **total,
        "services": services,
    }


def _figures(
    capacity_hour: float, usage_hour: dict[str, float], requests_per_hour: float
) -> dict[str, Any]:
    hourly = {
        "capacity": capacity_hour,
        "usage": sum(usage_hour.values()),
        "usage_by_cause": dict(usage_hour),
    }
    hourly["total"] = hourly["capacity"] + hourly["usage"]
    hourly["policies"] = sum(usage_hour[c] for c in ("retries", "hedges", "wasted"))

    def scaled(factor: float) -> dict[str, Any]:
        return {
            k: {c: x * factor for c, x in v.items()} if isinstance(v, dict) else v * factor
            for k, v in hourly.items()
        }

    per_million = scaled(1e6 / requests_per_hour) if requests_per_hour else None
    return {
        "hourly": hourly,
        "per_month": scaled(HOURS_PER_MONTH),
        "per_million_requests": per_million,
    }


def money(x: float | None, currency: str) -> str:
    """An amount with its currency's symbol (or code): $1,240, €12.50, CHF 3."""
    if x is None:
        return "—"
    symbol = SYMBOLS.get(currency)
    digits = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"
    return f"{symbol}{digits}" if symbol else f"{currency} {digits}"
