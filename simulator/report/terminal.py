"""The run's summary on a terminal: the table ``fansim run`` prints (80 columns), then its
warnings. Rates and shares only in the services table: rejected and errors as shares of each
service's calls, never window totals beside per-second rates."""

from __future__ import annotations

from ..results.cost import money


def print_warnings(warnings: list[dict], console) -> None:
    """The run's warnings, one paragraph each, after the summary table."""
    for w in warnings:
        console.print(f"[bold yellow]warning[/] ({w['kind']}): {w['message']}", highlight=False)


def print_summary(summary: dict, console) -> None:
    """The headline figures and the per-service table, as on stdout after ``fansim run``."""
    from rich.table import Table

    req, lat, amp = summary["requests"], summary["latency_ms"], summary["amplification"]
    ci = summary.get("ci95", {})

    def ms(key: str) -> str:
        v = lat.get(key)
        if v is None:
            return "—"
        half = ci.get("latency_ms", {}).get(key)
        return f"{v:,.2f}" + (f" ± {half:.2f}" if half is not None else "")

    head = Table(title=f"{summary['scenario']} (seed {summary['seed']})", show_header=False)
    head.add_row(
        "requests",
        f"{req['arrived']:,.0f} arrived: {req['ok']:,.0f} ok, "
        f"{req['partial']:,.0f} partial, {req['failed']:,.0f} failed, "
        f"{req['rejected']:,.0f} rejected",
    )
    head.add_row(
        "throughput",
        f"{summary['throughput_rps']:,.1f} rps (offered {summary.get('offered_rps', 0):,.1f})",
    )
    names = {"p999": "p99.9"}
    rows = (("latency ms", ("mean", "p50", "p90")), ("tail ms", ("p99", "p999", "max")))
    for label, keys in rows:  # two rows, so that the table fits 80 columns
        head.add_row(label, "  ".join(f"{names.get(k, k)} {ms(k)}" for k in keys))
    cpr, opr = amp["calls_per_request"], amp["ops_per_request"]
    head.add_row(
        "per request",
        f"{cpr or 0:,.2f} calls, {opr or 0:,.2f} ops "
        f"(topology: {amp['nominal_ops_per_request']:,.0f} ops)",
    )
    head.add_row("backend ops/s", f"{amp['ops_per_sec']:,.0f}")
    if summary.get("cost"):
        head.add_row("cost / month", monthly_cost(summary["cost"]))
    console.print(head)
    # rates and shares only (no window totals beside per-second rates): rejected and errors
    # as shares of the service's calls
    table = Table(title="services (rates, and shares of each service's calls)")
    for col in ("service", "calls/s", "util", "rejected", "errors", "p50 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "service" else "right")

    def share(count: float, calls: float) -> str:
        return "0" if not count else f"{count / calls:.1%}" if calls else "—"

    for name, s in summary["services"].items():
        util = "—" if s["utilization"] is None else f"{s['utilization']:.1%}"
        p50, p99 = s["latency_ms"]["p50"], s["latency_ms"]["p99"]
        table.add_row(
            name,
            f"{s['calls_per_sec']:,.0f}",
            util,
            share(s["rejected"], s["calls"]),
            share(s["errors"], s["calls"]),
            "—" if p50 is None else f"{p50:,.2f}",
            "—" if p99 is None else f"{p99:,.2f}",
        )
    console.print(table)


def monthly_cost(cost: dict) -> str:
    """ "$2,361 (capacity $1,460, usage $901; policies add $346, 15%)": a month at the window's
    rates (results.cost)."""
    month, cur = cost["per_month"], cost["currency"]
    text = (
        f"{money(month['total'], cur)} (capacity {money(month['capacity'], cur)}, "
        f"usage {money(month['usage'], cur)}"
    )
    if month["policies"]:
        share = month["policies"] / month["total"] if month["total"] else 0.0
        text += f"; policies add {money(month['policies'], cur)}, {share:.0%}"
    return text + ")"
