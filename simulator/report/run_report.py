"""Run report: one self-contained ``report.html`` embedding the PNG charts.

The report reads only the run's flat results (:class:`~.data.ReportData`: the summary dict,
the latency array, the per-second time series, and the scenario) and never the engine. This
module owns the tables and the page; it is built from small pieces so a later section is one
more function, not an edit in the middle of a long one:

* each chart is a function in :mod:`.charts` listed in its ``SECTIONS`` (the call graph, which
  needs the scenario, is :mod:`.callgraph`);
* each table is a function building plain rows for the template; the key findings and
  warnings are in :mod:`.findings`, the theory cross-checks in :mod:`.crosscheck`;
* ``templates/report.html.j2`` has one ``{% block %}`` per section.

jinja2 is imported inside the function that uses it (and matplotlib only inside the drawing
functions), so importing this module costs nothing.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..results.cost import money
from ..results.files import write_atomic
from ..results.format import dig, fmt_ms, fmt_num, fmt_pct, fmt_sig, is_missing
from ..results.tail import headline as tail_headline
from .callgraph import chart as call_graph_chart
from .charts import draw_charts
from .crosscheck import cross_checks
from .data import ReportData, as_timeseries
from .figure import Chart
from .findings import key_findings, warnings
from .html import environment

if TYPE_CHECKING:
    from ..scenario.model import Scenario

__all__ = ["REPORT_FILENAME", "render_html", "write_report"]

REPORT_FILENAME = "report.html"
TEMPLATE_NAME = "report.html.j2"


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Cell:
    """A formatted figure and, with replications, its formatted 95% half-width."""

    text: str
    ci: str | None = None
    tone: str = ""  # "warm" or "hot": a utilization near or at saturation, shaded in the table


@dataclass(frozen=True)
class Row:
    label: str
    cell: Cell
    unit: str = ""
    note: str = ""


@dataclass(frozen=True)
class TableGroup:
    title: str
    rows: list[Row]


def _cell(summary: Mapping[str, Any], path: str, fmt: Callable[[Any], str]) -> Cell:
    ci = dig(summary.get("ci95"), path)
    return Cell(fmt(dig(summary, path)), None if is_missing(ci) else fmt(ci))


def _share(part: Any, whole: Any) -> str:
    """``part`` as a share of ``whole``; small shares keep two significant digits."""
    if is_missing(part) or is_missing(whole) or not whole:
        return ""
    pct = 100.0 * float(part) / float(whole)
    text = f"{pct:.1f}" if pct == 0 or abs(pct) >= 0.1 else fmt_sig(pct, 2)
    return f"{text}% of arrived"


def _vs_nominal(summary: Mapping[str, Any], key: str) -> tuple[Cell, str, str]:
    """``amplification.<key>`` with a note comparing it to ``nominal_<key>`` when known."""
    value = dig(summary, f"amplification.{key}")
    nominal = dig(summary, f"amplification.nominal_{key}")
    note = ""
    if not is_missing(nominal):
        note = f"nominal {fmt_num(nominal)}"
        if not is_missing(value) and nominal:
            note += f" (×{value / nominal:.2f})"
    return _cell(summary, f"amplification.{key}", fmt_num), "", note


def headline_groups(data: ReportData) -> list[TableGroup]:
    """The headline figures, grouped for the cards at the top of the report."""
    s = data.summary
    arrived = dig(s, "requests.arrived")

    load = TableGroup(
        "Load",
        [
            Row("Offered", _cell(s, "offered_rps", fmt_num), "rps"),
            Row("Completed", _cell(s, "throughput_rps", fmt_num), "rps", "ok + partial"),
            Row(
                "Arrived",
                _cell(s, "requests.arrived", fmt_num),
                "",
                "in the measured window",
            ),
        ],
    )
    requests = TableGroup(
        "Outcomes",
        [
            Row(
                label,
                _cell(s, f"requests.{key}", fmt_num),
                "",
                _share(dig(s, f"requests.{key}"), arrived),
            )
            for label, key in (
                ("OK", "ok"),
                ("Partial", "partial"),
                ("Failed", "failed"),
                ("Rejected", "rejected"),
            )
        ],
    )
    latency = TableGroup(
        "Latency",
        [
            Row(label, _cell(s, f"latency_ms.{key}", fmt_ms), "ms")
            for label, key in (
                ("p50", "p50"),
                ("p99", "p99"),
                ("p99.9", "p999"),
                ("Mean", "mean"),
                ("Max", "max"),
            )
        ],
    )
    offered, nominal = dig(s, "offered_rps"), dig(s, "amplification.nominal_ops_per_request")
    arithmetic = ""
    if not is_missing(offered) and not is_missing(nominal):
        arithmetic = (
            f"rps × N × M = {fmt_num(offered)} × {fmt_num(nominal)} = {fmt_num(offered * nominal)}"
        )
    amplification = TableGroup(
        "Amplification",
        [
            Row("Calls/request", *_vs_nominal(s, "calls_per_request")),
            Row("Ops/request", *_vs_nominal(s, "ops_per_request")),
            Row(
                "Ops/s",
                _cell(s, "amplification.ops_per_sec", fmt_num),
                "ops/s",
                arithmetic,
            ),
        ],
    )
    return [load, latency, amplification, requests]


# The per-service USE table: (column heading, key path inside one service's summary,
# formatter). Utilization, then saturation (queue, rejections), then errors, then the load
# and what the calling side's policies did, then latency.
SERVICE_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("Calls/s", "calls_per_sec", fmt_num),
    ("Utilization", "utilization", fmt_pct),
    ("Queue mean", "queue_mean", fmt_ms),  # 3 significant digits, like latencies
    ("Queue p99", "queue_p99", fmt_num),
    ("Rejected", "rejected", fmt_num),
    ("Errors", "errors", fmt_num),
    ("Timeouts", "timeouts", fmt_num),
    ("Retries", "retries", fmt_num),
    ("Hedges", "hedges", fmt_num),
    ("Mean ms", "latency_ms.mean", fmt_ms),
    ("p50 ms", "latency_ms.p50", fmt_ms),
    ("p99 ms", "latency_ms.p99", fmt_ms),
)
WARM_UTILIZATION, HOT_UTILIZATION = 0.7, 0.9  # table shading, as in the call graph
# Counts left out of the table when no service has any in the run (a scenario without
# timeouts, retries or hedges shows no empty columns for them; the caption says so).
SPARSE_COLUMNS = ("rejected", "errors", "timeouts", "retries", "hedges")


def _workers(service: Mapping[str, Any]) -> str:
    """'20', '20 × 3' (instances), 'adaptive' or '∞' (unlimited)."""
    workers, instances = service.get("workers"), service.get("instances") or 1
    if "concurrency_limit" in service:
        text = "adaptive"
    elif is_missing(workers):
        return "∞"
    else:
        text = fmt_num(workers)
    return text + (f" × {instances}" if instances > 1 else "")


def _tone(utilization: Any) -> str:
    if is_missing(utilization):
        return ""
    if utilization >= HOT_UTILIZATION:
        return "hot"
    return "warm" if utilization >= WARM_UTILIZATION else ""


def service_columns(data: ReportData) -> list[tuple[str, str, Callable[[Any], str]]]:
    """``SERVICE_COLUMNS`` less the sparse counts no service has in this run."""
    services = (data.summary.get("services") or {}).values()

    def used(key: str) -> bool:
        return any(not is_missing(svc.get(key)) and svc.get(key) != 0 for svc in services)

    return [c for c in SERVICE_COLUMNS if c[1] not in SPARSE_COLUMNS or used(c[1])]


def left_out_columns(data: ReportData) -> list[str]:
    """The headings ``service_columns`` leaves out."""
    shown = {heading for heading, _, _ in service_columns(data)}
    return [heading for heading, _, _ in SERVICE_COLUMNS if heading not in shown]


def service_rows(data: ReportData) -> list[tuple[str, list[Cell]]]:
    """One row of formatted cells per service, in the summary's order: the workers, then
    ``service_columns``."""
    rows = []
    columns = service_columns(data)
    for name, svc in (data.summary.get("services") or {}).items():
        cells = [Cell(_workers(svc))]
        for _, key, fmt in columns:
            cell = _cell(data.summary, f"services.{name}.{key}", fmt)
            if key == "utilization":
                cell = Cell(cell.text, cell.ci, _tone(svc.get("utilization")))
            cells.append(cell)
        rows.append((name, cells))
    return rows


# --------------------------------------------------------------------------- HTML


def _run_line(data: ReportData) -> str:
    """'seed 1 · 60 s measured after 5 s warm-up', plus how replications are combined."""
    summary, parts = data.summary, []
    seed, reps = summary.get("seed"), data.replications
    if seed is not None:
        parts.append(f"seed {seed}" if reps == 1 else f"seeds {seed}–{int(seed) + reps - 1}")
    if summary.get("duration_s") is not None:
        parts.append(
            f"{fmt_num(summary['duration_s'])} s measured after "
            f"{fmt_num(summary.get('warmup_s') or 0)} s warm-up"
        )
    if reps > 1:
        parts.append(f"{reps} replications: figures are means, ± is the 95% half-width")
    return " · ".join(parts)


def tail_lines(summary: Mapping[str, Any]) -> list[str]:
    """The tail attribution in words, for the slowest 1% and 0.1% (results.tail)."""
    attribution = summary.get("tail_attribution") or {}
    lines = [tail_headline(attribution, level) for level in ("p99", "p99.9")]
    return [line for line in lines if line]


def cost_lines(summary: Mapping[str, Any]) -> list[str]:
    """The cost section in words: the month's total, capacity and usage, what the policies
    add, per million requests (results.cost); none when nothing is priced."""
    cost = summary.get("cost")
    if not cost:
        return []
    cur, month = cost["currency"], cost["per_month"]
    lines = [
        f"A month at this load costs {money(month['total'], cur)}: capacity "
        f"{money(month['capacity'], cur)}, usage {money(month['usage'], cur)}."
    ]
    by_cause = month["usage_by_cause"]
    if month["policies"]:
        share = month["policies"] / month["total"] if month["total"] else 0.0
        parts = ", ".join(
            f"{cause} {money(by_cause[cause], cur)}"
            for cause in ("retries", "hedges", "wasted")
            if by_cause[cause]
        )
        lines.append(
            f"Retries, hedges and wasted work add {money(month['policies'], cur)} "
            f"({share:.1%} of the total): {parts}."
        )
    else:
        lines.append("No retries, hedges or wasted work: every call billed was needed.")
    per_million = cost.get("per_million_requests")
    if per_million:
        lines.append(f"Per million user requests: {money(per_million['total'], cur)}.")
    return lines


def render_html(
    data: ReportData, charts: Mapping[str, Sequence[Chart]], description: str | None
) -> str:
    """The report page as a string, with every chart embedded (``charts`` by section)."""
    return (
        environment()
        .get_template(TEMPLATE_NAME)
        .render(
            scenario=data.scenario_name,
            description=description,
            run_line=_run_line(data),
            warnings=warnings(data),
            findings=key_findings(data),
            tail_lines=tail_lines(data.summary),
            cost_lines=cost_lines(data.summary),
            headline=headline_groups(data),
            service_columns=["Workers"] + [heading for heading, _, _ in service_columns(data)],
            services=service_rows(data),
            left_out=left_out_columns(data),
            checks=cross_checks(data),
            charts=charts,
        )
    )


# --------------------------------------------------------------------------- entry point


def write_report(
    out_dir: pathlib.Path,
    summary: dict,
    latencies_ms: np.ndarray,
    timeseries: dict[str, np.ndarray],
    scenario_name: str,
    description: str | None = None,
    scenario: Scenario | None = None,
) -> list[pathlib.Path]:
    """Write PNG charts and a self-contained report.html into out_dir; return the paths written.
    With the ``scenario``, the report also draws the call graph and checks the run against
    the closed forms that apply."""
    out_dir = pathlib.Path(out_dir)
    data = ReportData(
        summary=summary,
        latencies_ms=np.asarray(latencies_ms, dtype=float).ravel(),
        timeseries=as_timeseries(timeseries),
        scenario_name=scenario_name,
        scenario=scenario,
    )
    graph = call_graph_chart(data)
    charts = {"scenario": [graph] if graph is not None else []} | draw_charts(data)
    html = render_html(data, charts, description)

    # Each file lands whole (temp file + rename); write_atomic creates out_dir if needed.
    written = []
    for chart in (c for section in charts.values() for c in section):
        write_atomic(out_dir / chart.filename, chart.png)
        written.append(out_dir / chart.filename)
    write_atomic(out_dir / REPORT_FILENAME, html.encode("utf-8"))
    written.append(out_dir / REPORT_FILENAME)
    return written
