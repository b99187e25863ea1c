"""``fansim compare``: put finished runs side by side, the first run as the baseline.

The comparison reads only the run directories (:mod:`.runs`), never the engine. It is built
from the same small pieces as the run report:

* each chart is a function ``(runs) -> Chart | None`` listed in ``compare_charts._CHARTS``;
* each table is a function building plain rows for ``templates/compare.html.j2``.

A figure a run lacks shows as "—" and is never required. Importing this module costs little:
jinja2 and matplotlib are imported only inside the functions that use them.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..results.cost import HOURS_PER_MONTH, money
from ..results.files import write_atomic
from ..results.format import DASH, fmt_ms, fmt_num, fmt_pct, fmt_sig, fmt_signed
from ..results.outdir import staged_dir
from .compare_charts import draw_charts
from .figure import Chart
from .html import environment
from .runs import RunData

__all__ = ["render_html", "write_comparison"]

COMPARE_FILENAME = "compare.html"
# the charts shown first, under the runs table: which run pays, and the latency curves
FIRST_CHARTS = ("compare_tradeoff.png", "compare_latency_percentiles.png")
TEMPLATE_NAME = "compare.html.j2"


# --------------------------------------------------------------------------- tables


@dataclasses.dataclass(frozen=True)
class Value:
    """One run's formatted figure; for a what-if, its change against the baseline."""

    text: str
    ci: str | None = None
    change: str = ""
    tone: str = ""  # "better", "worse" or "same" (a CSS class)
    hint: str = ""  # tooltip


@dataclasses.dataclass(frozen=True)
class Metric:
    """A table row (or column): where the figure is and how to show and compare it."""

    label: str
    path: str
    fmt: Callable[[Any], str]
    unit: str = ""
    better: str = ""  # "lower", "higher" or "" (neither: a change is just a change)
    points: bool = False  # a share: values are fractions, changes in percentage points
    share_of: str = ""  # divide by this figure first (e.g. requests.arrived)
    optional: bool = False  # dropped when no run has it


# A change smaller than this (relative, or in percentage points for shares) is not coloured
# better or worse: without replications there is no interval to judge it by.
NEGLIGIBLE_CHANGE = 0.01
SINGLE_SEED_HINT = (
    "one seed each: no 95% interval to tell this change from noise "
    "(run both with --replications 5 or more)"
)
NEGLIGIBLE_POINTS = 0.001


def _figure(run: RunData, m: Metric, prefix: str = "") -> tuple[float | None, float | None]:
    value, ci = run.number(prefix + m.path), run.ci(prefix + m.path)
    if m.share_of:
        whole = run.number(m.share_of)
        value = None if value is None or not whole else value / whole
        ci = None  # a count's half-width over the total is not the share's: show none
    return value, ci


def describe_change(m: Metric, base: tuple, new: tuple) -> tuple[str, str, str]:
    """(change text, tone, hint) of ``new`` against ``base``, each a (value, ci) pair."""
    (b, b_ci), (v, v_ci) = base, new
    if b is None or v is None:
        return "", "", ""
    if v == b:
        return "=", "same", "same as the baseline"
    if m.points:
        text = fmt_signed(100.0 * (v - b), " pp")
    elif b == 0:
        text = f"from 0 to {m.fmt(v)}"
    elif v / b >= 2 or 0 < v / b <= 0.5:
        factor = fmt_sig(v / b, 2)  # 2 significant digits, no trailing zero: ×2, ×2.5, ×0.4
        text = "×" + (factor.rstrip("0").rstrip(".") if "." in factor else factor)
    else:
        text = fmt_signed(100.0 * (v / b - 1), "%")
    if b_ci is not None or v_ci is not None:
        # With replications: a difference inside the combined 95% half-widths is one the
        # replications cannot tell apart. A run without replications adds no width (its
        # own noise is unknown): the test then uses the other run's width alone.
        if abs(v - b) <= math.hypot(b_ci or 0.0, v_ci or 0.0):
            return text, "same", "within the combined 95% intervals"
    small = abs(v - b) < NEGLIGIBLE_POINTS if m.points else b and abs(v / b - 1) < NEGLIGIBLE_CHANGE
    if not m.better or small:
        return text, "", ""
    if b_ci is None and v_ci is None:  # single seeds: nothing to tell the change from noise
        return text, "unsure", SINGLE_SEED_HINT
    good = (v < b) == (m.better == "lower")
    return text, "better" if good else "worse", ""


def _values(runs: Sequence[RunData], m: Metric, prefix: str = "") -> list[Value]:
    figures = [_figure(run, m, prefix) for run in runs]
    out = []
    for i, (value, ci) in enumerate(figures):
        text = m.fmt(value)
        change = ("", "", "") if i == 0 else describe_change(m, figures[0], (value, ci))
        shown_ci = None if ci is None or ci == 0 else m.fmt(ci)  # "± 0": a fixed input
        out.append(Value(text, shown_ci, *change))
    return out


_ARRIVED = "requests.arrived"
HEADLINE: tuple[tuple[str, tuple[Metric, ...]], ...] = (
    (
        "Latency",
        tuple(
            Metric(label, f"latency_ms.{key}", fmt_ms, "ms", "lower")
            for label, key in (
                ("Mean", "mean"),
                ("p50", "p50"),
                ("p90", "p90"),
                ("p99", "p99"),
                ("p99.9", "p999"),
                ("Max", "max"),
            )
        ),
    ),
    (
        "Outcomes (share of arrived)",
        tuple(
            Metric(label, f"requests.{key}", fmt_pct, "", better, True, _ARRIVED)
            for label, key, better in (
                ("OK", "ok", "higher"),
                ("Partial", "partial", "lower"),
                ("Failed", "failed", "lower"),
                ("Rejected", "rejected", "lower"),
            )
        ),
    ),
    (
        "Amplification",
        (
            Metric("Calls / request", "amplification.calls_per_request", fmt_num, "", "lower"),
            Metric("Ops / request", "amplification.ops_per_request", fmt_num, "", "lower"),
            Metric(
                "Wasted ops / request",
                "amplification.wasted_ops_per_request",
                fmt_num,
                "",
                "lower",
                optional=True,
            ),
            Metric("Backend ops / s", "amplification.ops_per_sec", fmt_num, "ops/s"),
        ),
    ),
    (
        "Load",
        (
            Metric("Offered", "offered_rps", fmt_num, "rps"),
            Metric("Throughput (ok + partial)", "throughput_rps", fmt_num, "rps", "higher"),
            Metric("Arrived", _ARRIVED, fmt_num, "requests"),
        ),
    ),
)


SERVICE_METRICS: tuple[Metric, ...] = (
    Metric("Calls/s", "calls_per_sec", fmt_num),
    Metric("Utilization", "utilization", fmt_pct, points=True),
    Metric("Rejected", "rejected", fmt_num, better="lower"),
    Metric("Errors", "errors", fmt_num, better="lower"),
    Metric("Timeouts", "timeouts", fmt_num, better="lower"),
    Metric("Retries", "retries", fmt_num),
    Metric("Hedges", "hedges", fmt_num),
    Metric("Mean ms", "latency_ms.mean", fmt_ms, better="lower", optional=True),
    Metric("p99 ms", "latency_ms.p99", fmt_ms, better="lower"),
)


def _present(runs: Sequence[RunData], m: Metric, prefixes: Sequence[str] = ("",)) -> bool:
    return not m.optional or any(r.number(p + m.path) is not None for r in runs for p in prefixes)


def headline_rows(runs: Sequence[RunData]) -> list[tuple[str, list[tuple[Metric, list[Value]]]]]:
    """(group title, [(metric, one value per run)]) for the side-by-side headline table."""
    return [
        (title, [(m, _values(runs, m)) for m in metrics if _present(runs, m)])
        for title, metrics in HEADLINE + cost_groups(runs) + tail_groups(runs)
    ]


def cost_groups(runs: Sequence[RunData]) -> tuple[tuple[str, tuple[Metric, ...]], ...]:
    """What each run costs a month (summary.json's cost), when some run is priced; amounts
    in the baseline's currency (or the first priced run's)."""
    priced = [r for r in runs if isinstance(r.summary.get("cost"), Mapping)]
    if not priced:
        return ()
    currency = priced[0].summary["cost"]["currency"]

    def fmt(x: Any) -> str:
        return money(x, currency)

    metrics = tuple(
        Metric(label, f"cost.{path}", fmt, "", "lower")
        for label, path in (
            ("Total / month", "per_month.total"),
            ("Capacity / month", "per_month.capacity"),
            ("Usage / month", "per_month.usage"),
            ("Added by retries, hedges, waste", "per_month.policies"),
            ("Per million requests", "per_million_requests.total"),
        )
    )
    return ((f"Cost ({currency}, {fmt_num(HOURS_PER_MONTH)} h a month)", metrics),)


def tradeoff(base: RunData, run: RunData) -> str:
    """A what-if's price in one line: "p99 −60.1%, +$1,240 a month" (the cost part only when
    both runs are priced in one currency)."""
    parts = []
    b, v = base.number("latency_ms.p99"), run.number("latency_ms.p99")
    if b and v is not None:
        parts.append("p99 " + fmt_signed(100.0 * (v / b - 1), "%"))
    cb, cv = base.summary.get("cost"), run.summary.get("cost")
    if isinstance(cb, Mapping) and isinstance(cv, Mapping) and cb["currency"] == cv["currency"]:
        delta = cv["per_month"]["total"] - cb["per_month"]["total"]
        sign = "+" if delta >= 0 else "−"
        parts.append(f"{sign}{money(abs(delta), cb['currency'])} a month")
    return ", ".join(parts)


TAIL_PARTS = ("queueing", "service", "failed_attempts", "backoff", "hedge_delay")


def tail_groups(runs: Sequence[RunData]) -> tuple[tuple[str, tuple[Metric, ...]], ...]:
    """How the slowest 1% moved (summary.json's tail_attribution): the share that waited on
    each service, and how their time divides; only the services and parts some run has."""
    prefix = "tail_attribution.p99."

    def shown(path: str) -> bool:
        return any((r.number(prefix + path) or 0.0) > 0.0 for r in runs)

    services = list(dict.fromkeys(s for r in runs for s in [*r.services, "none"]))
    services.sort(key=lambda s: -(runs[0].number(f"{prefix}waited_on.{s}") or 0.0))
    waited = tuple(
        Metric(
            "no service (deadline)" if s == "none" else s,
            f"{prefix}waited_on.{s}",
            fmt_pct,
            "",
            "",
            True,
        )  # fmt: skip
        for s in services
        if shown(f"waited_on.{s}")
    )
    parts = tuple(
        Metric(
            part.replace("_", " ").capitalize(),
            f"{prefix}time_share.{part}",
            fmt_pct,
            "",
            "lower" if part != "service" else "",
            True,
        )  # fmt: skip
        for part in TAIL_PARTS
        if shown(f"time_share.{part}")
    )
    groups = []
    if waited:
        groups.append(("Slowest 1% of requests: waited on", waited))
    if parts:
        groups.append(("Slowest 1% of requests: their time", parts))
    return tuple(groups)


def service_table(
    runs: Sequence[RunData],
) -> tuple[list[Metric], list[tuple[str, list[tuple[RunData, list[Value]]]]]]:
    """The service columns, and per service (matched by name) one row of values per run."""
    services = list(dict.fromkeys(s for r in runs for s in r.services))
    prefixes = [f"services.{s}." for s in services]
    columns = [m for m in SERVICE_METRICS if _present(runs, m, prefixes)]
    rows = []
    for name, prefix in zip(services, prefixes, strict=True):
        per_metric = [_values(runs, m, prefix) for m in columns]
        rows.append((name, [(run, [col[i] for col in per_metric]) for i, run in enumerate(runs)]))
    return columns, rows


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested scenario as ``{"services.db.workers": 50, ...}``."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out |= _flatten(value, f"{prefix}{key}.")
        return out
    if isinstance(node, list) and any(isinstance(v, Mapping | list) for v in node):
        out = {}
        for i, value in enumerate(node):
            out |= _flatten(value, f"{prefix}{i}.")
        return out
    return {prefix.rstrip("."): node}


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return (
        fmt_num(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else str(value)
    )


WHAT_CHANGED_MAX = 6  # differences listed per run before "and N more"
IGNORED_KEYS = ("name", "description")


def what_changed(base: RunData, run: RunData) -> str:
    """How ``run``'s resolved scenario differs from the baseline's, key by key
    ("workload.rps 5,000 → 8,000"); from the summary's overrides when a run has no
    scenario.yaml; "" when nothing is known."""
    if base.scenario is None or run.scenario is None:
        overrides = run.summary.get("overrides")
        if isinstance(overrides, Mapping) and overrides:
            return "overrides " + ", ".join(f"{k}={v}" for k, v in overrides.items())
        return ""
    a, b = _flatten(base.scenario), _flatten(run.scenario)
    keys = [k for k in dict.fromkeys([*a, *b]) if k not in IGNORED_KEYS and a.get(k) != b.get(k)]
    if not keys:
        return "same scenario"
    shown = [f"{k} {_show(a.get(k))} → {_show(b.get(k))}" for k in keys[:WHAT_CHANGED_MAX]]
    if len(keys) > WHAT_CHANGED_MAX:
        shown.append(f"and {len(keys) - WHAT_CHANGED_MAX} more")
    return "; ".join(shown)


def run_rows(runs: Sequence[RunData]) -> list[tuple[RunData, list[str]]]:
    """The runs table: directory, scenario, seed, window, replications, what changed against
    the baseline (from the resolved scenarios), notes."""
    rows = []
    for i, run in enumerate(runs):
        reps = run.number("replications")
        cells = [
            str(run.path),
            str(run.summary.get("scenario", DASH)),
            fmt_num(run.number("seed")),
            fmt_num(run.number("duration_s")),
            fmt_num(run.number("warmup_s")),
            fmt_num(reps if reps is not None else 1),
            "; ".join(run.notes),
            "baseline" if i == 0 else what_changed(runs[0], run),
            "" if i == 0 else tradeoff(runs[0], run),
        ]
        rows.append((run, cells))
    return rows


# --------------------------------------------------------------------------- HTML and files


# The terminal's comparison: the figures a planner weighs first, each with its change.
TERMINAL_METRICS: tuple[Metric, ...] = (
    Metric("p50 ms", "latency_ms.p50", fmt_ms, "", "lower"),
    Metric("p99 ms", "latency_ms.p99", fmt_ms, "", "lower"),
    Metric("ok", "requests.ok", fmt_pct, "", "higher", True, _ARRIVED),
    Metric("ops/req", "amplification.ops_per_request", fmt_num, "", "lower"),
)


def terminal_rows(runs: Sequence[RunData]) -> tuple[list[str], list[list[str]]]:
    """Headings and one row per run for the terminal (80 columns): each figure followed by
    its change against the baseline (the first run)."""
    columns = [_values(runs, m) for m in TERMINAL_METRICS]
    rows = []
    for i, run in enumerate(runs):
        cells = [run.label]
        for values in columns:
            v = values[i]
            cells += [v.text, "" if i == 0 else v.change]
        rows.append(cells)
    headings = ["run"]
    for m in TERMINAL_METRICS:
        headings += [m.label, "Δ"]
    return headings, rows


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the PNG's IHDR chunk."""
    return struct.unpack(">II", png[16:24])


def render_html(runs: Sequence[RunData], charts: Sequence[Chart]) -> str:
    columns, services = service_table(runs)
    sized_charts = [(chart, *_png_size(chart.png)) for chart in charts]
    headline = headline_rows(runs)
    values = [v for _title, rows in headline for _m, vs in rows for v in vs]
    values += [v for _name, per_run in services for _run, vs in per_run for v in vs]
    whatifs = ", ".join(r.label for r in runs[1:])
    return (
        environment()
        .get_template(TEMPLATE_NAME)
        .render(
            scenario=f"{runs[0].label} vs {whatifs}",
            description=None,
            run_line=(
                f"baseline {runs[0].label} · what-if{'s' if len(runs) > 2 else ''} {whatifs} · "
                "changes are against the baseline"
            ),
            runs=runs,
            run_rows=run_rows(runs),
            headline=headline,
            service_columns=columns,
            services=services,
            first_charts=[sized for sized in sized_charts if sized[0].filename in FIRST_CHARTS],
            more_charts=[sized for sized in sized_charts if sized[0].filename not in FIRST_CHARTS],
            any_ci=any("ci95" in r.summary for r in runs),
            any_unsure=any(v.tone == "unsure" for v in values),
            mixed=mixed_scenarios(runs),
        )
    )


def mixed_scenarios(runs: Sequence[RunData]) -> str | None:
    """A warning when the runs come from different scenarios (by name), else None."""
    names = list(dict.fromkeys(str(r.summary.get("scenario")) for r in runs))
    if len(names) < 2:
        return None
    return (
        f"These runs come from different scenarios ({', '.join(names)}): each difference mixes "
        'everything that differs between them, not one what-if. See "What changed".'
    )


def write_comparison(runs: Sequence[RunData], out_dir: Path | str) -> list[Path]:
    """Write the PNG charts and a self-contained compare.html, replacing ``out_dir`` whole;
    return the paths written.

    Raises ScenarioError when ``out_dir`` cannot be used (see ``staged_dir``), OSError when a
    file cannot be written (the CLI reports either in one line)."""
    if len(runs) < 2:
        raise ValueError(f"a comparison needs at least 2 runs, got {len(runs)}")
    out_dir = Path(out_dir)
    with staged_dir(out_dir, markers=(COMPARE_FILENAME,)) as stage:
        charts = draw_charts(runs)
        html = render_html(runs, charts)
        written = [write_atomic(stage / chart.filename, chart.png) for chart in charts]
        written.append(write_atomic(stage / COMPARE_FILENAME, html))
    return [out_dir / p.name for p in written]
