"""The run directory (SPEC §4): summary.json, timeseries.csv, report.html and PNG charts."""

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
    ]
    written += write_report(
        out_dir,
        result.summary,
        result.latencies_ms,
        result.timeseries,
        scenario.name,
        scenario.description,
    )
    return written


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
