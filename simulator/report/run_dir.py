"""A whole run directory (SPEC §4): the result's data files, then the report beside them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..results.files import write_results
from .run_report import write_report

if TYPE_CHECKING:
    from ..results.simulate import Result
    from ..scenario.model import Scenario


def write_run(result: Result, scenario: Scenario, out_dir: Path) -> list[Path]:
    """Write every output file of a run into ``out_dir``: summary.json, timeseries.csv,
    percentiles.csv, report.html and the PNG charts; return their paths."""
    out_dir = Path(out_dir)
    written = write_results(result, out_dir)
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
