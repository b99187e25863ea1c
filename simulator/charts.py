"""The run report's charts: each one a PNG drawn from the run's flat results.

Each chart is a function ``(ReportData) -> Chart | None`` listed in ``_CHARTS``, in page
order; a new chart is one more function appended there. ``draw_charts`` runs them all and
``report.write_report`` writes the PNGs and embeds them in ``report.html``. The small
value and number helpers the chart labels share with the report's tables (``_dig``,
``_is_missing``, ``_fmt_ms``, ``_fmt_num``) live here too, so ``report`` imports this module
and never the other way round (``ReportData`` is imported for type checking only).

matplotlib is imported inside the functions that use it, so importing this module costs
nothing. Charts are drawn on ``matplotlib.figure.Figure`` objects directly (never
``pyplot``): that needs no GUI backend and no display, and, unlike ``matplotlib.use("Agg")``,
does not switch the backend of a notebook that calls us.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .report import ReportData

__all__ = ["Chart", "draw_charts", "nines_axis", "percentile_grid"]

FIGSIZE_IN = (8.0, 4.5)
DPI = 132  # 8 in x 132 = 1,056 px: the page's content width, so charts show at 100%
# Percentile plot: stop where fewer than this many samples lie above the percentile.
MIN_TAIL_SAMPLES = 10
# Use a log latency axis when the largest value exceeds the smallest by this factor.
LOG_Y_RATIO = 30.0

_P50_COLOR = "tab:blue"
_P99_COLOR = "tab:red"
_DASH = "—"


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


# --------------------------------------------------------------------------- values and numbers
# Shared with the report's tables, which import them from here.


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


def _fmt_pct(x: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage with ``decimals`` decimals (0.8734 -> '87.3%'); shares too
    small for that keep two significant digits (0.00042 -> '0.042%')."""
    if _is_missing(x):
        return _DASH
    pct = 100.0 * float(x)  # type: ignore[arg-type]
    if pct != 0 and abs(pct) < 10.0**-decimals:
        return f"{_fmt_sig(pct, 2)}%"
    return f"{pct:.{decimals}f}%"


def _dig(d: Mapping[str, Any] | None, path: str) -> Any:
    """``d[a][b][c]`` for ``path='a.b.c'``, or None where any key is missing."""
    for key in path.split("."):
        if not isinstance(d, Mapping) or key not in d:
            return None
        d = d[key]
    return d


# --------------------------------------------------------------------------- drawing


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
    shade_phases(axes, data.warmup_s, data.window_end_s, t_start, t_end)


def shade_phases(
    axes: Sequence[Axes],
    warmup_s: float,
    window_end_s: float | None,
    t_start: float,
    t_end: float,
    warmup_label: str = "warm-up",
) -> None:
    """Grey [0, ``warmup_s``) and hatch the drain after ``window_end_s`` (None: no drain) on
    every panel, labelled on the top one; the x axes span [``t_start``, ``t_end``]."""
    spans = []
    if warmup_s > 0:
        spans.append((0.0, min(warmup_s, t_end), warmup_label, {"facecolor": "0.88"}))
    if window_end_s is not None and t_end > window_end_s:
        hatch = {"facecolor": "none", "hatch": "//", "edgecolor": "0.82", "linewidth": 0}
        spans.append((window_end_s, t_end, "drain", hatch))
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


def nines_axis(ax: Axes, x_max: float) -> None:
    """Make the x axis a log "nines" axis for data plotted at x = 1/(1 - p): ticks at
    1 -> 0%, 2 -> 50%, 10 -> 90%, 100 -> 99%, ... up to ``x_max``."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    labels = {1.0: "0%", 2.0: "50%"} | {10.0**k: f"{100 - 100 / 10**k:g}%" for k in range(1, 8)}
    ticks = [t for t in labels if t <= x_max * 1.0001]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: labels.get(v, "")))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(1.0, x_max)
    ax.set_xlabel("percentile (log scale of 1 / (1 − p))")


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

    x, p = percentile_grid(n)
    q = np.quantile(lat, p)
    fig, (ax,) = _new_figure()
    ax.plot(x, q, color=_P50_COLOR, linewidth=1.8, label="latency")
    _maybe_log_y(ax, np.append(q, lat.max()))
    # Head-room above the max line for its label.
    ax.set_ylim(top=float(lat.max()) * (1.5 if ax.get_yscale() == "log" else 1.1))

    nines_axis(ax, float(x[-1]))

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
        "Top: requests arriving, completing (any outcome), answered ok or partial "
        "(goodput) and failed or rejected (errors) per simulated second. Bottom: backend "
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
    if "goodput" in data.timeseries:  # answered ok or partial: what the users actually got
        _step(top, t, data.column("goodput"), color="tab:green", lw=1.3, label="goodput/s")
    _step(top, t, data.column("errors"), color=_P99_COLOR, lw=1.1, label="errors/s")
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
            ax.yaxis.set_major_formatter("{x:,g}")  # time-averaged: often a fraction of a call
        _legend(ax)
    _shade_phases(axes, data, t)
    axes[0].set_title(f"{title} — {data.scenario_name}")
    axes[-1].set_xlabel("simulated time (s)")
    return Chart(filename, title, caption, _png_bytes(fig))


def _chart_latency_distribution(data: ReportData) -> Chart:
    filename, title = "latency_distribution.png", "Latency distribution"
    lat = data.latencies_ms[np.isfinite(data.latencies_ms)]
    positive = lat[lat > 0]
    zero = lat.size - positive.size
    caption = (
        "Share of the window's requests in each latency bin (bins evenly spaced on the axis "
        "shown), with the run's p50, p99 and p99.9. A second hump is a second population: "
        "retries, hedges, timeouts or a queue."
    ) + (f" {zero:,} requests answered in 0 ms are not drawn." if zero else "")
    if positive.size == 0:
        return _placeholder(filename, title, "no requests", caption)
    lo, hi = float(positive.min()), float(positive.max())
    fig, (ax,) = _new_figure()
    log = hi / lo > LOG_Y_RATIO
    bins = int(np.clip(np.sqrt(positive.size) / 2, 20, 80))  # fewer bins for few requests
    edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(0.0, hi, bins + 1)
    counts, edges = np.histogram(positive, bins=edges)
    ax.stairs(100.0 * counts / lat.size, edges, fill=True, color=_P50_COLOR, alpha=0.55)
    if log:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,g}"))
    for (name, q), color in zip(
        {"p50": 0.5, "p99": 0.99, "p99.9": 0.999}.items(),
        ("0.2", _P99_COLOR, "tab:purple"),
        strict=True,
    ):
        if lat.size * (1 - q) < 1:
            continue
        v = float(np.quantile(lat, q))
        ax.axvline(v, color=color, linestyle="--", linewidth=1, label=f"{name} {_fmt_ms(v)} ms")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter("{x:g}%")
    ax.set_title(f"{title} — {data.scenario_name} ({lat.size:,} requests)")
    ax.set_xlabel("request latency (ms" + (", log scale)" if log else ")"))
    ax.set_ylabel("share of requests per bin")
    _legend(ax)
    return Chart(filename, title, caption, _png_bytes(fig))


def _chart_amplification(data: ReportData) -> Chart | None:
    """User requests -> service calls -> backend ops, split into first tries, retries and
    hedges, and the wasted part: a waterfall in units per second."""
    filename, title = "amplification.png", "Amplification"
    s = data.summary
    arrived, duration = _dig(s, "requests.arrived"), s.get("duration_s")
    if _is_missing(arrived) or not arrived or not duration:
        return None
    rps = arrived / duration

    def per_s(path: str) -> float:
        v = _dig(s, path)
        return 0.0 if _is_missing(v) else float(v) * rps

    calls, ops = per_s("amplification.calls_per_request"), per_s("amplification.ops_per_request")
    split = _dig(s, "amplification.ops_split_per_request") or {}
    first = per_s("amplification.ops_split_per_request.nominal") if split else ops
    retries = per_s("amplification.ops_split_per_request.retries")
    hedges = per_s("amplification.ops_split_per_request.hedges")
    wasted = per_s("amplification.wasted_ops_per_request")
    # (label, left, width, style)
    solid = {"color": "tab:blue"}
    bars = [
        ("user requests", 0.0, rps, {"color": "0.55"}),
        ("service calls", 0.0, calls, {"color": "tab:cyan"}),
        ("backend ops: first tries", 0.0, first, solid),
        ("+ retries", first, retries, {"color": "tab:orange"}),
        ("+ hedges", first + retries, hedges, {"color": "tab:olive"}),
        ("= backend ops", 0.0, ops, {"color": "tab:purple"}),
        ("of which wasted", 0.0, wasted, {"color": "tab:red", "hatch": "//", "alpha": 0.6}),
    ]
    fig, (ax,) = _new_figure()
    ax.grid(False, axis="y")
    y = np.arange(len(bars))[::-1]
    for yi, (label, left, width, style) in zip(y, bars, strict=True):
        ax.barh(yi, width, left=left, height=0.6, **style)
        ratio = f" · {width / rps:,.3g} per request" if label != "user requests" else ""
        ax.annotate(
            f"{_fmt_num(width)}/s{ratio}",
            (left + width, yi),
            textcoords="offset points",
            xytext=(4, 0),
            va="center",
            fontsize=8,
        )
    offered = _dig(s, "offered_rps")
    nominal = _dig(s, "amplification.nominal_ops_per_request")
    if not _is_missing(offered) and not _is_missing(nominal) and nominal:
        ax.axvline(
            offered * nominal,
            color="0.3",
            linestyle="--",
            linewidth=1,
            label=f"topology: {_fmt_num(offered)} rps × {_fmt_num(nominal)} ops "
            f"= {_fmt_num(offered * nominal)} ops/s",
        )
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(y, [b[0] for b in bars])
    ax.set_xlim(0, max(rps, calls, ops, first + retries + hedges, 1.0) * 1.5)  # room for labels
    ax.xaxis.set_major_formatter("{x:,.0f}")
    ax.set_xlabel("per simulated second (measured window)")
    ax.set_title(f"{title} — {data.scenario_name}")
    caption = (
        "Where the load comes from: user requests per second, the service calls they cause, "
        "and the backend operations (calls to services with no downstream steps) split into "
        "first tries, retries and hedges; wasted ops were answered after their caller had "
        "given up. Dashed: the topology's arithmetic (offered rps × ops per request)."
    )
    return Chart(filename, title, caption, _png_bytes(fig))


# The report's charts by page section, in page order. A new chart is one function listed
# here (the call graph, which needs the scenario, is in callgraph.py).
SECTIONS: dict[str, tuple[Callable[[ReportData], Chart | None], ...]] = {
    "latency": (_chart_latency_percentiles, _chart_latency_distribution),
    "amplification": (_chart_amplification,),
    "time": (_chart_throughput_over_time, _chart_latency_over_time, _chart_services_over_time),
}


def draw_charts(data: ReportData) -> dict[str, list[Chart]]:
    """Every chart of the report by section, leaving out those with nothing to show."""
    return {
        section: [chart for make in makers if (chart := make(data)) is not None]
        for section, makers in SECTIONS.items()
    }
