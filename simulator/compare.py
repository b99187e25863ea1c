"""``fansim compare``: put finished runs side by side, the first run as the baseline.

The comparison reads only what ``fansim run`` wrote (SPEC §4): each run directory's
``summary.json``, ``timeseries.csv`` and ``percentiles.csv``; never the engine, never a
scenario file. It is built from the same small pieces as the run report:

* ``load_run`` turns one directory into a ``RunData`` or raises ``ScenarioError`` naming the
  file (``PATH: message``), so the CLI prints one line and exits 2;
* each chart is a function ``(runs) -> Chart | None`` listed in ``compare_charts._CHARTS``;
* each table is a function building plain rows for ``templates/compare.html.j2``.

The summary is read defensively: a figure a run lacks (an older run, or a key added later)
shows as "—" and is never required. Importing this module costs little: jinja2 and
matplotlib are imported only inside the functions that use them.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .charts import _DASH, Chart, _dig, _fmt_ms, _fmt_num, _fmt_pct, _fmt_sig, _is_missing
from .compare_charts import PERCENTILES_FILENAME, TIMESERIES_FILENAME, draw_charts
from .errors import ScenarioError
from .files import write_atomic

__all__ = ["RunData", "default_out_dir", "load_run", "load_runs", "write_comparison"]

COMPARE_FILENAME = "compare.html"
TEMPLATE_NAME = "compare.html.j2"
SUMMARY_FILENAME = "summary.json"

# One color per run, the baseline first: matplotlib's tab10, as hex for the HTML swatches too.
_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


# --------------------------------------------------------------------------- loading


@dataclasses.dataclass(frozen=True)
class RunData:
    """One run directory as read from disk; charts and tables take only a list of these."""

    path: Path
    name: str  # the directory's name, made unique among the runs compared
    label: str  # the name, and the scenario's when it differs: "hedge10 (hedging)"
    summary: Mapping[str, Any]
    # percentile (%) and latency_ms columns of percentiles.csv; None when the file is absent.
    percentiles: tuple[np.ndarray, np.ndarray] | None
    timeseries: dict[str, np.ndarray] | None
    color: str = _COLORS[0]
    notes: tuple[str, ...] = ()

    def number(self, path: str) -> float | None:
        """The summary's figure at dotted ``path`` as a float, or None when absent or odd."""
        return _number(_dig(self.summary, path))

    def ci(self, path: str) -> float | None:
        """The 95% half-width of that figure (runs with replications), or None."""
        return _number(_dig(self.summary.get("ci95"), path))

    @property
    def services(self) -> list[str]:
        services = self.summary.get("services")
        return list(services) if isinstance(services, Mapping) else []


def _number(x: Any) -> float | None:
    """A finite real number as float; None for anything else (null, NaN, text, a bool)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or _is_missing(x):
        return None
    return float(x)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScenarioError.single(str(path), "cannot read: not UTF-8 text") from None
    except OSError as e:
        raise ScenarioError.single(str(path), f"cannot read: {e.strerror}") from None


def _read_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / SUMMARY_FILENAME
    if not path.is_file():
        raise ScenarioError.single(
            str(run_dir), f"no {SUMMARY_FILENAME}: not a run directory written by `fansim run`"
        )
    try:
        summary = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise ScenarioError.single(str(path), f"invalid JSON: {e.msg}", e.lineno, e.colno) from None
    if not isinstance(summary, dict):
        raise ScenarioError.single(
            str(path), f"expected a JSON object, found {type(summary).__name__}"
        )
    if not isinstance(summary.get("requests"), dict) and not isinstance(
        summary.get("latency_ms"), dict
    ):
        raise ScenarioError.single(
            str(path), "not a fansim summary: no 'requests' or 'latency_ms' object"
        )
    return summary


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Header and a float matrix (empty cells as NaN); raise naming the line of a bad cell."""
    try:
        rows = list(csv.reader(_read_text(path).splitlines()))
    except csv.Error as e:
        raise ScenarioError.single(str(path), f"not CSV: {e}") from None
    if not rows or not any(h.strip() for h in rows[0]):
        raise ScenarioError.single(str(path), "empty file: expected a header line")
    header = [h.strip() for h in rows[0]]
    values = np.full((len(rows) - 1, len(header)), np.nan)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise ScenarioError.single(
                str(path), f"{len(row)} cells, expected {len(header)} (as the header)", i + 2
            )
        for j, cell in enumerate(row):
            if cell.strip():
                try:
                    values[i, j] = float(cell)
                except ValueError:
                    raise ScenarioError.single(
                        str(path), f"{header[j]}: not a number: {cell!r}", i + 2
                    ) from None
    return header, values


def _read_percentiles(run_dir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    path = run_dir / PERCENTILES_FILENAME
    if not path.is_file():
        return None
    header, values = _read_csv(path)
    if header != ["percentile", "latency_ms"]:
        raise ScenarioError.single(
            str(path), f"header {','.join(header)!r}, expected 'percentile,latency_ms'", 1
        )
    keep = np.isfinite(values).all(axis=1) & (values[:, 0] >= 0) & (values[:, 0] < 100)
    return values[keep, 0], values[keep, 1]


def _read_timeseries(run_dir: Path) -> dict[str, np.ndarray] | None:
    path = run_dir / TIMESERIES_FILENAME
    if not path.is_file():
        return None
    header, values = _read_csv(path)
    if "t_s" not in header:
        raise ScenarioError.single(str(path), "no t_s column", 1)
    return {name: values[:, j] for j, name in enumerate(header)}


def load_run(run_dir: Path | str) -> RunData:
    """Read one run directory; raise ``ScenarioError`` (``PATH: message``) if it is unusable.

    summary.json is required; a missing percentiles.csv or timeseries.csv only leaves that
    run out of the chart that needs it, with a note saying so."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ScenarioError.single(str(run_dir), "no such run directory")
    if not run_dir.is_dir():
        raise ScenarioError.single(str(run_dir), "not a directory: expected a run directory")
    summary = _read_summary(run_dir)
    name = run_dir.resolve().name or str(run_dir)
    percentiles, timeseries = _read_percentiles(run_dir), _read_timeseries(run_dir)
    notes = []
    if percentiles is None:
        notes.append(f"no {PERCENTILES_FILENAME}")
    elif not percentiles[0].size:
        notes.append(f"{PERCENTILES_FILENAME} is empty (no requests)")
    if timeseries is None:
        notes.append(f"no {TIMESERIES_FILENAME}")
    label = _label(name, run_dir, summary)
    return RunData(run_dir, name, label, summary, percentiles, timeseries, notes=tuple(notes))


def _label(name: str, run_dir: Path, summary: Mapping[str, Any]) -> str:
    scenario = summary.get("scenario")
    same = not scenario or scenario == (run_dir.resolve().name or str(run_dir))
    return name if same else f"{name} ({scenario})"


def load_runs(run_dirs: Sequence[Path | str]) -> list[RunData]:
    """Read every run directory, the baseline first; labels made unique, one color each.
    Labels name the scenario only when the runs are of different scenarios."""
    runs = [load_run(d) for d in run_dirs]
    one_scenario = len({r.summary.get("scenario") for r in runs}) == 1
    names = [r.name for r in runs]
    # Two directories of one name: say which parent; the same directory twice: number them.
    names = [
        f"{r.path.resolve().parent.name}/{name}" if names.count(name) > 1 else name
        for r, name in zip(runs, names, strict=True)
    ]
    names = [f"{x} #{i + 1}" if names.count(x) > 1 else x for i, x in enumerate(names)]
    return [
        dataclasses.replace(
            run,
            name=name,
            label=name if one_scenario else _label(name, run.path, run.summary),
            color=_COLORS[i % len(_COLORS)],
        )
        for i, (run, name) in enumerate(zip(runs, names, strict=True))
    ]


def default_out_dir(run_dirs: Sequence[Path | str]) -> Path:
    """``reports/compare-<first>-vs-<second>``, plus ``-and-N-more`` beyond two runs."""
    names = [Path(d).resolve().name or "run" for d in run_dirs]
    name = f"compare-{names[0]}-vs-{names[1]}"
    if len(names) > 2:
        name += f"-and-{len(names) - 2}-more"
    return Path("reports") / name


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
NEGLIGIBLE_POINTS = 0.001


def _figure(run: RunData, m: Metric, prefix: str = "") -> tuple[float | None, float | None]:
    value, ci = run.number(prefix + m.path), run.ci(prefix + m.path)
    if m.share_of:
        whole = run.number(m.share_of)
        value = None if value is None or not whole else value / whole
        ci = None  # a count's half-width over the total is not the share's: show none
    return value, ci


def _signed(x: float, unit: str) -> str:
    """+12.3%, −0.04 pp: one decimal, or two significant digits below 0.1."""
    sign = "+" if x > 0 else "\u2212"  # a typographic minus, as wide as the plus
    text = f"{abs(x):.1f}" if abs(x) >= 0.1 else _fmt_sig(abs(x), 2).rstrip("0")
    return f"{sign}{text}{unit}"


def _change(m: Metric, base: tuple, new: tuple) -> tuple[str, str, str]:
    """(change text, tone, hint) of ``new`` against ``base``, each a (value, ci) pair."""
    (b, b_ci), (v, v_ci) = base, new
    if b is None or v is None:
        return "", "", ""
    if v == b:
        return "=", "same", "same as the baseline"
    if m.points:
        text = _signed(100.0 * (v - b), " pp")
    elif b == 0:
        text = f"from 0 to {m.fmt(v)}"
    elif v / b >= 2 or 0 < v / b <= 0.5:
        factor = _fmt_sig(v / b, 2)  # 2 significant digits, no trailing zero: ×2, ×2.5, ×0.4
        text = "×" + (factor.rstrip("0").rstrip(".") if "." in factor else factor)
    else:
        text = _signed(100.0 * (v / b - 1), "%")
    if b_ci is not None or v_ci is not None:
        # With replications: a difference inside the combined 95% half-widths is one the
        # replications cannot tell apart. A run without replications adds no width (its
        # own noise is unknown): the test then uses the other run's width alone.
        if abs(v - b) <= math.hypot(b_ci or 0.0, v_ci or 0.0):
            return text, "same", "within the combined 95% intervals"
    small = abs(v - b) < NEGLIGIBLE_POINTS if m.points else b and abs(v / b - 1) < NEGLIGIBLE_CHANGE
    if not m.better or small:
        return text, "", ""
    good = (v < b) == (m.better == "lower")
    return text, "better" if good else "worse", ""


def _values(runs: Sequence[RunData], m: Metric, prefix: str = "") -> list[Value]:
    figures = [_figure(run, m, prefix) for run in runs]
    out = []
    for i, (value, ci) in enumerate(figures):
        text = m.fmt(value)
        change = ("", "", "") if i == 0 else _change(m, figures[0], (value, ci))
        shown_ci = None if ci is None or ci == 0 else m.fmt(ci)  # "± 0": a fixed input
        out.append(Value(text, shown_ci, *change))
    return out


_ARRIVED = "requests.arrived"
HEADLINE: tuple[tuple[str, tuple[Metric, ...]], ...] = (
    (
        "Latency",
        tuple(
            Metric(label, f"latency_ms.{key}", _fmt_ms, "ms", "lower")
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
            Metric(label, f"requests.{key}", _fmt_pct, "", better, True, _ARRIVED)
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
            Metric("Calls / request", "amplification.calls_per_request", _fmt_num, "", "lower"),
            Metric("Ops / request", "amplification.ops_per_request", _fmt_num, "", "lower"),
            Metric(
                "Wasted ops / request",
                "amplification.wasted_ops_per_request",
                _fmt_num,
                "",
                "lower",
                optional=True,
            ),
            Metric("Backend ops / s", "amplification.ops_per_sec", _fmt_num, "ops/s"),
        ),
    ),
    (
        "Load",
        (
            Metric("Offered", "offered_rps", _fmt_num, "rps"),
            Metric("Throughput (ok + partial)", "throughput_rps", _fmt_num, "rps", "higher"),
            Metric("Arrived", _ARRIVED, _fmt_num, "requests"),
        ),
    ),
)


SERVICE_METRICS: tuple[Metric, ...] = (
    Metric("Calls/s", "calls_per_sec", _fmt_num),
    Metric("Utilization", "utilization", _fmt_pct, points=True),
    Metric("Rejected", "rejected", _fmt_num, better="lower"),
    Metric("Errors", "errors", _fmt_num, better="lower"),
    Metric("Timeouts", "timeouts", _fmt_num, better="lower"),
    Metric("Retries", "retries", _fmt_num),
    Metric("Hedges", "hedges", _fmt_num),
    Metric("Mean ms", "latency_ms.mean", _fmt_ms, better="lower", optional=True),
    Metric("p99 ms", "latency_ms.p99", _fmt_ms, better="lower"),
)


def _present(runs: Sequence[RunData], m: Metric, prefixes: Sequence[str] = ("",)) -> bool:
    return not m.optional or any(r.number(p + m.path) is not None for r in runs for p in prefixes)


def headline_rows(runs: Sequence[RunData]) -> list[tuple[str, list[tuple[Metric, list[Value]]]]]:
    """(group title, [(metric, one value per run)]) for the side-by-side headline table."""
    return [
        (title, [(m, _values(runs, m)) for m in metrics if _present(runs, m)])
        for title, metrics in HEADLINE
    ]


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


def run_rows(runs: Sequence[RunData]) -> list[tuple[RunData, list[str]]]:
    """The runs table: directory, scenario, seed, window, replications, notes."""
    rows = []
    for run in runs:
        reps = run.number("replications")
        cells = [
            str(run.path),
            str(run.summary.get("scenario", _DASH)),
            _fmt_num(run.number("seed")),
            _fmt_num(run.number("duration_s")),
            _fmt_num(run.number("warmup_s")),
            _fmt_num(reps if reps is not None else 1),
            "; ".join(run.notes),
        ]
        rows.append((run, cells))
    return rows


# --------------------------------------------------------------------------- HTML and files


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the PNG's IHDR chunk."""
    return struct.unpack(">II", png[16:24])


def render_html(runs: Sequence[RunData], charts: Sequence[Chart]) -> str:
    from .report import _environment

    columns, services = service_table(runs)
    whatifs = ", ".join(r.label for r in runs[1:])
    return (
        _environment()
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
            headline=headline_rows(runs),
            service_columns=columns,
            services=services,
            charts=[(chart, *_png_size(chart.png)) for chart in charts],
            any_ci=any("ci95" in r.summary for r in runs),
        )
    )


def write_comparison(runs: Sequence[RunData], out_dir: Path | str) -> list[Path]:
    """Write the PNG charts and a self-contained compare.html; return the paths written.

    Raises OSError when a file cannot be written (the CLI reports it in one line)."""
    if len(runs) < 2:
        raise ValueError(f"a comparison needs at least 2 runs, got {len(runs)}")
    out_dir = Path(out_dir)
    charts = draw_charts(runs)
    html = render_html(runs, charts)
    written = [write_atomic(out_dir / chart.filename, chart.png) for chart in charts]
    written.append(write_atomic(out_dir / COMPARE_FILENAME, html))
    return written
