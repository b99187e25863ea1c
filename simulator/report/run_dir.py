"""A whole run directory (SPEC §3, §4): the result's data files, then the report beside them,
swapped into place whole (:func:`~simulator.results.outdir.staged_dir`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..results.files import write_results
from ..results.format import fmt_num
from ..results.outdir import staged_dir
from ..scenario.topology import nominal_amplification
from .run_report import write_report

if TYPE_CHECKING:
    from ..results.simulate import Result
    from ..scenario.model import Scenario


def write_run(result: Result, scenario: Scenario, out_dir: Path | str) -> list[Path]:
    """Write every output file of a run and replace ``out_dir`` with them, whole; return the
    paths as they are after the swap."""
    out_dir = Path(out_dir)
    with staged_dir(out_dir) as stage:
        written = write_run_files(result, scenario, stage)
    return [out_dir / p.relative_to(stage) for p in written]


def write_run_files(result: Result, scenario: Scenario, directory: Path) -> list[Path]:
    """Write summary.json, timeseries.csv, percentiles.csv, scenario.yaml, report.html and the
    PNG charts into ``directory`` (a staging directory); return their paths."""
    written = write_results(result, directory)
    written += write_report(
        directory,
        result.summary,
        result.latencies_ms,
        result.timeseries,
        scenario.name,
        describe(scenario),
        scenario,
    )
    return written


RUN_KEYS = ("seed", "duration_s", "warmup_s", "replications")  # change the run, not the system


def describe(scenario: Scenario) -> str | None:
    """The report's description, from the resolved scenario: the file's own, then (when an
    override changed the modelled system) which overrides, and what the resolved scenario
    offers and implies, since figures in the file's description may no longer hold."""
    system = {k: v for k, v in scenario.overrides.items() if k not in RUN_KEYS}
    if not system:
        return scenario.description
    sets = ", ".join(f"{k}={v}" for k, v in system.items())
    nominal = nominal_amplification(scenario)
    rps = scenario.workload.mean_rps(scenario.duration_s, scenario.warmup_s)
    lines = [scenario.description] if scenario.description else []
    lines.append(
        f"This run overrides {sets}: {fmt_num(rps)} rps offered, "
        f"{fmt_num(nominal['calls_per_request'])} calls and "
        f"{fmt_num(nominal['ops_per_request'])} backend ops per request, "
        f"{fmt_num(rps * nominal['ops_per_request'])} ops/s by the topology"
        + (" (the description above is the scenario file's)." if scenario.description else ".")
    )
    return "\n".join(lines)
