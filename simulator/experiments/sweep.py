"""``sweep()``: a scenario's grid points × replications, run in parallel, as tidy rows.

Replication ``r`` of every point uses the seed ``SeedSequence(seed, spawn_key=(r,))`` draws
(common random numbers), so two points differ by their overrides, not by seed noise; a run's
row depends only on its scenario and seed, never on the number of workers. Runs write no
report: a point costs its simulation. With an output directory, each finished run is written at
once (``rows/KEY.json``, KEY a hash of the resolved scenario, seed and fansim version) and a
repeated sweep runs only the missing ones; ``results.csv`` and ``results.parquet`` gather them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..results.files import summary_json, write_atomic
from ..results.provenance import fansim_version
from ..results.simulate import run_once
from ..results.warnings import run_warnings
from ..scenario.errors import ScenarioError
from .grid import points

if TYPE_CHECKING:
    import pandas as pd

    from ..scenario.model import Scenario

RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
ROWS_DIR = "rows"


def replication_seed(seed: int, replication: int) -> int:
    """The seed of replication ``replication`` at every point of a sweep."""
    state = np.random.SeedSequence(seed, spawn_key=(replication,)).generate_state(1)
    return int(state[0])


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A summary as one flat row: nested keys dotted (``latency_ms.p99``); the warnings as
    their count and kinds; other lists left out."""
    row: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            row |= flatten(value, f"{name}.")
        elif key == "warnings" and isinstance(value, list):
            row["warnings"] = len(value)
            row["warning_kinds"] = ",".join(sorted({w["kind"] for w in value}))
            row["unstable"] = any(w["kind"] == "unstable" for w in value)
        elif not isinstance(value, list):
            row[name] = value
    return row


def _run_key(data: dict[str, Any], seed: int) -> str:
    """A run's identity: its resolved scenario, its seed and the fansim that ran it."""
    doc = json.dumps([data, seed, fansim_version()], sort_keys=True)
    return hashlib.sha1(doc.encode()).hexdigest()[:20]


def _one_run(task: tuple[int, int, int, dict[str, Any], dict[str, Any], str]) -> dict[str, Any]:
    """Simulate one point's replication and return its row (no latencies, no report). The
    task carries the resolved scenario as plain data, so it can travel to any worker."""
    from ..scenario.model import Scenario

    index, replication, seed, point, data, source = task
    scenario = Scenario.from_data(data, source)
    summary, latencies, timeseries = run_once(scenario, seed)
    summary["warnings"] = run_warnings(summary, timeseries, latencies, scenario)
    row = {"point": index, "replication": replication, "seed": seed}
    row |= {f"grid.{k}": v for k, v in point.items()}
    return row | flatten(summary)


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
    and resumes; ``progress(done, total)`` as runs end. Rows are the same wherever they ran."""
    import pandas as pd

    reps = scenario.replications if replications is None else replications
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ScenarioError.single("sweep()", f"replications must be an integer >= 1, got {reps!r}")
    tasks = []
    for index, point in enumerate(points(dict(grid))):
        labels = {key: f"--grid {key}={value}" for key, value in point.items()}
        try:
            at_point = scenario.with_overrides(point)
        except ScenarioError as e:
            raise ScenarioError([_label(p, labels) for p in e.problems]) from None
        data = at_point.resolved_data()
        for r in range(reps):
            seed = replication_seed(scenario.seed, r)
            tasks.append(((index, r, seed, point, data, scenario.source), _run_key(data, seed)))
    rows_dir = Path(out_dir) / ROWS_DIR if out_dir is not None else None
    rows: dict[int, dict[str, Any]] = {}
    todo = []
    for i, (task, key) in enumerate(tasks):
        path = rows_dir / f"{key}.json" if rows_dir else None
        if path is not None and path.is_file():
            rows[i] = json.loads(path.read_text())
        else:
            todo.append((i, task, path))
    done_before = len(rows)
    if progress:
        progress(done_before, len(tasks))

    def keep(i: int, row: dict[str, Any], path: Path | None) -> None:
        text = summary_json(row)  # a kept row reads back exactly as a fresh one
        rows[i] = json.loads(text)
        if path is not None:
            write_atomic(path, text)
        if progress:
            progress(len(rows), len(tasks))

    workers = min(len(todo), workers or os.cpu_count() or 1)
    if cluster is not None and todo:
        _on_cluster(cluster, todo, keep)
    elif workers <= 1:
        for i, task, path in todo:
            keep(i, _one_run(task), path)
    elif todo:
        pool = ProcessPoolExecutor(max_workers=workers)
        try:
            futures = {pool.submit(_one_run, task): (i, path) for i, task, path in todo}
            for future in as_completed(futures):
                i, path = futures[future]
                keep(i, future.result(), path)
        except BaseException:  # Ctrl-C, SIGTERM: keep what finished, start nothing more
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    frame = pd.DataFrame([rows[i] for i in range(len(tasks))])
    frame.attrs["runs_done_before"] = done_before
    if out_dir is not None:
        write_tables(frame, Path(out_dir))
    return frame


def _runs(batch: list[tuple]) -> list[dict[str, Any]]:
    """Several runs in one task: a cluster's per-task overhead is paid once for them."""
    return [_one_run(task) for task in batch]


def _on_cluster(address: str, todo: list, keep: Callable) -> None:
    """Run ``todo`` on a Dask scheduler through its concurrent.futures executor, a point's
    replications per task (Dask is an optional extra: ``pip install fansim[dask]``)."""
    try:
        from distributed import Client
    except ImportError:
        raise ScenarioError.single("--cluster", "needs Dask: pip install 'fansim[dask]'") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise ScenarioError.single(f"--cluster {address}", f"cannot reach it: {e}") from None
    batches: dict[int, list] = {}
    for i, task, path in todo:
        batches.setdefault(task[0], []).append((i, task, path))
    try:
        with client.get_executor() as pool:
            futures = {pool.submit(_runs, [t for _, t, _ in b]): b for b in batches.values()}
            for future in as_completed(futures):
                for (i, _, path), row in zip(futures[future], future.result(), strict=True):
                    keep(i, row, path)
    finally:
        client.close()


def _label(problem, labels: dict[str, str]):
    """A problem in an overridden key, named by its ``--grid KEY=VALUE``."""
    from dataclasses import replace

    key = problem.file.removeprefix("--set ")
    return replace(problem, file=labels[key]) if key in labels else problem


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
