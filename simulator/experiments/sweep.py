"""``sweep()``: a scenario's grid points × replications, run in parallel, as tidy rows.

Replication ``r`` of every point uses the seed ``SeedSequence(seed, spawn_key=(r,))`` draws
(common random numbers), so two points differ by their overrides, not by seed noise; a run's
row depends only on its scenario and seed, never on the number of workers. Runs write no
report: a point costs its simulation. With an output directory, each finished run is written at
once (``rows/KEY.json``, KEY a hash of the resolved scenario, seed and fansim version) and a
repeated sweep runs only the missing ones; ``results.csv`` and ``results.parquet`` gather them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results.files import summary_json, write_atomic
from ..results.outdir import locked_dir
from ..results.provenance import fansim_version
from ..scenario.errors import ScenarioError
from .grid import points
from .runner import Run, Runner, replication_seed

if TYPE_CHECKING:
    import pandas as pd

    from ..scenario.model import Scenario

RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
SWEEP_JSON = "sweep.json"
ROWS_DIR = "rows"


def sweep(
    scenario: Scenario,
    grid: Mapping[str, list[Any]],
    *,
    replications: int | None = None,
    workers: int | None = None,
    out_dir: Path | str | None = None,
    progress: Callable[[int, int], None] | None = None,
    cluster: str | None = None,
) -> pd.DataFrame:
    """Run every grid point ``replications`` times (default the scenario's); one row per run,
    ordered by point then replication. ``workers`` processes (default the CPU count), or the
    Dask scheduler at ``cluster`` (``tcp://HOST:PORT``); ``out_dir`` keeps each finished run
    and resumes (one sweep at a time writes there); ``progress(done, total)`` as runs end.
    Rows are the same wherever they ran."""
    import pandas as pd

    reps = check_replications("sweep()", scenario.replications if replications is None
                              else replications)  # fmt: skip
    runs = []
    for index, point in enumerate(points(dict(grid))):
        data = resolved_at(scenario, point, "--grid")
        for r in range(reps):
            seed = replication_seed(scenario.seed, r)
            runs.append(Run(index, r, seed, point, data, scenario.source))
    with locked_dir(out_dir) as rows_parent:
        rows_dir = rows_parent / ROWS_DIR if rows_parent is not None else None
        processes = min(workers or os.cpu_count() or 1, max(len(runs), 1))
        with Runner(processes, cluster, rows_dir) as runner:
            frame = pd.DataFrame(runner.run(runs, progress))
        frame.attrs["runs_done_before"] = runner.kept
        if out_dir is not None:
            write_tables(frame, Path(out_dir))
            write_sweep_json(Path(out_dir), sweep_doc(scenario, grid, reps))
    return frame


def sweep_doc(
    scenario: Scenario, grid: Mapping[str, list[Any]], replications: int
) -> dict[str, Any]:
    """``sweep.json``: the grid, the replications and their seeds' root, the scenario (resolved,
    before the grid's overrides) and the fansim version."""
    return {
        "scenario": scenario.name,
        "grid": {key: list(values) for key, values in grid.items()},
        "replications": replications,
        "seed": scenario.seed,
        "resolved_scenario": scenario.resolved_data(),
        "fansim_version": fansim_version(),
    }


def write_sweep_json(out_dir: Path, doc: Mapping[str, Any]) -> Path:
    """Write ``sweep.json`` atomically."""
    return write_atomic(out_dir / SWEEP_JSON, summary_json(dict(doc)))


def check_replications(where: str, reps: Any) -> int:
    """``reps`` when it is an integer >= 1, else a ``ScenarioError`` naming ``where``."""
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ScenarioError.single(where, f"replications must be an integer >= 1, got {reps!r}")
    return reps


def resolved_at(scenario: Scenario, point: Mapping[str, Any], flag: str) -> dict[str, Any]:
    """The resolved scenario with ``point``'s overrides; a problem in an overridden key is
    named by its ``FLAG KEY=VALUE``."""
    try:
        return scenario.with_overrides(dict(point)).resolved_data()
    except ScenarioError as e:
        labels = {key: f"{flag} {key}={value}" for key, value in point.items()}
        problems = []
        for problem in e.problems:
            key = problem.file.removeprefix("--set ")
            problems.append(replace(problem, file=labels[key]) if key in labels else problem)
        raise ScenarioError(problems) from None


def write_tables(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``results.csv`` and ``results.parquet``, each written atomically."""
    import io

    csv = frame.to_csv(index=False)
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    return [
        write_atomic(out_dir / RESULTS_CSV, csv),
        write_atomic(out_dir / RESULTS_PARQUET, parquet.getvalue()),
    ]
