"""A sweep's report: each chosen figure against the swept parameter, the mean over replications
with its Student-t 95% confidence band, a second parameter as separate lines, and the points
where any replication was unstable marked. It reads only the sweep's rows (a DataFrame with the
columns ``experiments.sweep`` writes), never the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..results.files import write_atomic
from ..results.format import fmt_num
from ..results.summary import mean_half_width
from .figure import Chart, maybe_log_y, new_figure, png_bytes, side_legend
from .html import environment

if TYPE_CHECKING:
    import pandas as pd

REPORT_FILENAME = "report.html"
TEMPLATE_NAME = "sweep.html.j2"
# (column, title, unit): the default figures; the busiest service's utilization is added.
FIGURES = (
    ("latency_ms.p50", "p50 latency", "ms"),
    ("latency_ms.p99", "p99 latency", "ms"),
    ("latency_ms.p999", "p99.9 latency", "ms"),
    ("amplification.ops_per_sec", "Backend ops", "ops/s"),
    ("throughput_rps", "Goodput", "requests/s"),
)
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def busiest_utilization(rows: pd.DataFrame) -> str | None:
    """The utilization column of the service busiest on average over the sweep, if any."""
    columns = [c for c in rows.columns if c.startswith("services.") and c.endswith(".utilization")]
    means = {c: rows[c].astype(float).mean() for c in columns if rows[c].notna().any()}
    return max(means, key=means.get) if means else None


def mean_and_band(values: np.ndarray) -> tuple[float, float]:
    """Mean and Student-t 95% half-width (NaN with one value) of one point's replications."""
    return mean_half_width(values[np.isfinite(values)], 0.95)


def chart(rows: pd.DataFrame, column: str, title: str, unit: str, keys: Sequence[str]) -> Chart:
    """One figure against the first swept key; a line per value of the second key."""
    x_key = f"grid.{keys[0]}"
    line_key = f"grid.{keys[1]}" if len(keys) > 1 else None
    fig, (ax,) = new_figure()
    groups = [(None, rows)] if line_key is None else list(rows.groupby(line_key, sort=False))
    for i, (label, group) in enumerate(groups):
        color = COLORS[i % len(COLORS)]
        xs, means, halves, unstable = [], [], [], []
        for x, point in group.groupby(x_key, sort=True):
            mean, half = mean_and_band(point[column].astype(float).to_numpy())
            xs.append(float(x))
            means.append(mean)
            halves.append(half)
            unstable.append(
                bool(point.get("unstable", False).any()) if "unstable" in point else False
            )
        xs_a, m, h = np.array(xs), np.array(means), np.array(halves)
        name = None if line_key is None else f"{keys[1]} = {label}"
        ax.plot(xs_a, m, "o-", color=color, lw=1.5, ms=4, label=name)
        if np.isfinite(h).any():
            ax.fill_between(xs_a, m - h, m + h, color=color, alpha=0.18, lw=0)
        marks = np.array(unstable)
        if marks.any():
            ax.plot(xs_a[marks], m[marks], "x", color="tab:red", ms=9, mew=2,
                    label="unstable" if i == 0 else None)  # fmt: skip
    ax.set_xlabel(keys[0])
    ax.set_ylabel(f"{title} ({unit})")
    ax.set_title(title)
    if line_key is not None or "unstable" in rows and rows["unstable"].any():
        side_legend(ax)
    reps = int(rows["replication"].max()) + 1 if len(rows) else 0
    caption = (
        f"{title} against {keys[0]}: the mean of {reps} replication"
        f"{'s' * (reps != 1)} per point"
        + (", with its Student-t 95% confidence band" if reps > 1 else "")
        + (f"; a line per {keys[1]}" if line_key else "")
        + ". Red crosses: a point where some replication was unstable (a service's load at its "
        "capacity), whose figures grow with run length."
    )
    filename = "sweep_" + column.replace(".", "_") + ".png"
    return Chart(filename, title, caption, png_bytes(fig))


def cost_chart(slo: Mapping[str, Any]) -> Chart | None:
    """Each point's mean monthly cost against its mean p99, the points that meet the SLO
    filled, the Pareto front drawn, the cheapest that meets it named (``slo``: the sweep's
    judged points, as sweep.json's ``slo``); none when nothing is priced."""
    pts = [p for p in slo["points"] if p["cost_per_month"] is not None and p["p99_ms"] is not None]
    if not pts:
        return None
    fig, (ax,) = new_figure()
    for meets, style in (
        (False, {"mfc": "white", "color": "0.55"}),
        (True, {"color": "tab:green"}),
    ):
        group = [p for p in pts if p["meets"] == meets]
        if not group:
            continue
        ax.errorbar([p["cost_per_month"] for p in group], [p["p99_ms"] for p in group],
                    yerr=[p["p99_half_width"] or 0.0 for p in group], fmt="o", ms=5, lw=1,
                    label="meets the SLO" if meets else "does not (or undecided)",
                    **style)  # fmt: skip
    front = sorted((p for p in pts if p["pareto"]), key=lambda p: p["cost_per_month"])
    if front:
        ax.step([p["cost_per_month"] for p in front], [p["p99_ms"] for p in front], where="post",
                color="tab:blue", lw=1, alpha=0.7, label="Pareto front (cost, p99)")  # fmt: skip
    for term in slo["terms"]:
        if term["metric"] == "p99":
            ax.axhline(
                term["threshold"], color="tab:red", ls="--", lw=1, label=f"SLO {term['text']}"
            )
    best = slo.get("cheapest")
    if best is not None:
        ax.annotate("cheapest that meets it", (best["cost_per_month"], best["p99_ms"]),
                    xytext=(10, 12), textcoords="offset points", fontsize=8,
                    arrowprops={"arrowstyle": "->", "lw": 0.8})  # fmt: skip
    maybe_log_y(ax, np.array([p["p99_ms"] for p in pts], dtype=float))
    ax.set_xlabel(f"cost per month ({slo['currency']})")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title("Cost against p99")
    side_legend(ax)
    caption = (
        f"Each grid point's mean monthly cost and mean p99 over its replications (bars: the "
        f"{slo['confidence']:.0%} interval). Filled: the point meets {slo['text']} with that "
        "confidence. The Pareto front joins the points no other point beats on both cost and p99."
    )
    return Chart("sweep_cost_p99.png", "Cost against p99", caption, png_bytes(fig))


def write_sweep_report(
    rows: pd.DataFrame,
    keys: Sequence[str],
    out_dir: Path,
    scenario_name: str,
    slo: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write a PNG per figure and ``report.html`` into ``out_dir``; return their paths. With
    ``slo`` (sweep.json's: every point judged), also cost against p99 and the cheapest point
    that meets it."""
    figures = list(FIGURES)
    busiest = busiest_utilization(rows)
    if busiest is not None:
        name = busiest.removeprefix("services.").removesuffix(".utilization")
        figures.append((busiest, f"Utilization of {name}", "share of workers"))
    charts = [chart(rows, c, t, u, keys) for c, t, u in figures if c in rows]
    if "cost.per_month.total" in rows:
        charts.append(chart(rows, "cost.per_month.total", "Cost per month", "currency", keys))
    lines = []
    if slo is not None:
        lines = slo_lines(slo)
        if (cost := cost_chart(slo)) is not None:
            charts.insert(0, cost)
    points = rows["point"].nunique() if len(rows) else 0
    reps = int(rows["replication"].max()) + 1 if len(rows) else 0
    html = (
        environment()
        .get_template(TEMPLATE_NAME)
        .render(
            scenario=scenario_name,
            description=None,
            run_line=f"{fmt_num(points)} points × {fmt_num(reps)} replications over "
            + ", ".join(keys),
            charts=charts,
            slo_lines=lines,
        )
    )
    written = [write_atomic(out_dir / c.filename, c.png) for c in charts]
    written.append(write_atomic(out_dir / REPORT_FILENAME, html))
    return written


def slo_lines(slo: Mapping[str, Any]) -> list[str]:
    """The SLO's verdict in words: how many points meet it, and the cheapest of them."""
    pts = slo["points"]
    meets = sum(p["meets"] for p in pts)
    lines = [f"{meets} of {len(pts)} points meet {slo['text']} ({slo['confidence']:.0%} "
             "confidence: every term's interval on the right side of its line)."]  # fmt: skip
    best = slo.get("cheapest")
    if best is not None:
        keys = ", ".join(f"{k} = {v}" for k, v in best["values"].items())
        lines.append(
            f"The cheapest that meets it: {keys}, at {best['cost_per_month']:,.2f} "
            f"{slo['currency']} a month (p99 {best['p99_ms']:.4g} ms)."
        )
    elif meets and not any(p["cost_per_month"] is not None for p in pts):
        lines.append("No service has a price (cost:), so no point is the cheapest.")
    return lines
