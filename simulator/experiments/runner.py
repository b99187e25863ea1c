"""Many runs of one scenario, in parallel, each kept as it finishes: what sweeps and plans share.

A ``Run`` carries its resolved scenario as plain data, so it can travel to any process or
cluster worker; ``run_row`` turns it into one tidy row (no latencies, no report: a run costs
its simulation). A ``Runner`` owns the processes (or the Dask client) for as long as it is
open, so a plan's many small batches do not start a pool each; with a ``rows_dir`` it writes
each finished row at once (``KEY.json``, KEY a hash of the resolved scenario, seed and fansim
version) and hands back kept rows without running them again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..results.files import summary_json, write_atomic
from ..results.provenance import fansim_version
from ..results.simulate import run_once
from ..results.warnings import run_warnings
from ..scenario.errors import ScenarioError

Row = dict[str, Any]


@dataclass(frozen=True)
class Run:
    """One replication of one point: everything a worker needs, as plain data."""

    point: int  # index of the point (a sweep's grid point, a plan's probe)
    replication: int
    seed: int
    overrides: dict[str, Any]  # the point's keys, reported as ``grid.KEY`` columns
    data: dict[str, Any]  # the resolved scenario at the point
    source: str  # the scenario's file, for messages

    @property
    def key(self) -> str:
        """The run's identity: its resolved scenario, its seed and the fansim that ran it."""
        doc = json.dumps([self.data, self.seed, fansim_version()], sort_keys=True)
        return hashlib.sha1(doc.encode()).hexdigest()[:20]


def replication_seed(seed: int, replication: int) -> int:
    """The seed of replication ``replication`` at every point of a sweep or plan (common
    random numbers: points differ by their overrides, not by seed noise)."""
    state = np.random.SeedSequence(seed, spawn_key=(replication,)).generate_state(1)
    return int(state[0])


def flatten(summary: Mapping[str, Any], prefix: str = "") -> Row:
    """A summary as one flat row: nested keys dotted (``latency_ms.p99``); the warnings as
    their count and kinds; other lists left out."""
    row: Row = {}
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


def run_row(run: Run) -> Row:
    """Simulate one run and return its row."""
    from ..scenario.model import Scenario

    scenario = Scenario.from_data(run.data, run.source)
    summary, latencies, timeseries = run_once(scenario, run.seed)
    summary["warnings"] = run_warnings(summary, timeseries, latencies, scenario)
    row = {"point": run.point, "replication": run.replication, "seed": run.seed}
    row |= {f"grid.{k}": v for k, v in run.overrides.items()}
    return row | flatten(summary)


def restamp(row: Row, run: Run) -> Row:
    """A kept row as this run's: the same figures (its key is its scenario and seed), the
    point index and ``grid.*`` columns of the sweep or plan that asks for it now."""
    head = {"point": run.point, "replication": run.replication, "seed": run.seed}
    head |= {f"grid.{k}": v for k, v in run.overrides.items()}
    return head | {k: v for k, v in row.items() if k not in head and not k.startswith("grid.")}


def run_rows(runs: list[Run]) -> list[Row]:
    """Several runs in one task: a cluster's per-task overhead is paid once for them."""
    return [run_row(run) for run in runs]


class Runner:
    """Runs batches of ``Run``s on ``workers`` local processes (default the CPU count) or on
    the Dask scheduler at ``cluster``; use it as a context manager. Rows come back in the
    order asked, the same wherever they ran."""

    def __init__(
        self,
        workers: int | None = None,
        cluster: str | None = None,
        rows_dir: Path | str | None = None,
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.cluster = cluster
        self.rows_dir = Path(rows_dir) if rows_dir is not None else None
        self.kept = 0  # rows found in rows_dir instead of run
        self._pool: Executor | None = None
        self._client = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, kind, error, _tb) -> None:
        if self._pool is not None:  # on Ctrl-C or SIGTERM: start nothing more
            self._pool.shutdown(wait=kind is None, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    def run(self, runs: list[Run], progress: Callable[[int, int], None] | None = None) -> list[Row]:
        """One row per run, each written to ``rows_dir`` as it finishes; ``progress(done,
        total)`` as runs end."""
        rows: dict[int, Row] = {}
        todo: list[tuple[int, Run, Path | None]] = []
        for i, run in enumerate(runs):
            path = self.rows_dir / f"{run.key}.json" if self.rows_dir is not None else None
            if path is not None and path.is_file():
                rows[i] = restamp(json.loads(path.read_text()), run)
            else:
                todo.append((i, run, path))
        self.kept += len(rows)
        if progress:
            progress(len(rows), len(runs))

        def keep(i: int, row: Row, path: Path | None) -> None:
            text = summary_json(row)  # a kept row reads back exactly as a fresh one
            rows[i] = json.loads(text)
            if path is not None:
                write_atomic(path, text)
            if progress:
                progress(len(rows), len(runs))

        if self.cluster is not None and todo:
            self._on_cluster(todo, keep)
        elif self.workers <= 1 or len(todo) <= 1:
            for i, run, path in todo:
                keep(i, run_row(run), path)
        elif todo:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.workers)
            futures = {self._pool.submit(run_row, run): (i, path) for i, run, path in todo}
            for future in as_completed(futures):
                i, path = futures[future]
                keep(i, future.result(), path)
        return [rows[i] for i in range(len(runs))]

    def _on_cluster(self, todo: list, keep: Callable) -> None:
        """``todo`` on the Dask scheduler through its concurrent.futures executor, a point's
        replications per task (Dask is an optional extra: ``pip install fansim[dask]``)."""
        if self._client is None:
            self._client = connect(self.cluster)
        batches: dict[int, list] = {}
        for i, run, path in todo:
            batches.setdefault(run.point, []).append((i, run, path))
        pool = self._client.get_executor()
        try:
            futures = {pool.submit(run_rows, [r for _, r, _ in b]): b for b in batches.values()}
            for future in as_completed(futures):
                for (i, _, path), row in zip(futures[future], future.result(), strict=True):
                    keep(i, row, path)
        except BaseException:  # Ctrl-C: cancel what is still running, keep what finished
            pool.shutdown(wait=False)
            raise
        pool.shutdown()


def connect(address: str):
    """A Dask client of the scheduler at ``address``; a ``ScenarioError`` naming ``--cluster``
    when Dask is missing or the scheduler cannot be reached."""
    try:
        from distributed import Client
    except ImportError:
        raise ScenarioError.single("--cluster", "needs Dask: pip install 'fansim[dask]'") from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise ScenarioError.single(f"--cluster {address}", f"cannot reach it: {e}") from None
