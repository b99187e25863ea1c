"""The run directory (SPEC §4): summary.json, timeseries.csv, report.html and PNG charts, plus
``percentiles.csv`` (an extension: the latency-by-percentile curve that ``fansim compare``
overlays, one row per point of the report's percentile plot)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from .files import write_atomic
from .model import Scenario
from .run import Result


def write_run(result: Result, scenario: Scenario, out_dir: Path) -> list[Path]:
    """Write every output file of a run into ``out_dir``; return their paths."""
    from .report import write_report

    out_dir = Path(out_dir)
    written = [
        write_atomic(out_dir / "summary.json", summary_json(result.summary)),
        write_atomic(out_dir / "timeseries.csv", timeseries_csv(result.timeseries)),
        write_atomic(out_dir / PERCENTILES_FILENAME, percentiles_csv(result.latencies_ms)),
    ]
    written += write_report(
        out_dir,
        result.summary,
        result.latencies_ms,
        result.timeseries,
        scenario.name,
        scenario.description,
        scenario,
    )
    return written


PERCENTILES_FILENAME = "percentiles.csv"
# Always listed (when the sample reaches them), beside the plot's log-spaced points.
_MARKS_PCT = (50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999)


def percentiles_csv(latencies_ms: np.ndarray) -> str:
    """``percentile,latency_ms`` rows (percentile in %, e.g. 99.9) from 0% to where only
    ``charts.MIN_TAIL_SAMPLES`` requests lie above, log-spaced in 1/(1 - p) as on the
    report's nines plot; empty (header only) when there are no requests."""
    from .charts import percentile_grid

    lat = np.asarray(latencies_ms, dtype=float)
    lat = lat[np.isfinite(lat)]
    out = io.StringIO()
    out.write("percentile,latency_ms\n")
    if lat.size:
        x, p = percentile_grid(lat.size)
        marks = [m for m in _MARKS_PCT if m <= 100.0 * p[-1] + 1e-9]
        pct = np.union1d(np.round(100.0 * p, 6), marks)
        for q, v in zip(pct, np.quantile(lat, pct / 100.0), strict=True):
            out.write(f"{q:.6g},{v:.6g}\n")
    return out.getvalue()


def summary_json(summary: dict) -> str:
    """The summary as JSON; NaN and infinity (never valid JSON) become null."""

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x

    return json.dumps(clean(summary), indent=2) + "\n"


def timeseries_csv(table: dict[str, np.ndarray]) -> str:
    """One row per simulated second; empty cells where a figure is undefined (no samples)."""
    cols = list(table)
    out = io.StringIO()
    out.write(",".join(cols) + "\n")
    columns = [np.asarray(table[c]) for c in cols]
    for row in zip(*columns, strict=True):
        out.write(",".join(_cell(v) for v in row) + "\n")
    return out.getvalue()


def _cell(v) -> str:
    if isinstance(v, (np.floating, float)):
        return "" if not math.isfinite(v) else f"{float(v):.6g}"
    return str(v)
