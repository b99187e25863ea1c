"""Run report: PNG charts plus one self-contained ``report.html``.

The report reads only the run's flat results (the summary dict, the latency array, the
per-second timeseries) and never the engine. It is built from small pieces so a later
section is one more function, not an edit in the middle of a long one:

* each chart is a function ``(ReportData) -> Chart | None`` listed in ``_CHARTS``;
* each table is a function building plain rows for the template;
* ``templates/report.html.j2`` has one ``{% block %}`` per section.

matplotlib and jinja2 are imported inside the functions that use them, so importing this
module costs nothing. Charts are drawn on ``matplotlib.figure.Figure`` objects directly
(never ``pyplot``): that needs no GUI backend and no display, and, unlike
``matplotlib.use("Agg")``, does not switch the backend of a notebook that calls us.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .files import write_atomic

if TYPE_CHECKING:
    import jinja2
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Chart", "ReportData", "write_report"]

REPORT_FILENAME = "report.html"
TEMPLATE_NAME = "report.html.j2"

FIGSIZE_IN = (8.0, 4.5)
DPI = 110
# Percentile plot: stop where fewer than this many samples lie above the percentile.
MIN_TAIL_SAMPLES = 10
# Use a log latency axis when the largest value exceeds the smallest by this factor.
LOG_Y_RATIO = 30.0

_P50_COLOR = "tab:blue"
_P99_COLOR = "tab:red"
_DASH = "—"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ReportData:
    """Everything a report section may read; chart and table functions take only this."""

    summary: Mapping[str, Any]
    latencies_ms: np.ndarray
    timeseries: Mapping[str, np.ndarray]
    scenario_name: str

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


@dataclass(frozen=True)
class Chart:
    """One rendered chart: its file name, its heading and caption in the HTML, its PNG."""

    filename: str
    title: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


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


# --------------------------------------------------------------------------- formatting


def _is_missing(x: Any) -> bool:
    return x is None or (isinstance(x, float | np.floating) and not math.isfinite(x))


def _fmt_sig(x: float | None, sig: int = 3) -> str:
    """``sig`` significant digits, thousands separators, no exponent: 1234.5 -> '1,230'."""
    if _is_missing(x):
        return _DASH
    x = float(x)  # type: ignore[arg-type]
    if x == 0:
        return "0"
    decimals = sig - 1 - math.floor(math.log10(abs(x)))
    rounded = round(x, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > math.floor(math.log10(abs(x))):
        decimals -= 1  # 9.996 -> 10.0, not 10.00
    return f"{rounded:,.{max(decimals, 0)}f}"


def _fmt_ms(x: float | None) -> str:
    """A latency in ms with 3 significant digits."""
    return _fmt_sig(x, 3)


def _fmt_num(x: float | None) -> str:
    """A count or rate: whole numbers above 1,000, else up to 4 significant digits."""
    if _is_missing(x):
        return _DASH
    x = float(x)  # type: ignore[arg-type]
    if abs(x) >= 1000 or x == int(x):
        return f"{x:,.0f}"
    text = _fmt_sig(x, 4)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt_ratio(x: float | None) -> str:
    """A fraction in [0, 1] as a percentage: 0.8734 -> '87.3%'."""
    return _DASH if _is_missing(x) else f"{100.0 * float(x):.1f}%"  # type: ignore[arg-type]


def _dig(d: Mapping[str, Any] | None, path: str) -> Any:
    """``d[a][b][c]`` for ``path='a.b.c'``, or None where any key is missing."""
    for key in path.split("."):
        if not isinstance(d, Mapping) or key not in d:
            return None
        d = d[key]
    return d


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Cell:
    """A formatted figure and, with replications, its formatted 95% half-width."""

    text: str
    ci: str | None = None


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
            Row("Throughput", _cell(s, "throughput_rps", _fmt_num), "rps", "ok + partial"),
        ],
    )
    requests = TableGroup(
        "Requests",
        [Row("Arrived", _cell(s, "requests.arrived", _fmt_num))]
        + [
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
                ("Mean", "mean"),
                ("p50", "p50"),
                ("p90", "p90"),
                ("p95", "p95"),
                ("p99", "p99"),
                ("p99.9", "p999"),
                ("Max", "max"),
            )
        ],
    )
    amplification = TableGroup(
        "Amplification",
        [
            Row("Calls / request", *_vs_nominal(s, "calls_per_request")),
            Row("Ops / request", *_vs_nominal(s, "ops_per_request")),
            Row("Backend ops / s", _cell(s, "amplification.ops_per_sec", _fmt_num), "ops/s"),
        ],
    )
    return [load, requests, latency, amplification]


# (column heading, key path inside one service's summary, formatter)
SERVICE_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("Calls", "calls", _fmt_num),
    ("Calls/s", "calls_per_sec", _fmt_num),
    ("Utilization", "utilization", _fmt_ratio),
    ("Rejected", "rejected", _fmt_num),
    ("Errors", "errors", _fmt_num),
    ("Timeouts", "timeouts", _fmt_num),
    ("Retries", "retries", _fmt_num),
    ("Hedges", "hedges", _fmt_num),
    ("p50 ms", "latency_ms.p50", _fmt_ms),
    ("p99 ms", "latency_ms.p99", _fmt_ms),
)


def service_rows(data: ReportData) -> list[tuple[str, list[Cell]]]:
    """One row of formatted cells per service, in the summary's order."""
    services = data.summary.get("services") or {}
    return [
        (
            name,
            [_cell(data.summary, f"services.{name}.{key}", fmt) for _, key, fmt in SERVICE_COLUMNS],
        )
        for name in services
    ]


# --------------------------------------------------------------------------- charts


def _new_figure(nrows: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
    for ax in axes:
        ax.grid(True, which="major", alpha=0.35)
        ax.set_axisbelow(True)
    return fig, list(axes)


def _png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No "Software" metadata: the same run gives byte-identical PNGs.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _placeholder(filename: str, title: str, message: str, caption: str) -> Chart:
    """A chart that says why there is nothing to plot, so the report keeps its shape."""
    fig, (ax,) = _new_figure()
    ax.set_title(title)
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=16,
        color="0.4",
        transform=ax.transAxes,
    )
    return Chart(filename, title, caption, _png_bytes(fig))


def _maybe_log_y(ax: Axes, values: np.ndarray) -> None:
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size and positive.max() / positive.min() > LOG_Y_RATIO:
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.set_yscale("log")
        ax.grid(True, which="minor", alpha=0.12)
        # Plain numbers (1, 2, 5, 10, 20, ...) rather than 10^1: a reader wants milliseconds.
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
        plain = FuncFormatter(lambda v, _pos: f"{v:,g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    else:
        ax.set_ylim(bottom=0)


def _bin_edges(t_s: np.ndarray) -> np.ndarray:
    """Edges of the timeseries rows: row i covers [t_s[i], t_s[i+1]), the last one second."""
    width = float(np.median(np.diff(t_s))) if len(t_s) > 1 else 1.0
    return np.append(t_s, t_s[-1] + width)


def _step(ax: Axes, t_s: np.ndarray, values: np.ndarray, **style: Any) -> None:
    """Plot a per-second column as steps: each value holds for its whole second."""
    ax.plot(_bin_edges(t_s), np.append(values, values[-1]), drawstyle="steps-post", **style)


def _shade_phases(axes: Sequence[Axes], data: ReportData, t_s: np.ndarray) -> None:
    """Grey out the warm-up and hatch the drain after the window; label on the top panel."""
    t_start, t_end = float(t_s[0]), float(_bin_edges(t_s)[-1])
    spans = []
    if data.warmup_s > 0:
        spans.append((0.0, min(data.warmup_s, t_end), "warm-up", {"facecolor": "0.88"}))
    end = data.window_end_s
    if end is not None and t_end > end:
        spans.append(
            (
                end,
                t_end,
                "drain",
                {"facecolor": "none", "hatch": "//", "edgecolor": "0.82", "linewidth": 0},
            )
        )
    for lo, hi, label, style in spans:
        for ax in axes:
            ax.axvspan(lo, hi, zorder=0, **style)
        axes[0].annotate(
            label,
            (lo, 0.03),
            xycoords=axes[0].get_xaxis_transform(),
            textcoords="offset points",
            xytext=(4, 0),
            ha="left",
            va="bottom",
            fontsize=8,
            color="0.3",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    for ax in axes:
        ax.set_xlim(t_start, t_end)


def _legend(ax: Axes) -> None:
    """Legend beside the plot, so it never hides a line or the drain."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def percentile_grid(n: int, points: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """``(x, p)`` with x = 1/(1-p) from 1 to where only ``MIN_TAIL_SAMPLES`` samples remain
    above p (but at least to p90, so a tiny sample still draws a curve)."""
    x_max = max(n / MIN_TAIL_SAMPLES, 10.0)
    x = np.geomspace(1.0, x_max, points)
    return x, 1.0 - 1.0 / x


def _chart_latency_percentiles(data: ReportData) -> Chart:
    filename, title = "latency_percentiles.png", "Latency by percentile"
    lat = data.latencies_ms[np.isfinite(data.latencies_ms)]
    n = lat.size
    pooled = " (all replications pooled)" if data.replications > 1 else ""
    caption = (
        f"Request latency at each percentile over the {n:,} requests of the measured "
        f"window{pooled}. Each step right on the x axis is one more nine; the curve stops "
        f"where fewer than {MIN_TAIL_SAMPLES} requests remain above the percentile."
    )
    if n == 0:
        return _placeholder(filename, title, "no requests", caption)

    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    x, p = percentile_grid(n)
    q = np.quantile(lat, p)
    fig, (ax,) = _new_figure()
    ax.plot(x, q, color=_P50_COLOR, linewidth=1.8, label="latency")
    ax.set_xscale("log")
    _maybe_log_y(ax, np.append(q, lat.max()))
    # Head-room above the max line for its label.
    ax.set_ylim(top=float(lat.max()) * (1.5 if ax.get_yscale() == "log" else 1.1))

    # Tick at x = 1/(1-p): 1 -> 0%, 2 -> 50%, 10 -> 90%, 100 -> 99%, ...
    labels = {1.0: "0%", 2.0: "50%"} | {10.0**k: f"{100 - 100 / 10**k:g}%" for k in range(1, 7)}
    ticks = [t for t in labels if t <= x[-1] * 1.0001]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: labels.get(v, "")))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(1.0, x[-1])

    marks = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999}
    marks = {name: pct for name, pct in marks.items() if 1 / (1 - pct) <= x[-1] * 1.0001}
    for (name, pct), v in zip(marks.items(), np.quantile(lat, list(marks.values())), strict=True):
        xp = 1.0 / (1.0 - pct)
        ax.plot([xp], [v], "o", color=_P99_COLOR, markersize=4, zorder=3)
        ax.annotate(
            f"{name} {_fmt_ms(v)} ms",
            (xp, v),
            textcoords="offset points",
            xytext=(5, -4),
            ha="left",
            va="top",
            fontsize=8,
        )
    ax.axhline(float(lat.max()), color="0.45", linestyle="--", linewidth=1)
    ax.annotate(
        f"max {_fmt_ms(float(lat.max()))} ms",
        (0.0, float(lat.max())),
        xycoords=("axes fraction", "data"),
        textcoords="offset points",
        xytext=(4, 3),
        ha="left",
        va="bottom",
        fontsize=8,
        color="0.3",
    )

    ax.set_title(f"{title} — {data.scenario_name} ({n:,} requests)")
    ax.set_xlabel("percentile (log scale of 1 / (1 − p))")
    ax.set_ylabel("latency (ms)")
    return Chart(filename, title, caption, _png_bytes(fig))


def _chart_latency_over_time(data: ReportData) -> Chart:
    filename, title = "latency_over_time.png", "Latency over time"
    caption = (
        "Median and 99th-percentile latency of the requests completing in each simulated "
        "second. Grey: warm-up, not measured; hatched: the drain after the window. Gaps are "
        "seconds with no completions."
    ) + data.timeseries_note
    if data.n_seconds == 0:
        return _placeholder(filename, title, "no timeseries data", caption)
    t = data.timeseries["t_s"]
    p50, p99 = data.column("p50_ms"), data.column("p99_ms")
    fig, (ax,) = _new_figure()
    _step(ax, t, p99, color=_P99_COLOR, lw=1.4, label="p99")
    _step(ax, t, p50, color=_P50_COLOR, lw=1.4, label="p50")
    _maybe_log_y(ax, np.concatenate([p50, p99]))
    run_p99 = _dig(data.summary, "latency_ms.p99")
    if not _is_missing(run_p99) and run_p99 > 0:
        ax.axhline(
            run_p99,
            color=_P99_COLOR,
            linestyle=":",
            linewidth=1,
            label=f"run p99 {_fmt_ms(run_p99)} ms",
        )
    _shade_phases([ax], data, t)
    ax.set_title(f"{title} — {data.scenario_name}")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("latency (ms)")
    _legend(ax)
    return Chart(filename, title, caption, _png_bytes(fig))


def _chart_throughput_over_time(data: ReportData) -> Chart:
    filename, title = "throughput_over_time.png", "Throughput over time"
    caption = (
        "Top: requests arriving and completing per simulated second. Bottom: backend "
        "operations (calls to services with no downstream steps) per second: the load the "
        "fan-out puts on the leaves. Dashed: offered load and what the topology implies."
    ) + data.timeseries_note
    if data.n_seconds == 0:
        return _placeholder(filename, title, "no timeseries data", caption)
    t = data.timeseries["t_s"]
    fig, (top, bottom) = _new_figure(nrows=2)
    # Arrivals wide and pale underneath, so completions on top of them stay visible.
    _step(top, t, data.column("arrivals"), color="0.72", lw=2.8, label="arrivals/s")
    _step(top, t, data.column("completions"), color=_P50_COLOR, lw=1.3, label="completions/s")
    _step(bottom, t, data.column("ops"), color="tab:purple", lw=1.3, label="backend ops/s")
    offered = _dig(data.summary, "offered_rps")
    nominal = _dig(data.summary, "amplification.nominal_ops_per_request")
    dashed = {"color": "0.3", "linestyle": "--", "linewidth": 1}
    if not _is_missing(offered):
        top.axhline(offered, label=f"offered {_fmt_num(offered)} rps", **dashed)
        if not _is_missing(nominal) and nominal > 0:
            nominal_ops = offered * nominal
            bottom.axhline(nominal_ops, label=f"nominal {_fmt_num(nominal_ops)} ops/s", **dashed)
    _shade_phases([top, bottom], data, t)
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter("{x:,.0f}")
        _legend(ax)
    top.set_title(f"{title} — {data.scenario_name}")
    top.set_ylabel("requests / s")
    bottom.set_ylabel("ops / s")
    bottom.set_xlabel("simulated time (s)")
    return Chart(filename, title, caption, _png_bytes(fig))


def _chart_services_over_time(data: ReportData) -> Chart | None:
    filename, title = "services_over_time.png", "Services over time"
    util = data.services_with("util_")
    queue = data.services_with("queue_")
    if data.n_seconds == 0 or not (util or queue):
        return None
    caption = (
        "Per service and simulated second: busy workers as a share of all workers "
        "(utilization), and calls waiting for a worker (queue length). Services with "
        "unlimited workers have no utilization."
    ) + data.timeseries_note
    t = data.timeseries["t_s"]
    panels = [("util_", util, "utilization"), ("queue_", queue, "queue length (calls)")]
    panels = [panel for panel in panels if panel[1]]
    fig, axes = _new_figure(nrows=len(panels))
    colors = {svc: f"C{i % 10}" for i, svc in enumerate(dict.fromkeys(util + queue))}
    for ax, (prefix, services, ylabel) in zip(axes, panels, strict=True):
        for svc in services:
            _step(ax, t, data.column(prefix + svc), color=colors[svc], lw=1.3, label=svc)
        ax.set_ylabel(ylabel)
        if prefix == "util_":
            ax.set_ylim(0, 1.05)
            ax.yaxis.set_major_formatter("{x:.0%}")
        else:
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_formatter("{x:,.0f}")
        _legend(ax)
    _shade_phases(axes, data, t)
    axes[0].set_title(f"{title} — {data.scenario_name}")
    axes[-1].set_xlabel("simulated time (s)")
    return Chart(filename, title, caption, _png_bytes(fig))


# The report's charts, in page order. A new chart is one function appended here.
_CHARTS: tuple[Callable[[ReportData], Chart | None], ...] = (
    _chart_latency_percentiles,
    _chart_latency_over_time,
    _chart_throughput_over_time,
    _chart_services_over_time,
)


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


def render_html(data: ReportData, charts: Sequence[Chart], description: str | None) -> str:
    """The report page as a string, with every chart embedded."""
    return (
        _environment()
        .get_template(TEMPLATE_NAME)
        .render(
            scenario=data.scenario_name,
            description=description,
            run_line=_run_line(data),
            headline=headline_groups(data),
            service_columns=[heading for heading, _, _ in SERVICE_COLUMNS],
            services=service_rows(data),
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
) -> list[pathlib.Path]:
    """Write PNG charts and a self-contained report.html into out_dir; return the paths written."""
    out_dir = pathlib.Path(out_dir)
    data = ReportData(
        summary=summary,
        latencies_ms=np.asarray(latencies_ms, dtype=float).ravel(),
        timeseries=_as_timeseries(timeseries),
        scenario_name=scenario_name,
    )
    charts = [chart for make in _CHARTS if (chart := make(data)) is not None]
    html = render_html(data, charts, description)

    # Each file lands whole (temp file + rename); write_atomic creates out_dir if needed.
    written = []
    for chart in charts:
        write_atomic(out_dir / chart.filename, chart.png)
        written.append(out_dir / chart.filename)
    write_atomic(out_dir / REPORT_FILENAME, html.encode("utf-8"))
    written.append(out_dir / REPORT_FILENAME)
    return written
