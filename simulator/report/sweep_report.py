"""A sweep's report: each chosen figure against the swept parameter, the mean over replications
with its Student-t 95% confidence band, a second parameter as separate lines, and the points
where any replication was unstable marked. It reads only the sweep's rows (a DataFrame with the
columns ``experiments.sweep`` writes), never the engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..results.files import write_atomic
from ..results.format import fmt_num
from ..results.summary import mean_half_width
from .figure import Chart, new_figure, png_bytes, side_legend
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


def write_sweep_report(
    rows: pd.DataFrame, keys: Sequence[str], out_dir: Path, scenario_name: str
) -> list[Path]:
    """Write a PNG per figure and ``report.html`` into ``out_dir``; return their paths."""
    figures = list(FIGURES)
    busiest = busiest_utilization(rows)
    if busiest is not None:
        name = busiest.removeprefix("services.").removesuffix(".utilization")
        figures.append((busiest, f"Utilization of {name}", "share of workers"))
    charts = [chart(rows, c, t, u, keys) for c, t, u in figures if c in rows]
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
        )
    )
    written = [write_atomic(out_dir / c.filename, c.png) for c in charts]
    written.append(write_atomic(out_dir / REPORT_FILENAME, html))
    return written
