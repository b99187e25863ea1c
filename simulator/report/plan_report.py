"""A plan's report: the knee chart (each SLO figure against the searched key, the probes' means
with their confidence intervals, the SLO line, the answer and its interval marked) and a page
with the answer, the headroom and the probes. It reads only ``plan.json``'s dict, never the
engine or the search."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..results.files import write_atomic
from ..results.format import fmt_num, fmt_pct
from .figure import Chart, new_figure, png_bytes, side_legend
from .html import environment

REPORT_FILENAME = "report.html"
KNEE_FILENAME = "knee.png"
TEMPLATE_NAME = "plan.html.j2"
OUTCOME_STYLE = {  # outcome: (marker, colour, legend)
    "pass": ("o", "tab:green", "meets the SLO"),
    "fail": ("s", "tab:red", "fails it"),
    "undecided": ("D", "tab:gray", "cannot tell at the replication cap"),
}


def knee_chart(plan: Mapping[str, Any]) -> Chart:
    """One panel per SLO term against the searched key."""
    terms = plan["slo"]
    fig, axes = new_figure(len(terms))
    fig.set_figheight(2.6 + 1.9 * len(terms))
    probes = sorted(plan["probes"], key=lambda p: p["value"])
    lo, hi = plan["interval"]
    for ax, term in zip(axes, terms, strict=True):
        metric = term["metric"]
        scale = 100.0 if term.get("unit") == "%" else 1.0
        threshold = term["threshold"] * scale
        xs = [p["value"] for p in probes]
        means = [_get(p, metric, "mean") * scale for p in probes]
        finite = [m for m in means if math.isfinite(m)]
        # a probe far past capacity would flatten the knee into the x axis: show it at the top
        top = max(threshold, 1e-9) * 2.5 if finite and max(finite) > threshold * 2.5 else None
        ax.plot(xs, [min(m, top or m) for m in means], "-", color="tab:blue", lw=1, alpha=0.6)
        shown: set[str] = set()
        for p, x, y in zip(probes, xs, means, strict=True):
            marker, color, label = OUTCOME_STYLE[p["outcome"]]
            half = _get(p, metric, "half_width") * scale
            if top is not None and y > top:
                marker, y, half = "^", top, math.nan  # off the chart: marked at its edge
            ax.errorbar([x], [y], yerr=None if math.isnan(half) else [[half], [half]],
                        fmt=marker, color=color, ms=5, capsize=3,
                        label=None if label in shown else label)  # fmt: skip
            shown.add(label)
            if p.get("unstable_runs"):
                ax.plot([x], [y], "x", color="black", ms=9, mew=1.5,
                        label=None if "unstable" in shown else "unstable run(s)")  # fmt: skip
                shown.add("unstable")
        ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"SLO {term['text']}")
        if lo is not None and hi is not None:
            ax.axvspan(lo, hi, color="tab:orange", alpha=0.15, lw=0, label="answer interval")
        if plan.get("value") is not None:
            ax.axvline(plan["value"], color="tab:orange", lw=1.5, label="answer")
        if top is not None:
            ax.set_ylim(top=top * 1.05)
        unit = term.get("unit") or ""
        ax.set_ylabel(f"{metric} ({unit})" if unit else metric)
        side_legend(ax)
    axes[-1].set_xlabel(plan["find"])
    axes[0].set_title(f"{plan['find']} against the SLO (the {plan['goal']} that meets it)")
    confidence = f"{plan['confidence']:.0%}"
    caption = (
        f"Each probe: the mean over its replications with its {confidence} confidence interval; "
        "green meets the SLO at that confidence, red fails it, grey could not be told apart at "
        "the replication cap; a triangle is off the chart's top. A probe with an unstable run "
        "(black cross: a service at or past its capacity) fails whatever its figures. The "
        "shaded band is the interval the answer lies in."
    )
    return Chart(KNEE_FILENAME, "The knee", caption, png_bytes(fig))


def headroom_line(plan: Mapping[str, Any]) -> str | None:
    """How close the answer runs to capacity, in one sentence."""
    h = plan.get("headroom")
    if not h:
        return None
    return (
        f"At the answer ({fmt_num(plan['value'])}) the busiest service, {h['service']}, is "
        f"{fmt_pct(h['utilization'])} busy, with {fmt_num(h['measured_rps'])} requests/s "
        f"arriving (measured); it reaches capacity at about {fmt_num(h['capacity_rps'])} "
        f"requests/s ({fmt_pct(h['headroom'])} headroom)."
    )


def write_plan_report(plan: Mapping[str, Any], answer: str, out_dir: Path) -> list[Path]:
    """``knee.png`` and ``report.html`` into ``out_dir``; return their paths."""
    chart = knee_chart(plan)
    rows = []
    for i, p in enumerate(plan["probes"], 1):
        busiest = p.get("busiest") or {}
        rows.append({
            "n": i, "value": fmt_num(p["value"]), "outcome": p["outcome"], "runs": p["runs"],
            "busy": "" if not busiest else
            f"{busiest['service']} {fmt_pct(busiest['utilization'])}",
            "reason": p["reason"],
        })  # fmt: skip
    html = _page(plan, answer, headroom_line(plan), plan.get("limited_by"), [chart], rows,
                 plan["find"])  # fmt: skip
    return [
        write_atomic(out_dir / chart.filename, chart.png),
        write_atomic(out_dir / REPORT_FILENAME, html),
    ]


def _page(plan, answer, run_line, limited_by, charts, rows, find) -> str:
    """The plan page (plan.html.j2): the answer, what to read with it, the charts, the
    probes in the order run."""
    return (
        environment()
        .get_template(TEMPLATE_NAME)
        .render(
            scenario=plan["scenario"],
            description=answer,
            run_line=run_line,
            notes=plan.get("notes", []),
            limited_by=limited_by,
            charts=charts,
            probes=rows,
            find=find,
        )  # fmt: skip
    )


def _get(probe: Mapping[str, Any], metric: str, key: str) -> float:
    value = (probe.get("figures") or {}).get(metric, {}).get(key)
    return math.nan if value is None else float(value)


def write_cost_plan_report(plan: Mapping[str, Any], answer: str, out_dir: Path) -> list[Path]:
    """``fansim plan --minimize cost``: ``cost_p99.png`` (every point run, cost against p99)
    and ``report.html`` with the points in the order run; return their paths."""
    from .sweep_report import cost_chart

    chart = cost_chart(plan)
    rows = [
        {
            "n": i,
            "value": ", ".join(f"{k}={v}" for k, v in p["values"].items()),
            "outcome": p["outcome"],
            "runs": p["runs"],
            "busy": "" if p["cost_per_month"] is None else f"{p['cost_per_month']:,.2f} a month",
            "reason": p["reason"],
        }  # fmt: skip
        for i, p in enumerate(plan["points"], 1)
    ]
    closest = plan.get("closest_cheaper")
    run_line = f"{plan['points_run']} points run, {plan['points_skipped']} not needed"
    html = _page(plan, answer, run_line, None if closest is None else closest["reason"],
                 [chart] if chart is not None else [], rows, "design (cost)")  # fmt: skip
    written = [write_atomic(out_dir / REPORT_FILENAME, html)]
    if chart is not None:
        written.insert(0, write_atomic(out_dir / "cost_p99.png", chart.png))
    return written
