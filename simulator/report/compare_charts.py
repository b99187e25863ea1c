"""The comparison's charts: each one a PNG overlaying every run, the baseline first.

Each chart is a function ``(runs) -> Chart | None`` listed in ``_CHARTS``, in page order;
``compare.write_comparison`` writes the PNGs and embeds them in ``compare.html``. They read
only ``runs.RunData`` and reuse the run report's figure, axis and number helpers
(:mod:`.figure`, :mod:`.format`), so a comparison looks like the run reports it compares.
matplotlib is imported inside the drawing helpers, on ``Figure`` objects (never ``pyplot``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..results.files import MIN_TAIL_SAMPLES, PERCENTILES_FILENAME, TIMESERIES_FILENAME
from ..results.format import dig, fmt_ms, fmt_num
from .figure import (
    DPI,
    FIGSIZE_IN,
    LOG_Y_RATIO,
    Chart,
    bin_edges,
    maybe_log_y,
    new_figure,
    nines_axis,
    placeholder,
    plot_steps,
    png_bytes,
    shade_phases,
    side_legend,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .runs import RunData

__all__ = ["draw_charts"]


# Percentile marks on the curves: (label, percentile in %, summary key, marker).
_MARKS = (("p50", 50.0, "p50", "o"), ("p99", 99.0, "p99", "s"), ("p99.9", 99.9, "p999", "^"))


def _without(runs: Sequence[RunData], what: str, missing: Callable[[RunData], bool]) -> str:
    """Caption sentence naming the runs a chart leaves out, or ''."""
    left_out = [r.label for r in runs if missing(r)]
    if not left_out:
        return ""
    return f" Not drawn for {', '.join(left_out)}: no {what}."


def _chart_percentiles(runs: Sequence[RunData]) -> Chart:
    filename, title = "compare_latency_percentiles.png", "Latency by percentile"
    caption = (
        "Request latency at each percentile, one curve per run (from each run's "
        f"{PERCENTILES_FILENAME}); each step right is one more nine. Markers: ● p50, ■ p99, "
        f"▲ p99.9. A curve stops where fewer than {MIN_TAIL_SAMPLES} requests remain above the "
        "percentile; with replications, their requests are pooled."
    )
    curves = [r for r in runs if r.percentiles is not None and r.percentiles[0].size]
    summary_only = [r for r in runs if r not in curves and r.number("latency_ms.p50") is not None]
    caption += "".join(
        f" {r.label}: no {PERCENTILES_FILENAME}, only its summary's p50/p99/p99.9 are marked."
        for r in summary_only
    )
    caption += _without(runs, "requests", lambda r: r not in curves and r not in summary_only)
    if not curves and not summary_only:
        return placeholder(filename, title, "no latency data", caption)

    fig, (ax,) = new_figure()
    x_max, values = 10.0, []
    for run in runs:
        if run in curves:
            pct, lat = run.percentiles  # type: ignore[misc]
            x = 1.0 / (1.0 - pct / 100.0)
            x_max, values = max(x_max, float(x[-1])), values + list(lat)
            marks = [
                (name, p, m, float(np.interp(math.log(1 / (1 - p / 100)), np.log(x), lat)))
                for name, p, _, m in _MARKS
                if 1 / (1 - p / 100) <= x[-1] * 1.0001
            ]
            width = 2.6 if run is runs[0] else 1.4
            ax.plot(x, lat, color=run.color, linewidth=width, label=_curve_label(run, marks))
        elif run in summary_only:
            marks = [
                (name, p, m, v)
                for name, p, key, m in _MARKS
                if (v := run.number(f"latency_ms.{key}")) is not None
            ]
            x_max = max(x_max, max(1 / (1 - p / 100) for _, p, _, _ in marks))
            values += [v for *_, v in marks]
            ax.plot([], [], color=run.color, linestyle=":", label=_curve_label(run, marks))
        else:
            continue
        for _, p, marker, v in marks:
            ax.plot([1 / (1 - p / 100)], [v], marker, color=run.color, markersize=6, zorder=3)
    values_ms = np.asarray(values, dtype=float)
    maybe_log_y(ax, values_ms)
    # Head-room so the last markers are not cut in half by the frame.
    top = float(np.nanmax(values_ms)) * (1.3 if ax.get_yscale() == "log" else 1.08)
    ax.set_ylim(top=top)
    nines_axis(ax, x_max)
    ax.set_xlim(1.0, x_max * 1.15)
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{title} — {len(runs)} runs")
    # Below the plot: inside it, the legend would hide a run whose curve is high on the left.
    fig.set_size_inches(FIGSIZE_IN[0], FIGSIZE_IN[1] + 0.18 * len(runs))
    fig.legend(loc="outside lower center", fontsize=8, frameon=False)
    return Chart(filename, title, caption, png_bytes(fig))


def _curve_label(run: RunData, marks: Sequence[tuple[str, float, str, float]]) -> str:
    figures = " · ".join(f"{name} {fmt_ms(v)}" for name, _, _, v in marks)
    return f"{run.label}: {figures} ms" if figures else run.label


def _chart_over_time(runs: Sequence[RunData]) -> Chart:
    filename, title = "compare_over_time.png", "p99 and goodput over time"
    caption = (
        "Top: 99th-percentile latency of the requests completing in each simulated second "
        "(not drawn in the drain, where only the slowest are still completing). "
        "Bottom: requests answered ok or partial (goodput) per second; dashed, each run's "
        "offered load. Grey: warm-up, not measured; hatched: the drain after the measured "
        "window. With replications, the first replication's series."
    )
    drawn = [r for r in runs if r.timeseries is not None and r.timeseries["t_s"].size]
    caption += _without(runs, f"rows in {TIMESERIES_FILENAME}", lambda r: r not in drawn)
    if not drawn:
        return placeholder(filename, title, "no timeseries data", caption)

    fig, (top, bottom) = new_figure(nrows=2)
    p99s, t_end = [], 0.0
    seen: list[tuple[str, np.ndarray, np.ndarray]] = []  # to name runs drawn identically
    goodput_column = "goodput"
    for run in drawn:
        ts = run.timeseries  # type: ignore[index]
        t = ts["t_s"]
        nan = np.full(t.size, np.nan)
        if "goodput" not in ts:
            goodput_column = "completions"  # older runs: every answer, whatever its outcome
        p99, good = ts.get("p99_ms", nan), ts.get("goodput", ts.get("completions", nan))
        lw = 2.6 if run is runs[0] else 1.4  # a what-if equal to the baseline leaves a rim
        twin = next((name for name, seen_p99, seen_good in seen
                     if seen_p99.shape == p99.shape
                     and np.array_equal(seen_p99, p99, equal_nan=True)
                     and np.array_equal(seen_good, good, equal_nan=True)), None)  # fmt: skip
        seen.append((run.label, p99, good))
        label = run.label if twin is None else f"{run.label} (identical to {twin})"
        edges = bin_edges(t, run.number("run_end_s"))  # a partial last second: a sliver
        warmup, duration = run.number("warmup_s") or 0.0, run.number("duration_s")
        if duration is not None:  # not in the drain: only the slowest are still completing
            p99 = np.where(t >= warmup + duration, np.nan, p99)
        plot_steps(top, t, p99, edges, color=run.color, lw=lw, label=label)
        plot_steps(bottom, t, good, edges, color=run.color, lw=lw)
        offered = run.number("offered_rps")
        if offered is not None:
            bottom.axhline(offered, color=run.color, linestyle="--", linewidth=1, alpha=0.8)
            if not bottom.get_legend_handles_labels()[0]:
                style = {"color": "0.3", "linestyle": "--", "linewidth": 1}
                bottom.plot([], [], label="offered load (each run's color)", **style)
        p99s.append(p99)
        t_end = max(t_end, float(edges[-1]))
    maybe_log_y(top, np.concatenate(p99s))
    _shade_phases((top, bottom), drawn, t_end)
    bottom.set_ylim(bottom=0)
    bottom.yaxis.set_major_formatter("{x:,.0f}")
    top.set_title(title)
    top.set_ylabel("p99 latency (ms)")
    ok = "goodput" if goodput_column == "goodput" else "completions"
    bottom.set_ylabel(f"{ok} (requests/s)")
    bottom.set_xlabel("simulated time (s)")
    # Below the plots, as on the percentile chart: beside them it would squeeze the time axis.
    fig.set_size_inches(FIGSIZE_IN[0], FIGSIZE_IN[1] + 0.18 * len(drawn))
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return Chart(filename, title, caption, png_bytes(fig))


def _shade_phases(axes: Sequence[Axes], runs: Sequence[RunData], t_end: float) -> None:
    """Grey the warm-up (the shortest, when runs differ) and hatch the drain after the
    measured window when every run's window ends at the same time."""
    warmups, ends = set(), set()
    for run in runs:
        warmup, duration = run.number("warmup_s") or 0.0, run.number("duration_s")
        warmups.add(warmup)
        ends.add(None if duration is None else warmup + duration)
    label = "warm-up" if len(warmups) == 1 else "warm-up (shortest)"
    end = ends.pop() if len(ends) == 1 else None
    shade_phases(axes, min(warmups), end, 0.0, t_end, label)


def _chart_services(runs: Sequence[RunData]) -> Chart | None:
    filename, title = "compare_services.png", "Services: utilization and calls"
    services = list(dict.fromkeys(s for r in runs for s in r.services))
    if not services:
        return None
    caption = (
        "Per service, one bar per run. Left: time-averaged busy workers as a share of all "
        "workers; the service nearest 100% saturates first (no bar: unlimited workers, or "
        "the service is not in that run). Right: calls the service receives per second."
    )
    from matplotlib.figure import Figure

    # Horizontal bars: many services or runs make the chart taller, never unreadably narrow.
    bars_total = len(services) * len(runs)
    height = max(FIGSIZE_IN[1] * 0.7, 1.3 + 0.2 * bars_total + 0.12 * len(services))
    fig = Figure(figsize=(FIGSIZE_IN[0], height), dpi=DPI, layout="constrained")
    # no run has a worker limit anywhere: no utilization panel, only calls/s
    has_util = any(r.number(f"services.{s}.utilization") is not None
                   for r in runs for s in services)  # fmt: skip
    if has_util:
        util_ax, calls_ax = fig.subplots(1, 2, sharey=True)
    else:
        util_ax, calls_ax = None, fig.subplots()
        title = "Services: calls"
        caption = (
            "Per service, one bar per run: the calls it receives per second. No service has a "
            "worker limit in these runs, so there is no utilization to compare."
        )
    y = np.arange(len(services))
    size = min(0.8 / len(runs), 0.35)  # one service and two runs: not two slabs
    calls = []
    for i, run in enumerate(runs):
        at = y + (i - (len(runs) - 1) / 2) * size  # the baseline's bar on top of each group
        util = [run.number(f"services.{s}.utilization") for s in services]
        rate = [run.number(f"services.{s}.calls_per_sec") for s in services]
        calls += [v for v in rate if v]
        if util_ax is not None:
            bars = util_ax.barh(at, [math.nan if u is None else u for u in util], size,
                                color=run.color)  # fmt: skip
            util_ax.bar_label(
                bars, labels=["" if u is None else f"{u:.0%}" for u in util], fontsize=7, padding=2
            )
        bars = calls_ax.barh(
            at,
            [math.nan if v is None else v for v in rate],
            size,
            color=run.color,
            label=run.label,
        )
        calls_ax.bar_label(
            bars, labels=["" if v is None else fmt_num(v) for v in rate], fontsize=7, padding=2
        )
    for k, svc in enumerate(services if util_ax is not None else []):
        # The summary says null for unlimited workers; a missing key says nothing.
        reported = [dig(r.summary, f"services.{svc}") for r in runs if svc in r.services]
        if all(
            isinstance(x, Mapping) and "utilization" in x and x["utilization"] is None
            for x in reported
        ):
            util_ax.annotate("unlimited workers", (0.01, k), va="center", fontsize=8, color="0.4")
    first_ax = util_ax if util_ax is not None else calls_ax
    first_ax.set_yticks(y, services)
    first_ax.invert_yaxis()  # the first service at the top, as in the table
    if util_ax is not None:
        util_ax.axvline(1.0, color="0.3", linestyle="--", linewidth=1)
        util_ax.set_xlim(0, 1.25)
        util_ax.xaxis.set_major_formatter("{x:.0%}")
        util_ax.set_xlabel("utilization (busy workers ÷ workers)")
    _log_bars(calls_ax, np.asarray(calls, dtype=float))
    calls_ax.set_xlabel("calls / s")
    for ax in (a for a in (util_ax, calls_ax) if a is not None):
        ax.grid(True, axis="x", alpha=0.35)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", length=0)
    fig.suptitle(title)
    fig.legend(loc="outside lower center", ncols=min(len(runs), 3), fontsize=8, frameon=False)
    return Chart(filename, title, caption, png_bytes(fig))


def _log_bars(ax: Axes, values: np.ndarray) -> None:
    """Horizontal bars' x axis: linear from zero, or log (plain labels) when the bars span a
    factor over 30 (a leaf called 100 times as often as the front)."""
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size and positive.max() / positive.min() > LOG_Y_RATIO:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,g}"))
        ax.set_xlim(positive.min() / 2, positive.max() * 4)
    elif positive.size:
        ax.set_xlim(0, positive.max() * 1.25)
        ax.xaxis.set_major_formatter("{x:,.0f}")


def _chart_ops_split(runs: Sequence[RunData]) -> Chart | None:
    filename, title = "compare_ops_split.png", "Where the backend ops come from"
    parts = ("nominal", "retries", "hedges")
    split = {
        r.label: [r.number(f"amplification.ops_split_per_request.{p}") or 0.0 for p in parts]
        for r in runs
        if isinstance(dig(r.summary, "amplification.ops_split_per_request"), Mapping)
    }
    if not any(v[1] or v[2] for v in split.values()):
        return None  # no retries or hedges in any run: the headline's ops per request says it
    caption = (
        "Backend operations per arrived request, split into what the topology implies "
        "(nominal: first tries) and the extra attempts retries and hedges send."
    ) + _without(runs, "ops split in its summary", lambda r: r.label not in split)
    fig, (ax,) = new_figure()
    fig.set_size_inches(FIGSIZE_IN[0], 1.4 + 0.45 * len(split))
    labels = list(split)[::-1]  # baseline on top
    left = np.zeros(len(labels))
    # Greys, so no part is mistaken for a run's color; a part no run has is left out.
    for k, (part, color) in enumerate(zip(parts, ("0.78", "0.45", "0.2"), strict=True)):
        width = np.array([split[label][k] for label in labels])
        if k == 0 or width.any():
            ax.barh(labels, width, left=left, color=color, label=part, height=0.6)
        left += width
    colors = {r.label: r.color for r in runs}
    for tick in ax.get_yticklabels():
        tick.set_color(colors.get(tick.get_text(), "black"))
    for y, total in enumerate(left):
        ax.annotate(
            fmt_num(round(total, 3)),
            (total, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, left.max() * 1.12 if left.max() > 0 else 1)
    ax.set_xlabel("backend ops / request")
    ax.set_title(title)
    ax.grid(False, axis="y")
    side_legend(ax)
    return Chart(filename, title, caption, png_bytes(fig))


def _chart_tradeoff(runs: Sequence[RunData]) -> Chart | None:
    """p99 against backend ops per request, one point per run: which policy pays, at a
    glance (down and to the left is better)."""
    filename, title = "compare_tradeoff.png", "Trade-off: tail latency against backend load"
    points = [(r, r.number("amplification.ops_per_request"), r.number("latency_ms.p99"))
              for r in runs]  # fmt: skip
    points = [(r, x, y) for r, x, y in points if x is not None and y is not None]
    if len(points) < 2:
        return None
    fig, (ax,) = new_figure()
    for i, (run, x, y) in enumerate(points):
        xerr, yerr = run.ci("amplification.ops_per_request"), run.ci("latency_ms.p99")
        ax.errorbar([x], [y], xerr=None if xerr is None else [xerr],
                    yerr=None if yerr is None else [yerr], fmt="o", ms=9 if i == 0 else 7,
                    color=run.color, capsize=3, label=run.label)  # fmt: skip
        ax.annotate(run.label, (x, y), textcoords="offset points", xytext=(6, 5), fontsize=8,
                    color=run.color)  # fmt: skip
    xs = [x for _, x, _ in points]
    ys = [y for _, _, y in points]
    ax.set_xlim(min(xs) * 0.9, max(xs) * 1.15 if max(xs) > 0 else 1)
    ax.set_ylim(0, max(ys) * 1.2)
    ax.set_xlabel("backend ops / request (the load the design costs)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title(title)
    side_legend(ax)
    caption = (
        "Each run's p99 against the backend operations it sends per request: a policy that "
        "moves a point down buys tail latency, one that moves it right pays in load; down and "
        "to the left is better. The baseline is the larger marker. Bars: 95% intervals, for "
        "runs with replications."
    ) + _without(runs, "p99 or ops per request", lambda r: r not in [p[0] for p in points])
    return Chart(filename, title, caption, png_bytes(fig))


# The comparison's charts, in page order. A new chart is one function appended here.
_CHARTS: tuple[Callable[[Sequence[RunData]], Chart | None], ...] = (
    _chart_tradeoff,
    _chart_percentiles,
    _chart_over_time,
    _chart_services,
    _chart_ops_split,
)


def draw_charts(runs: Sequence[RunData]) -> list[Chart]:
    return [chart for make in _CHARTS if (chart := make(runs)) is not None]
