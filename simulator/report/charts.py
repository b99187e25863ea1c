"""The run report's charts: each one a PNG drawn from the run's flat results.

Each chart is a function ``(ReportData) -> Chart | None`` listed in ``SECTIONS``, in page
order; a new chart is one more function appended there. ``draw_charts`` runs them all and
:mod:`.run_report` writes the PNGs and embeds them in ``report.html``. The drawing primitives
are in :mod:`.figure`, the number formats in :mod:`.format`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..results.cost import money
from ..results.files import MIN_TAIL_SAMPLES, percentile_grid
from ..results.format import dig, fmt_ms, fmt_num, is_missing
from ..results.summary import MIN_PER_BUCKET
from .figure import (
    LOG_Y_RATIO,
    Chart,
    compact_count,
    fixed_figure,
    legend_label,
    maybe_log_y,
    nines_axis,
    placeholder,
    plot_steps,
    png_bytes,
    shade_phases,
    side_legend,
    time_figure,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .data import ReportData

__all__ = ["draw_charts"]

_P50_COLOR = "tab:blue"
QUEUE_AXIS_MIN_CALLS = 5.0  # the queue panel's y axis reaches at least this many calls
# Latency axes on a log scale start no lower than this (ms): below it a planner reads "no time"
# and the axis would only grow labels like 1e-06.
LATENCY_FLOOR_MS = 0.01
_P99_COLOR = "tab:red"


def _shade_phases(axes: Sequence[Axes], data: ReportData, t_s: np.ndarray) -> None:
    """Grey out the warm-up and hatch the drain after the window; label on the top panel."""
    t_start, t_end = float(t_s[0]), float(data.time_edges[-1])
    shade_phases(axes, data.warmup_s, data.window_end_s, t_start, t_end)


def _chart_latency_percentiles(data: ReportData) -> Chart:
    filename, title = "latency_percentiles.png", "Latency by percentile"
    lat = data.latencies_ms[np.isfinite(data.latencies_ms)]
    n = data.request_count
    pooled = " (all replications pooled)" if data.replications > 1 else ""
    caption = (
        f"Request latency at each percentile over the {n:,} requests of the measured "
        f"window{pooled}. Each step right on the x axis is one more nine; the curve stops "
        f"where fewer than {MIN_TAIL_SAMPLES} requests remain above the percentile."
        + data.streaming_note
    )
    if n == 0:
        return placeholder(filename, title, "no requests", caption)

    x, p = percentile_grid(n)
    q = np.quantile(lat, p)
    fig, (ax,) = fixed_figure(left=0.85, right=0.45)  # no legend; labels inside the plot
    ax.plot(x, q, color=_P50_COLOR, linewidth=1.8, label="latency")
    maybe_log_y(ax, np.append(q, lat.max()))
    if ax.get_yscale() == "log" and q[q > 0].min(initial=np.inf) < LATENCY_FLOOR_MS:
        ax.set_ylim(bottom=LATENCY_FLOOR_MS)  # below 10 µs: the curve's first sliver, cut
    # Head-room above the max line for its label.
    ax.set_ylim(top=float(lat.max()) * (1.5 if ax.get_yscale() == "log" else 1.1))

    nines_axis(ax, float(x[-1]))

    marks = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99.9": 0.999}
    marks = {name: pct for name, pct in marks.items() if 1 / (1 - pct) <= x[-1] * 1.0001}
    for (name, pct), v in zip(marks.items(), np.quantile(lat, list(marks.values())), strict=True):
        xp = 1.0 / (1.0 - pct)
        ax.plot([xp], [v], "o", color=_P99_COLOR, markersize=4, zorder=3)
        ax.annotate(
            f"{name} {fmt_ms(v)} ms",
            (xp, v),
            textcoords="offset points",
            xytext=(5, -4),
            ha="left",
            va="top",
            fontsize=8,
        )
    ax.axhline(float(lat.max()), color="0.45", linestyle="--", linewidth=1)
    ax.annotate(
        f"max {fmt_ms(float(lat.max()))} ms",
        (0.0, float(lat.max())),
        xycoords=("axes fraction", "data"),
        textcoords="offset points",
        xytext=(4, -3),  # under the line, at the left where the curve is low: never clipped
        ha="left",
        va="top",
        fontsize=8,
        color="0.3",
    )

    ax.set_title(f"{title} — {data.scenario_name} ({n:,} requests)")
    ax.set_ylabel("latency (ms)")
    return Chart(filename, title, caption, png_bytes(fig))


def _chart_latency_over_time(data: ReportData) -> Chart:
    filename, title = "latency_over_time.png", "Latency over time"
    caption = (
        "Median and 99th-percentile latency of the requests completing in each simulated "
        "second. Grey: warm-up, not measured; hatched: the drain after the window, not drawn "
        "(only the slowest requests are still completing then). Gaps are seconds with no "
        "completions."
    ) + data.timeseries_note
    if data.n_seconds == 0:
        return placeholder(filename, title, "no timeseries data", caption)
    t, edges = data.timeseries["t_s"], data.time_edges
    p50, p99 = data.column("p50_ms").copy(), data.column("p99_ms").copy()
    coarse = data.summary.get("latency_over_time")
    if coarse:  # a second holds too few requests for a p99: the run's coarser buckets
        width = float(coarse["bucket_s"])
        t = np.asarray(coarse["t_s"], dtype=float)
        edges = np.append(t, t[-1] + width)
        edges[-1] = min(edges[-1], data.time_edges[-1])
        p50, p99 = (np.asarray(coarse[k], dtype=float) for k in ("p50_ms", "p99_ms"))
        caption = caption.replace("in each simulated second", f"in each {width:g} s")
        caption += (f" Bucketed by {width:g} s: a second held too few requests (under "
                    f"{MIN_PER_BUCKET}) for its p99 to be more than its slowest.")  # fmt: skip
    if data.window_end_s is not None:  # the drain's stragglers are the slowest by design
        p50[t >= data.window_end_s] = np.nan
        p99[t >= data.window_end_s] = np.nan
    fig, (ax,) = time_figure()
    plot_steps(ax, t, p99, edges, color=_P99_COLOR, lw=1.4, label="p99")
    plot_steps(ax, t, p50, edges, color=_P50_COLOR, lw=1.4, label="p50")
    maybe_log_y(ax, np.concatenate([p50, p99]))
    run_p99 = dig(data.summary, "latency_ms.p99")
    if not is_missing(run_p99) and run_p99 > 0:
        ax.axhline(
            run_p99,
            color=_P99_COLOR,
            linestyle=":",
            linewidth=1,
            label=f"run p99 {fmt_ms(run_p99)} ms",
        )
    _shade_phases([ax], data, t)
    ax.set_title(f"{title} — {data.scenario_name}")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("latency (ms)")
    side_legend(ax)
    return Chart(filename, title, caption, png_bytes(fig))


def _chart_throughput_over_time(data: ReportData) -> Chart:
    filename, title = "throughput_over_time.png", "Throughput over time"
    caption = (
        "Top: requests arriving, completing (any outcome), answered ok or partial "
        "(goodput) and failed or rejected (errors) per simulated second. Bottom: backend "
        "operations (calls to services with no downstream steps) per second: the load the "
        "fan-out puts on the leaves. Dashed: offered load and what the topology implies."
    ) + data.timeseries_note
    if data.n_seconds == 0:
        return placeholder(filename, title, "no timeseries data", caption)
    t, edges = data.timeseries["t_s"], data.time_edges
    fig, (top, bottom) = time_figure(nrows=2)
    # Arrivals wide and pale underneath, so completions on top of them stay visible.
    plot_steps(top, t, data.column("arrivals"), edges, color="0.72", lw=2.8, label="arrivals/s")
    plot_steps(
        top, t, data.column("completions"), edges, color=_P50_COLOR, lw=1.3, label="completions/s"
    )
    if "goodput" in data.timeseries:  # answered ok or partial: what the users actually got
        plot_steps(
            top, t, data.column("goodput"), edges, color="tab:green", lw=1.3, label="goodput/s"
        )
    plot_steps(top, t, data.column("errors"), edges, color=_P99_COLOR, lw=1.1, label="errors/s")
    plot_steps(
        bottom, t, data.column("ops"), edges, color="tab:purple", lw=1.3, label="backend ops/s"
    )
    offered = dig(data.summary, "offered_rps")
    nominal = dig(data.summary, "amplification.nominal_ops_per_request")
    dashed = {"color": "0.3", "linestyle": "--", "linewidth": 1}
    rate = offered_rate(data)
    if rate is not None and len(rate[1]) > 1:  # a schedule or bursts: the rate as it moves
        edges, rps = rate
        top.stairs(rps, edges, baseline=None, label="offered rate (scenario)", **dashed)
        if not is_missing(nominal) and nominal > 0:
            bottom.stairs(rps * nominal, edges, baseline=None, label="nominal ops/s (scenario)",
                          **dashed)  # fmt: skip
    elif not is_missing(offered):
        top.axhline(offered, label=f"offered {fmt_num(offered)} rps", **dashed)
        if not is_missing(nominal) and nominal > 0:
            nominal_ops = offered * nominal
            bottom.axhline(nominal_ops, label=f"nominal {fmt_num(nominal_ops)} ops/s", **dashed)
    _shade_phases([top, bottom], data, t)
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(compact_count)
        side_legend(ax)
    top.set_title(f"{title} — {data.scenario_name}")
    top.set_ylabel("requests / s")
    bottom.set_ylabel("ops / s")
    bottom.set_xlabel("simulated time (s)")
    return Chart(filename, title, caption, png_bytes(fig))


def offered_rate(data: ReportData) -> tuple[np.ndarray, np.ndarray] | None:
    """The scenario's offered rate over time, as stair edges (s) and rates (rps), up to the
    end of arrivals; None without a scenario or for trace-driven arrivals."""
    if data.scenario is None:
        return None
    from ..scenario.arrivals import rate_segments

    end_s = float(data.scenario.warmup_s + data.scenario.duration_s)
    try:
        pieces = rate_segments(data.scenario.workload, end_s)
    except ValueError:  # a trace: no rate to draw
        return None
    edges = np.array([p[0] for p in pieces] + [pieces[-1][1]])
    return edges, np.array([p[2] for p in pieces], dtype=float)


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
    t, edges = data.timeseries["t_s"], data.time_edges
    panels = [("util_", util, "utilization"), ("queue_", queue, "queue length (calls)")]
    panels = [panel for panel in panels if panel[1]]
    fig, axes = time_figure(nrows=len(panels))
    colors = {svc: f"C{i % 10}" for i, svc in enumerate(dict.fromkeys(util + queue))}
    for ax, (prefix, services, ylabel) in zip(axes, panels, strict=True):
        for svc in services:
            plot_steps(ax, t, data.column(prefix + svc), edges, color=colors[svc], lw=1.3,
                       label=legend_label(svc))  # fmt: skip
        ax.set_ylabel(ylabel)
        if prefix == "util_":
            ax.set_ylim(0, 1.05)
            ax.yaxis.set_major_formatter("{x:.0%}")
        else:
            # at least 0-5 calls: a queue of 0.7 calls should look small, not dramatic
            top = max((np.nanmax(data.column(prefix + svc)) for svc in services), default=0.0)
            ax.set_ylim(0, max(QUEUE_AXIS_MIN_CALLS, 1.1 * float(np.nan_to_num(top))))
            ax.yaxis.set_major_formatter(compact_count)  # time-averaged: maybe a fraction
        side_legend(ax)
    _shade_phases(axes, data, t)
    axes[0].set_title(f"{title} — {data.scenario_name}")
    axes[-1].set_xlabel("simulated time (s)")
    return Chart(filename, title, caption, png_bytes(fig))


def _chart_latency_distribution(data: ReportData) -> Chart:
    filename, title = "latency_distribution.png", "Latency distribution"
    lat = data.latencies_ms[np.isfinite(data.latencies_ms)]
    positive = lat[lat > 0]
    zero = lat.size - positive.size
    caption = (
        "Share of the window's requests in each latency bin (bins evenly spaced on the axis "
        "shown), with the run's p50, p99 and p99.9. A second hump is a second population: "
        "retries, hedges, timeouts or a queue."
    ) + (
        f" The red bar at the left: {zero:,} requests answered in 0 ms (refused at once), "
        "which a log axis cannot place at 0."
        if zero
        else ""
    )
    caption += data.streaming_note
    if positive.size == 0:
        return placeholder(filename, title, "no requests", caption)
    lo, hi = float(positive.min()), float(positive.max())
    tiny = 0
    if hi / lo > LOG_Y_RATIO and lo < LATENCY_FLOOR_MS < hi:  # counted in the first bin
        tiny = int(np.count_nonzero(positive < LATENCY_FLOOR_MS))
        lo, positive = LATENCY_FLOOR_MS, np.maximum(positive, LATENCY_FLOOR_MS)
        caption += (f" The first bin also counts the {tiny:,} requests answered in under "
                    f"{LATENCY_FLOOR_MS:g} ms.")  # fmt: skip
    fig, (ax,) = fixed_figure(right=1.75)  # the side legend: three "p99.9 1,234 ms" lines
    log = hi / lo > LOG_Y_RATIO
    bins = int(np.clip(np.sqrt(positive.size) / 2, 20, 80))  # fewer bins for few requests
    edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(0.0, hi, bins + 1)
    counts, edges = np.histogram(positive, bins=edges)
    ax.stairs(100.0 * counts / lat.size, edges, fill=True, color=_P50_COLOR, alpha=0.55)
    if zero:  # answered in 0 ms: one bin's width left of the rest, labelled
        width = edges[1] / edges[0] if log else edges[1] - edges[0]
        left, right = (lo / width**2, lo / width) if log else (-width, 0.0)
        share = 100.0 * zero / lat.size
        ax.stairs([share], [left, right], fill=True, color=_P99_COLOR, alpha=0.7)
        ax.annotate(f"0 ms: {share:,.3g}%", (right, share), textcoords="offset points",
                    xytext=(3, 2), fontsize=8, color=_P99_COLOR)  # fmt: skip
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
        ax.axvline(v, color=color, linestyle="--", linewidth=1, label=f"{name} {fmt_ms(v)} ms")
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter("{x:g}%")
    ax.set_title(f"{title} — {data.scenario_name} ({data.request_count:,} requests)")
    ax.set_xlabel("request latency (ms" + (", log scale)" if log else ")"))
    ax.set_ylabel("share of requests per bin")
    side_legend(ax)
    return Chart(filename, title, caption, png_bytes(fig))


def _chart_amplification(data: ReportData) -> Chart | None:
    """User requests -> service calls -> backend ops, split into first tries, retries and
    hedges, and the wasted part: a waterfall in units per second."""
    filename, title = "amplification.png", "Amplification"
    s = data.summary
    arrived, duration = dig(s, "requests.arrived"), s.get("duration_s")
    if is_missing(arrived) or not arrived or not duration:
        return None
    rps = arrived / duration

    def per_s(path: str) -> float:
        v = dig(s, path)
        return 0.0 if is_missing(v) else float(v) * rps

    calls, ops = per_s("amplification.calls_per_request"), per_s("amplification.ops_per_request")
    split = dig(s, "amplification.ops_split_per_request") or {}
    first = per_s("amplification.ops_split_per_request.nominal") if split else ops
    retries = per_s("amplification.ops_split_per_request.retries")
    hedges = per_s("amplification.ops_split_per_request.hedges")
    wasted = per_s("amplification.wasted_ops_per_request")
    # (label, left, width, style)
    solid = {"color": "tab:blue"}
    bars = [
        ("user requests", 0.0, rps, {"color": "0.55"}),
        ("service calls", 0.0, calls, {"color": "tab:cyan"}),
    ]
    if retries or hedges:  # the split only where policies added something
        bars += [("backend ops: first tries", 0.0, first, solid)]
        bars += [("+ retries", first, retries, {"color": "tab:orange"})] if retries else []
        bars += [("+ hedges", first + retries, hedges, {"color": "tab:olive"})] if hedges else []
        bars += [("= backend ops", 0.0, ops, {"color": "tab:purple"})]
    else:
        bars += [("backend ops", 0.0, ops, {"color": "tab:purple"})]
    if wasted:
        bars += [("of which wasted", 0.0, wasted,
                  {"color": "tab:red", "hatch": "//", "alpha": 0.6})]  # fmt: skip
    fig, (ax,) = fixed_figure(left=1.95, right=0.3)  # room for "backend ops: first tries"
    ax.grid(False, axis="y")
    y = np.arange(len(bars))[::-1]
    for yi, (label, left, width, style) in zip(y, bars, strict=True):
        ax.barh(yi, width, left=left, height=0.6, **style)
        ratio = f" · {width / rps:,.3g} per request" if label != "user requests" else ""
        ax.annotate(
            f"{fmt_num(width)}/s{ratio}",
            (left + width, yi),
            textcoords="offset points",
            xytext=(4, 0),
            va="center",
            fontsize=8,
            zorder=4,  # over the dashed topology line, on a white ground: never crossed out
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1},
        )
    offered = dig(s, "offered_rps")
    nominal = dig(s, "amplification.nominal_ops_per_request")
    if not is_missing(offered) and not is_missing(nominal) and nominal:
        ax.axvline(
            offered * nominal,
            color="0.3",
            linestyle="--",
            linewidth=1,
            label=f"topology: {fmt_num(offered)} rps × {fmt_num(nominal)} ops "
            f"= {fmt_num(offered * nominal)} ops/s",
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
    absent = [name for name, v in (("retries", retries), ("hedges", hedges),
                                   ("wasted ops", wasted)) if not v]  # fmt: skip
    if absent:
        caption += f" No {' or '.join(absent)} in this run, so no bar for them."
    return Chart(filename, title, caption, png_bytes(fig))


_SERVICE_COLORS = ["tab:purple", "tab:cyan", "tab:brown", "tab:pink", "tab:green", "tab:olive",
                   "tab:blue", "tab:orange", "tab:red", "tab:gray"]  # fmt: skip
_PART_COLORS = {"queueing": "tab:red", "service": "tab:blue", "failed_attempts": "tab:orange",
                "backoff": "0.6", "hedge_delay": "tab:olive"}  # fmt: skip


def _chart_tail_attribution(data: ReportData) -> Chart | None:
    """For the slowest 1% and 0.1% of requests: the service each waited on, and where their
    time went (summary.json's tail_attribution), as two rows of 100% stacked bars; none when
    they all waited on one service (the section's sentences then say everything)."""
    filename, title = "tail_attribution.png", "Which service sets the tail"
    attribution = data.summary.get("tail_attribution") or {}
    levels = [(level, figures) for level, figures in attribution.items()
              if figures and not is_missing(figures["waited_on"].get("none"))]  # fmt: skip
    several = any(sum(1 for v in f["waited_on"].values() if v) > 1 for _level, f in levels)
    if not several:  # one service waited on: the section's sentences say it all
        return None
    first = levels[0][1]["waited_on"]
    services = sorted((k for k in first if k != "none"), key=lambda k: -first[k]) + ["none"]
    colors = dict(zip(services, _SERVICE_COLORS * 3, strict=False))
    colors["none"] = "0.85"
    fig, (who_ax, time_ax) = fixed_figure(2, left=1.35)  # "slowest 0.1%" over "(1,234 req.)"
    y = np.arange(len(levels))[::-1]
    for ax, key, order, palette in (
        (who_ax, "waited_on", services, colors),
        (time_ax, "time_share", list(_PART_COLORS), _PART_COLORS),
    ):
        labelled: set[str] = set()
        for yi, (_level, figures) in zip(y, levels, strict=True):
            left = 0.0
            for name in order:
                share = 100.0 * (figures[key].get(name) or 0.0)
                if share <= 0.0:
                    continue
                text = name.replace("_", " ")
                ax.barh(yi, share, left=left, height=0.6, color=palette[name],
                        label=None if name in labelled else text)  # fmt: skip
                labelled.add(name)
                if share >= 12.0:
                    ax.text(left + share / 2, yi, f"{share:.0f}%", ha="center", va="center",
                            fontsize=8, color="white")  # fmt: skip
                left += share
        ax.set_yticks(y, [f"slowest {'1' if lv == 'p99' else '0.1'}%\n({fmt_num(f['requests'])}"
                          f" req.)" for lv, f in levels])  # fmt: skip
        ax.grid(False, axis="y")
        side_legend(ax)
    who_ax.set_title(f"{title} — {data.scenario_name}")
    who_ax.set_ylabel("waited on")
    time_ax.set_ylabel("their time")
    time_ax.set_xlim(0, 100)
    time_ax.xaxis.set_major_formatter("{x:g}%")
    time_ax.set_xlabel("share of the slowest requests (top) and of their summed latency (bottom)")
    caption = (
        "Each request's critical path is the answer every fan-in waited for, followed down "
        "the call tree. Top: the service on it with the largest own time (queueing plus its "
        "own latency, its downstream calls excluded), for the slowest 1% and 0.1% of the "
        "window's requests. Bottom: how their time divides into queueing for workers, "
        "service, attempts that failed or timed out, retry backoff and waiting for a hedge."
    )
    return Chart(filename, title, caption, png_bytes(fig))


# The report's charts by page section, in page order. A new chart is one function listed
# here (the call graph, which needs the scenario, is in :mod:`.callgraph`).
_COST_COLORS = {"capacity": "tab:gray", "nominal": "tab:blue", "retries": "tab:orange",
                "hedges": "tab:olive", "wasted": "tab:red"}  # fmt: skip


def _chart_cost(data: ReportData) -> Chart | None:
    """A month's cost per priced service: capacity, then usage by why the calls were made
    (summary.json's cost); none when nothing is priced."""
    cost = data.summary.get("cost")
    if not cost:
        return None
    filename, title = "cost.png", "What it costs"
    services = sorted(cost["services"], key=lambda n: -cost["services"][n]["per_month"]["total"])
    fig, (ax,) = fixed_figure(1, left=1.35)
    y = np.arange(len(services))[::-1]
    labelled: set[str] = set()
    for yi, name in zip(y, services, strict=True):
        month = cost["services"][name]["per_month"]
        parts = {"capacity": month["capacity"], **month["usage_by_cause"]}
        left = 0.0
        for part, amount in parts.items():
            if not amount:
                continue
            ax.barh(yi, amount, left=left, height=0.6, color=_COST_COLORS[part],
                    label=None if part in labelled else part)  # fmt: skip
            labelled.add(part)
            left += amount
        ax.text(left, yi, " " + money(month["total"], cost["currency"]), va="center", fontsize=8)
    ax.set_yticks(y, services)
    ax.grid(False, axis="y")
    ax.set_xlabel(f"per month ({cost['currency']}, {fmt_num(cost['hours_per_month'])} hours)")
    ax.set_title(f"{title} — {data.scenario_name}")
    ax.margins(x=0.12)
    side_legend(ax)
    caption = (
        "A month at the measured window's rates. Capacity is instances × their hourly price, "
        "paid whatever the load; usage is the calls each service served × its price per "
        "million, split by why they were made: nominal calls, retries and hedges (with the "
        "calls below them), and wasted work (answers that came after their caller gave up)."
    )
    return Chart(filename, title, caption, png_bytes(fig))


SECTIONS: dict[str, tuple[Callable[[ReportData], Chart | None], ...]] = {
    "latency": (_chart_latency_percentiles, _chart_latency_distribution),
    "tail": (_chart_tail_attribution,),
    "amplification": (_chart_amplification,),
    "cost": (_chart_cost,),
    "time": (_chart_throughput_over_time, _chart_latency_over_time, _chart_services_over_time),
}


def draw_charts(data: ReportData) -> dict[str, list[Chart]]:
    """Every chart of the report by section, leaving out those with nothing to show."""
    return {
        section: [chart for make in makers if (chart := make(data)) is not None]
        for section, makers in SECTIONS.items()
    }
