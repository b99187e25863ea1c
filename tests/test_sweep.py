"""``fansim sweep`` and ``simulator.sweep`` (SPEC §3–§5): a grid of overrides × replications as
tidy rows, with common random numbers, independent of the worker count, and resumable."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from typer.testing import CliRunner

from simulator import ScenarioError, load_scenario, sweep
from simulator.cli import app
from simulator.experiments.grid import parse_grid, points
from simulator.experiments.sweep import ROWS_DIR, replication_seed

SEED = ROOT / "scenarios" / "seed-example.yaml"


@pytest.fixture(scope="module")
def small():
    return load_scenario(SEED).with_overrides({"duration_s": 0.2, "warmup_s": 0.1})


def test_grid_values_ranges_and_the_full_factorial():
    """Values are YAML, ranges include their stop, and points are every combination."""
    grid = parse_grid(["workload.rps=1000:3000:1000", "services.db.workers=null,50"])
    assert grid == {"workload.rps": [1000, 2000, 3000], "services.db.workers": [None, 50]}
    assert parse_grid(["x=0.1:0.3:0.1"]) == {"x": [0.1, 0.2, 0.3]}
    assert len(points(grid)) == 6
    assert points(grid)[1] == {"workload.rps": 1000, "services.db.workers": 50}


@pytest.mark.parametrize(
    "item, words",
    [("rps", "expected KEY=V1"), ("x=1:0:1", "stop must not be below start"),
     ("x=1:5:0", "step must be"), ("x=[1", "cannot parse")],
)  # fmt: skip
def test_bad_grid_is_one_line(item, words):
    """A bad --grid is one ScenarioError line naming it."""
    with pytest.raises(ScenarioError, match=words) as caught:
        parse_grid([item])
    assert len(str(caught.value).splitlines()) == 1


def test_rows_are_tidy_with_common_random_numbers(small):
    """One row per point × replication; replication r has the same seed at every point."""
    table = sweep(small, {"request.steps.0.fanout": [1, 5]}, replications=2, workers=1)
    assert list(table["point"]) == [0, 0, 1, 1]
    assert list(table["replication"]) == [0, 1, 0, 1]
    seeds = [replication_seed(small.seed, r) for r in (0, 1)]
    assert list(table["seed"]) == seeds * 2
    assert list(table["grid.request.steps.0.fanout"]) == [1, 1, 5, 5]
    assert list(table["amplification.nominal_ops_per_request"]) == [2, 2, 10, 10]
    # same seed, same arrivals at both points: the offered load differs by nothing
    assert table["requests.arrived"][0] == table["requests.arrived"][2]


def test_rows_do_not_depend_on_the_worker_count(small):
    """The same sweep on one process and on two gives identical rows."""
    grid = {"workload.rps": [1000, 2000], "request.steps.0.fanout": [2, 4]}
    one = sweep(small, grid, replications=2, workers=1)
    two = sweep(small, grid, replications=2, workers=2)
    pd.testing.assert_frame_equal(one, two)


def test_a_sweep_resumes_where_it_stopped(small, tmp_path):
    """Finished runs are kept: after losing some, the same sweep runs only what is missing
    and writes the same tables."""
    grid = {"request.steps.0.fanout": [1, 2, 3]}
    first = sweep(small, grid, replications=2, workers=1, out_dir=tmp_path)
    csv = (tmp_path / "results.csv").read_text()
    kept = sorted((tmp_path / ROWS_DIR).glob("*.json"))
    assert len(kept) == 6
    for path in kept[:2]:
        path.unlink()  # as if the sweep had been killed before these finished
    again = sweep(small, grid, replications=2, workers=1, out_dir=tmp_path)
    assert again.attrs["runs_done_before"] == 4
    pd.testing.assert_frame_equal(first, again)
    assert (tmp_path / "results.csv").read_text() == csv


def test_kept_runs_take_the_point_numbers_of_the_sweep_that_reuses_them(small, tmp_path):
    """Another grid over the same directory reuses the runs it shares, renumbered."""
    sweep(small, {"request.steps.0.fanout": [1, 2]}, replications=1, workers=1, out_dir=tmp_path)
    again = sweep(small, {"request.steps.0.fanout": [2, 1]}, replications=1, workers=1,
                  out_dir=tmp_path)  # fmt: skip
    assert again.attrs["runs_done_before"] == 2
    assert list(again["point"]) == [0, 1]
    assert list(again["grid.request.steps.0.fanout"]) == [2, 1]
    assert list(again["amplification.nominal_ops_per_request"]) == [4, 2]


def test_cli_sweep_writes_tables_and_refuses_bad_points(tmp_path):
    """fansim sweep writes results.csv and results.parquet; a grid value the scenario refuses
    is one line naming the --grid, exit 2."""
    out = tmp_path / "s"
    args = ["sweep", str(SEED), "--grid", "workload.rps=500,1000", "--duration", "0.2",
            "--set", "warmup_s=0", "--replications", "1", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 runs: wrote" in result.output and (out / "report.html").exists()
    table = pd.read_parquet(out / "results.parquet")
    assert list(table["grid.workload.rps"]) == [500, 1000]
    assert len(pd.read_csv(out / "results.csv")) == 2
    result = CliRunner().invoke(app, [*args[:3], "workload.rps=-5", *args[4:]])
    assert result.exit_code == 2
    assert result.output.strip().startswith("--grid workload.rps=-5: workload.rps")
    assert len(result.output.strip().splitlines()) == 1
    rows = json.loads(next((out / ROWS_DIR).glob("*.json")).read_text())
    assert rows["point"] in (0, 1)


def test_an_interrupted_sweep_keeps_its_finished_runs(tmp_path):
    """Ctrl-C stops a sweep at once, keeping every run it finished; the same command then
    runs only the rest."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "s"
    args = [sys.executable, "-c", "import sys; from simulator.cli import main; sys.exit(main())",
            "sweep", str(SEED), "--grid", "workload.rps=500:4000:500", "--replications", "3",
            "--duration", "1", "--workers", "2", "--out", str(out), "-q"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    rows = out / ROWS_DIR
    end = time.monotonic() + 120
    while not (rows.is_dir() and len(list(rows.glob("*.json"))) >= 2):
        assert time.monotonic() < end and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    finished = len(list(rows.glob("*.json")))
    assert 2 <= finished < 24
    done = subprocess.run(args[:-1], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"24 runs ({finished} already done, kept)" in done.stdout
    assert len(pd.read_csv(out / "results.csv")) == 24


def test_the_sweep_report_draws_each_figure_with_its_band(tmp_path):
    """report.html and a PNG per figure (p50, p99, p99.9, ops/s, goodput, the busiest
    service's utilization), each the mean per point with a 95% band; a point where a
    replication was unstable is marked."""
    from simulator.report.sweep_report import mean_and_band, write_sweep_report

    scenario = load_scenario(ROOT / "scenarios" / "homepage.yaml").with_overrides(
        {"duration_s": 2, "warmup_s": 1}
    )
    grid = {"workload.rps": [1000, 3000]}  # 3,000 rps overloads recommendations
    table = sweep(scenario, grid, replications=2, workers=1)
    assert list(table["unstable"]) == [False, False, True, True]
    written = write_sweep_report(table, list(grid), tmp_path, scenario.name)
    names = {p.name for p in written}
    assert {"report.html", "sweep_latency_ms_p99.png", "sweep_throughput_rps.png",
            "sweep_services_recommendations_utilization.png"} <= names  # fmt: skip
    html = (tmp_path / "report.html").read_text()
    assert "Student-t 95% confidence band" in html and "Red crosses" in html
    mean, half = mean_and_band(np.array([10.0, 12.0]))
    assert mean == 11.0 and half == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2), rel=1e-3)


def test_a_sweep_on_a_dask_cluster_gives_the_same_rows(small, tmp_path):
    """The same sweep on a Dask LocalCluster (tasks carry plain data, a point's replications
    per task) gives rows identical to the local run; the default path imports no Dask."""
    import subprocess
    import sys

    distributed = pytest.importorskip("distributed")
    grid = {"workload.rps": [1000, 2000], "request.steps.0.fanout": [2, 4]}
    local = sweep(small, grid, replications=2, workers=1)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:  # fmt: skip
        remote = sweep(small, grid, replications=2, cluster=cluster.scheduler_address,
                       out_dir=tmp_path)  # fmt: skip
    pd.testing.assert_frame_equal(local, remote)
    code = ("import sys; from simulator import load_scenario, sweep; "
            f"s = load_scenario({str(SEED)!r}).with_overrides({{'duration_s': 0.1}}); "
            "sweep(s, {'workload.rps': [100]}, workers=1); "
            "print('distributed' in sys.modules or 'dask' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "False", done.stderr
