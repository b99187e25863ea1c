"""Finished run directories read back from disk (SPEC §4): what ``fansim compare`` overlays.

Only what ``fansim run`` wrote is read: ``summary.json`` (required), ``timeseries.csv`` and
``percentiles.csv`` (optional); never the engine, never a scenario file. ``load_run`` turns one
directory into a ``RunData`` or raises ``ScenarioError`` naming the file (``PATH: message``), so
the CLI prints one line and exits 2. The summary is read defensively: a figure a run lacks (an
older run, or a key added later) is None and is never required.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..results.files import PERCENTILES_FILENAME, SUMMARY_FILENAME, TIMESERIES_FILENAME
from ..results.format import dig, is_missing
from ..results.provenance import SCENARIO_FILENAME
from ..scenario.errors import ScenarioError

__all__ = ["RunData", "default_out_dir", "load_run", "load_runs"]

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
    scenario: Mapping[str, Any] | None = None  # the resolved scenario.yaml, when present

    def number(self, path: str) -> float | None:
        """The summary's figure at dotted ``path`` as a float, or None when absent or odd."""
        return _number(dig(self.summary, path))

    def ci(self, path: str) -> float | None:
        """The 95% half-width of that figure (runs with replications), or None."""
        return _number(dig(self.summary.get("ci95"), path))

    @property
    def services(self) -> list[str]:
        services = self.summary.get("services")
        return list(services) if isinstance(services, Mapping) else []


def _number(x: Any) -> float | None:
    """A finite real number as float; None for anything else (null, NaN, text, a bool)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or is_missing(x):
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
    scenario = _read_scenario(run_dir)
    label = _label(name, run_dir, summary)
    return RunData(
        run_dir, name, label, summary, percentiles, timeseries, notes=tuple(notes),
        scenario=scenario,
    )  # fmt: skip


def _read_scenario(run_dir: Path) -> dict[str, Any] | None:
    """The run's resolved scenario.yaml as plain data; None when absent or unreadable (it only
    adds the "what changed" column, so an odd one is left out rather than refused)."""
    path = run_dir / SCENARIO_FILENAME
    if not path.is_file():
        return None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(_read_text(path))
    except (YAMLError, ScenarioError):
        return None
    return data if isinstance(data, dict) else None


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
