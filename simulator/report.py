"""Run report: one self-contained ``report.html`` embedding the PNG charts.

The report reads only the run's flat results (the summary dict, the latency array, the
per-second timeseries) and never the engine. This module owns the inputs (``ReportData``),
the tables and the HTML; the charts are in ``charts.py``, which this module imports (never
the reverse). It is built from small pieces so a later section is one more function, not an
edit in the middle of a long one:

* each chart is a function in ``charts.py`` listed in its ``SECTIONS`` (the call graph, which
  needs the scenario, is ``callgraph.py``);
* each table is a function building plain rows for the template; the key findings and
  warnings are in ``findings.py``, the theory cross-checks in ``crosscheck.py``;
* ``templates/report.html.j2`` has one ``{% block %}`` per section.

jinja2 is imported inside the function that uses it (and matplotlib only inside
``charts.py``'s drawing functions), so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .callgraph import chart as call_graph_chart
from .charts import Chart, _dig, _fmt_ms, _fmt_num, _fmt_pct, _fmt_sig, _is_missing, draw_charts
from .files import write_atomic

if TYPE_CHECKING:
    import jinja2

    from .model import Scenario

__all__ = ["ReportData", "write_report"]

REPORT_FILENAME = "report.html"
TEMPLATE_NAME = "report.html.j2"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ReportData:
    """Everything a report section may read; chart and table functions take only this."""

    summary: Mapping[str, Any]
    latencies_ms: np.ndarray
    timeseries: Mapping[str, np.ndarray]
    scenario_name: str
    scenario: Scenario | None = None  # the call graph and theory checks need it

    @functools.cached_property
    def nominal_calls(self) -> dict[str, float]:
        """Calls per request to each service that the topology implies ({} with no scenario),
        computed once for every section that needs it."""
        if self.scenario is None:
            return {}
        from .topology import nominal_amplification

        return nominal_amplification(self.scenario)["calls"]

    @property
    def warmup_s(self) -> float:
        return float(self.summary.get("warmup_s") or 0.0)

    @property
    def replications(self) -> int:
        return int(self.summary.get("replications") or 1)

    @property
    def timeseries_note(self) -> str:
        """Caption suffix: with replications the timeseries is the first replication's."""
        return " Shown for the first replication." if self.replications > 1 else ""

    @property
    def window_end_s(self) -> float | None:
        """End of the measured window in simulated seconds, if the summary says."""
        duration = self.summary.get("duration_s")
        return None if duration is None else self.warmup_s + float(duration)

    @property
    def n_seconds(self) -> int:
        t = self.timeseries.get("t_s")
        return 0 if t is None else len(t)

    def column(self, name: str) -> np.ndarray:
        """A timeseries column, or all-NaN (drawn as nothing) when the run did not record it."""
        return self.timeseries.get(name, np.full(self.n_seconds, np.nan))

    def services_with(self, prefix: str) -> list[str]:
        """Service names having a ``<prefix><service>`` timeseries column, in column order."""
        return [k[len(prefix) :] for k in self.timeseries if k.startswith(prefix)]


def _as_timeseries(timeseries: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Columns as 1-D float arrays of one common length; raise naming the odd column."""
    columns = {name: np.asarray(col, dtype=float).ravel() for name, col in timeseries.items()}
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        expected = lengths.get("t_s", next(iter(lengths.values())))
        odd = next(name for name, n in lengths.items() if n != expected)
        raise ValueError(
            f"timeseries columns must have equal length: {odd!r} has {lengths[odd]} rows, "
            f"expected {expected} (like 't_s')"
        )
    return columns


# Formatting (_fmt_sig, _fmt_ms, _fmt_num, _fmt_pct) and _dig, _is_missing are in charts.py,
# whose labels use them too (so charts.py needs nothing from here at run time).


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
    ci = _dig(summary.get("ci95"), path)
    return Cell(fmt(_dig(summary, path)), None if _is_missing(ci) else fmt(ci))


def _share(part: Any, whole: Any) -> str:
    """``part`` as a share of ``whole``; small shares keep two significant digits."""
    if _is_missing(part) or _is_missing(whole) or not whole:
        return ""
    pct = 100.0 * float(part) / float(whole)
    text = f"{pct:.1f}" if pct == 0 or abs(pct) >= 0.1 else _fmt_sig(pct, 2)
    return f"{text}% of arrived"


def _vs_nominal(summary: Mapping[str, Any], key: str) -> tuple[Cell, str, str]:
    """``amplification.<key>`` with a note comparing it to ``nominal_<key>`` when known."""
    value = _dig(summary, f"amplification.{key}")
    nominal = _dig(summary, f"amplification.nominal_{key}")
    note = ""
    if not _is_missing(nominal):
        note = f"nominal {_fmt_num(nominal)}"
        if not _is_missing(value) and nominal:
            note += f" (×{value / nominal:.2f})"
    return _cell(summary, f"amplification.{key}", _fmt_num), "", note


def headline_groups(data: ReportData) -> list[TableGroup]:
    """The headline figures, grouped for the cards at the top of the report."""
    s = data.summary
    arrived = _dig(s, "requests.arrived")

    load = TableGroup(
        "Load",
        [
            Row("Offered", _cell(s, "offered_rps", _fmt_num), "rps"),
            Row("Completed", _cell(s, "throughput_rps", _fmt_num), "rps", "ok + partial"),
            Row(
                "Arrived",
                _cell(s, "requests.arrived", _fmt_num),
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
                _cell(s, f"requests.{key}", _fmt_num),
                "",
                _share(_dig(s, f"requests.{key}"), arrived),
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
            Row(label, _cell(s, f"latency_ms.{key}", _fmt_ms), "ms")
            for label, key in (
                ("p50", "p50"),
                ("p99", "p99"),
                ("p99.9", "p999"),
                ("Mean", "mean"),
                ("Max", "max"),
            )
        ],
    )
    offered, nominal = _dig(s, "offered_rps"), _dig(s, "amplification.nominal_ops_per_request")
    arithmetic = ""
    if not _is_missing(offered) and not _is_missing(nominal):
        arithmetic = (
            f"rps × N × M = {_fmt_num(offered)} × {_fmt_num(nominal)} "
            f"= {_fmt_num(offered * nominal)}"
        )
    amplification = TableGroup(
        "Amplification",
        [
            Row("Calls/request", *_vs_nominal(s, "calls_per_request")),
            Row("Ops/request", *_vs_nominal(s, "ops_per_request")),
            Row(
                "Ops/s",
                _cell(s, "amplification.ops_per_sec", _fmt_num),
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
    ("Calls/s", "calls_per_sec", _fmt_num),
    ("Utilization", "utilization", _fmt_pct),
    ("Queue mean", "queue_mean", _fmt_ms),  # 3 significant digits, like latencies
    ("Queue p99", "queue_p99", _fmt_num),
    ("Rejected", "rejected", _fmt_num),
    ("Errors", "errors", _fmt_num),
    ("Timeouts", "timeouts", _fmt_num),
    ("Retries", "retries", _fmt_num),
    ("Hedges", "hedges", _fmt_num),
    ("Mean ms", "latency_ms.mean", _fmt_ms),
    ("p50 ms", "latency_ms.p50", _fmt_ms),
    ("p99 ms", "latency_ms.p99", _fmt_ms),
)
WARM_UTILIZATION, HOT_UTILIZATION = 0.7, 0.9  # table shading, as in the call graph


def _workers(service: Mapping[str, Any]) -> str:
    """'20', '20 × 3' (instances), 'adaptive' or '∞' (unlimited)."""
    workers, instances = service.get("workers"), service.get("instances") or 1
    if "concurrency_limit" in service:
        text = "adaptive"
    elif _is_missing(workers):
        return "∞"
    else:
        text = _fmt_num(workers)
    return text + (f" × {instances}" if instances > 1 else "")


def _tone(utilization: Any) -> str:
    if _is_missing(utilization):
        return ""
    if utilization >= HOT_UTILIZATION:
        return "hot"
    return "warm" if utilization >= WARM_UTILIZATION else ""


def service_rows(data: ReportData) -> list[tuple[str, list[Cell]]]:
    """One row of formatted cells per service, in the summary's order: the workers, then
    ``SERVICE_COLUMNS``."""
    rows = []
    for name, svc in (data.summary.get("services") or {}).items():
        cells = [Cell(_workers(svc))]
        for _, key, fmt in SERVICE_COLUMNS:
            cell = _cell(data.summary, f"services.{name}.{key}", fmt)
            if key == "utilization":
                cell = Cell(cell.text, cell.ci, _tone(svc.get("utilization")))
            cells.append(cell)
        rows.append((name, cells))
    return rows


# --------------------------------------------------------------------------- HTML


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(pathlib.Path(__file__).parent / "templates"),
        autoescape=True,  # select_autoescape would miss the ".html.j2" suffix
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _run_line(data: ReportData) -> str:
    """'seed 1 · 60 s measured after 5 s warm-up', plus how replications are combined."""
    summary, parts = data.summary, []
    seed, reps = summary.get("seed"), data.replications
    if seed is not None:
        parts.append(f"seed {seed}" if reps == 1 else f"seeds {seed}–{int(seed) + reps - 1}")
    if summary.get("duration_s") is not None:
        parts.append(
            f"{_fmt_num(summary['duration_s'])} s measured after "
            f"{_fmt_num(summary.get('warmup_s') or 0)} s warm-up"
        )
    if reps > 1:
        parts.append(f"{reps} replications: figures are means, ± is the 95% half-width")
    return " · ".join(parts)


def render_html(
    data: ReportData, charts: Mapping[str, Sequence[Chart]], description: str | None
) -> str:
    """The report page as a string, with every chart embedded (``charts`` by section)."""
    from .crosscheck import cross_checks
    from .findings import key_findings, warnings

    return (
        _environment()
        .get_template(TEMPLATE_NAME)
        .render(
            scenario=data.scenario_name,
            description=description,
            run_line=_run_line(data),
            warnings=warnings(data),
            findings=key_findings(data),
            headline=headline_groups(data),
            service_columns=["Workers"] + [heading for heading, _, _ in SERVICE_COLUMNS],
            services=service_rows(data),
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
        timeseries=_as_timeseries(timeseries),
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
