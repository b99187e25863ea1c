"""A run's data files (SPEC §4), each written atomically: summary.json, timeseries.csv and
``percentiles.csv`` (an extension: the latency-by-percentile curve that ``fansim compare``
overlays, one row per point of the report's percentile plot). The report's files are written
beside them by :mod:`simulator.report.run_dir`."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .provenance import SCENARIO_FILENAME, scenario_yaml

if TYPE_CHECKING:
    from .simulate import Result

SUMMARY_FILENAME = "summary.json"
TIMESERIES_FILENAME = "timeseries.csv"
PERCENTILES_FILENAME = "percentiles.csv"
# The percentile curve stops where fewer than this many samples lie above the percentile.
MIN_TAIL_SAMPLES = 10


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place, so that a
    reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; outputs are for everyone to read
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_results(result: Result, out_dir: Path) -> list[Path]:
    """Write the run's data files into ``out_dir`` (and ``scenario.yaml`` when the result knows
    its scenario); return their paths."""
    out_dir = Path(out_dir)
    written = [
        write_atomic(out_dir / SUMMARY_FILENAME, summary_json(result.summary)),
        write_atomic(out_dir / TIMESERIES_FILENAME, timeseries_csv(result.timeseries)),
        write_atomic(out_dir / PERCENTILES_FILENAME, percentiles_csv(result.latencies_ms)),
    ]
    if result.scenario is not None:
        yaml = scenario_yaml(
            result.scenario, result.summary["seed"], result.summary.get("replications", 1)
        )
        written.append(write_atomic(out_dir / SCENARIO_FILENAME, yaml))
    return written


# Always listed (when the sample reaches them), beside the plot's log-spaced points.
_MARKS_PCT = (50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999)


def percentiles_csv(latencies_ms: np.ndarray) -> str:
    """``percentile,latency_ms`` rows (percentile in %, e.g. 99.9) from 0% to where only
    ``MIN_TAIL_SAMPLES`` requests lie above, log-spaced in 1/(1 - p) as on the
    report's nines plot; empty (header only) when there are no requests."""
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


def percentile_grid(n: int, points: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """``(x, p)`` with x = 1/(1-p) from 1 to where only ``MIN_TAIL_SAMPLES`` of ``n`` samples
    remain above p (but at least to p90, so a tiny sample still draws a curve)."""
    x_max = max(n / MIN_TAIL_SAMPLES, 10.0)
    x = np.geomspace(1.0, x_max, points)
    return x, 1.0 - 1.0 / x


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
