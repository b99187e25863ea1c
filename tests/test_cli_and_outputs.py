"""The commands and the output directory work as SPEC §3-§4 say; runs are reproducible."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, TIMESERIES_COLUMNS, make_scenario
from typer.testing import CliRunner

from simulator import load_scenario, simulate
from simulator.cli import app

SEED = ROOT / "scenarios" / "seed-example.yaml"
SUMMARY_KEYS = {
    "scenario",
    "seed",
    "duration_s",
    "warmup_s",
    "requests",
    "throughput_rps",
    "latency_ms",
    "amplification",
    "services",
}
SERVICE_KEYS = {
    "calls",
    "calls_per_sec",
    "utilization",
    "rejected",
    "errors",
    "timeouts",
    "retries",
    "hedges",
    "latency_ms",
}


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed")
    result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_writes_every_output_file(seed_run):
    """run writes summary.json, timeseries.csv, percentiles.csv, report.html and PNG charts."""
    out, _ = seed_run
    for name in (
        "summary.json",
        "timeseries.csv",
        "percentiles.csv",
        "report.html",
        "latency_percentiles.png",
    ):
        assert (out / name).stat().st_size > 0
    assert not list(out.glob(".*tmp"))  # no temporary files left behind


def test_percentiles_csv_is_the_latency_curve(seed_run):
    """percentiles.csv: percentile (in %) rising from 0, latency never falling, and the p50,
    p99 and p99.9 rows equal to summary.json's figures (same sample, 6 significant digits)."""
    out, _ = seed_run
    lines = (out / "percentiles.csv").read_text().splitlines()
    assert lines[0] == "percentile,latency_ms"
    rows = np.array([[float(x) for x in line.split(",")] for line in lines[1:]])
    assert rows[0, 0] == 0 and np.all(np.diff(rows[:, 0]) > 0) and np.all(np.diff(rows[:, 1]) >= 0)
    by_pct = dict(zip(rows[:, 0], rows[:, 1], strict=True))
    summary = json.loads((out / "summary.json").read_text())
    marks = [(50.0, "p50"), (99.0, "p99")]
    if summary["requests"]["arrived"] >= 10_000:  # 10 requests above p99.9: the curve's end
        marks.append((99.9, "p999"))
    for pct, key in marks:
        assert by_pct[pct] == pytest.approx(summary["latency_ms"][key], rel=1e-5)


def test_summary_has_every_contract_field(seed_run):
    """summary.json carries every field SPEC §4 names."""
    s = json.loads((seed_run[0] / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(s)
    assert set(s["requests"]) == {"arrived", "ok", "partial", "failed", "rejected"}
    assert {"mean", "p50", "p90", "p95", "p99", "p999", "max"} <= set(s["latency_ms"])
    assert {
        "calls_per_request",
        "ops_per_request",
        "ops_per_sec",
        "nominal_ops_per_request",
    } <= set(s["amplification"])
    for svc in s["services"].values():
        assert SERVICE_KEYS <= set(svc) and {"p50", "p99"} <= set(svc["latency_ms"])
    assert s["duration_s"] == 2 and s["warmup_s"] == 5


def test_seed_example_amplification_is_exact(seed_run):
    """The seed example sends exactly 30 calls and 20 backend ops per request, ~100,000 ops/s."""
    s = json.loads((seed_run[0] / "summary.json").read_text())
    amp = s["amplification"]
    assert amp["calls_per_request"] == 30 and amp["ops_per_request"] == 20
    assert amp["nominal_ops_per_request"] == 20
    # ops/s = 20 x arrivals/s; Poisson arrivals over 2 s: sd = 20 * sqrt(10,000) / 2 = 1,000
    assert abs(amp["ops_per_sec"] - 100_000) < 4 * 1_000


def test_timeseries_csv_columns(seed_run):
    """timeseries.csv has one row per second with the contract's columns."""
    with (seed_run[0] / "timeseries.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:7] == TIMESERIES_COLUMNS
    assert [int(r["t_s"]) for r in rows[:3]] == [0, 1, 2]
    assert len(rows) >= 7  # warm-up 5 s + 2 s measured


def test_the_terminal_summary_fits_80_columns(seed_run):
    """Every line the run prints fits an 80-column terminal (no wrapped figures)."""
    import re

    _, output = seed_run
    assert max(len(line) for line in output.splitlines()) <= 80
    wrapped = [line for line in output.splitlines() if re.match(r"^│\s+│", line)]
    assert wrapped == []  # a row continued on a second line: a figure did not fit
    assert "tail ms" in output and "p99.9" in output


@pytest.mark.parametrize("command", ["run", "sweep", "plan", "validate", "compare"])
def test_help_shows_flags_without_type_noise(command):
    """--help lists flags as a reader types them: no "<bool>" column, KEY=VALUE for --set."""
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "list[str]" not in result.output
    if command in ("run", "sweep", "plan"):
        assert "--set KEY=VALUE" in result.output


def test_run_prints_a_summary_table(seed_run):
    """run prints the headline figures and a per-service table on stdout."""
    text = seed_run[1]
    assert "seed-example" in text and "backend ops/s" in text and "db" in text


def test_set_seed_and_duration_override(tmp_path):
    """--set, --seed and --duration change the scenario that runs."""
    out = tmp_path / "o"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(SEED),
            "--out",
            str(out),
            "--seed",
            "7",
            "--duration",
            "1",
            "-q",
            "--set",
            "workload.rps=1000",
            "--set",
            "request.steps.0.fanout=3",
            "--set",
            "warmup_s=0",
        ],
    )
    assert result.exit_code == 0, result.output
    s = json.loads((out / "summary.json").read_text())
    assert s["seed"] == 7 and s["duration_s"] == 1 and s["warmup_s"] == 0
    assert s["amplification"]["ops_per_request"] == 6
    assert abs(s["requests"]["arrived"] - 1000) < 4 * 1000**0.5


def test_default_output_directory_is_reports_name(tmp_path, monkeypatch):
    """Without --out, run writes reports/<name>/ under the working directory; a run with --set
    writes its own directory, named from the overrides, and leaves the baseline's alone."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "0.2", "-q"])
    assert result.exit_code == 0, result.output
    baseline = tmp_path / "reports" / "seed-example" / "summary.json"
    before = baseline.read_bytes()
    sets = ["--set", "warmup_s=0", "--set", "workload.rps=800"]
    result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "0.2", *sets])
    assert result.exit_code == 0, result.output
    what_if = tmp_path / "reports" / "seed-example--warmup_s=0--workload.rps=800"
    assert json.loads((what_if / "summary.json").read_text())["overrides"]["workload.rps"] == 800
    assert f"writing {what_if.relative_to(tmp_path)}" in result.output
    assert baseline.read_bytes() == before


def test_schema_is_json_schema_of_the_scenario():
    """schema prints a JSON Schema that names the scenario's keys."""
    result = CliRunner().invoke(app, ["schema"])
    doc = json.loads(result.output)
    assert {"name", "duration_s", "workload", "request", "services"} <= set(doc["properties"])


def test_committed_schema_is_current():
    """scenarios/fansim.schema.json (for editors) matches `fansim schema`."""
    result = CliRunner().invoke(app, ["schema"])
    committed = (ROOT / "scenarios" / "fansim.schema.json").read_text()
    assert json.loads(committed) == json.loads(result.output), (
        "run: fansim schema > scenarios/fansim.schema.json"
    )


def test_same_seed_gives_identical_summary():
    """Same scenario + same seed = identical summary; another seed differs."""
    scenario = load_scenario(SEED).with_overrides({"duration_s": 0.5, "warmup_s": 0})
    a, b = simulate(scenario, seed=3), simulate(scenario, seed=3)
    assert a.summary == b.summary
    assert (a.latencies_ms == b.latencies_ms).all()
    assert simulate(scenario, seed=4).summary != a.summary


def test_replications_identical_on_any_number_of_workers():
    """Replications give the same summary and CIs in one process or in two."""
    scenario = make_scenario(
        {"s": {"latency": {"dist": "exponential", "mean_ms": 5}, "workers": 2}},
        [{"call": "s", "fanout": 2}],
        rps=200,
        duration_s=2,
        replications=3,
    )
    one = simulate(scenario, workers=1)
    two = simulate(scenario, workers=2)
    assert one.summary == two.summary
    assert one.summary["replications"] == 3 and "ci95" in one.summary
    assert one.summary["ci95"]["latency_ms"]["p99"] > 0
    assert [r["seed"] for r in one.runs] == [1, 2, 3]


def test_python_api_matches_the_contract():
    """The notebook API of SPEC §5 works as written."""
    scenario = load_scenario(SEED).with_overrides({"workload.rps": 800, "duration_s": 0.5})
    result = simulate(scenario, seed=1)
    assert result.summary["scenario"] == "seed-example"
    assert len(result.latencies_ms) == result.summary["requests"]["arrived"]
    assert len(result.timeseries["t_s"]) >= 5
    assert scenario.source.endswith("seed-example.yaml")


def test_example_scenarios_validate_and_run(tmp_path):
    """Every scenario in scenarios/ validates and runs a short simulation."""
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        text = path.read_text()
        assert text.startswith("#"), f"{path.name} should open with a comment saying what it shows"
        scenario = load_scenario(path).with_overrides({"duration_s": 0.5, "warmup_s": 0})
        result = simulate(scenario, workers=1)
        assert result.summary["requests"]["arrived"] > 0, path.name


def test_outputs_are_written_atomically(tmp_path, monkeypatch):
    """A failure while writing leaves the previous file intact and no temporary file."""
    from simulator.results import files

    target = tmp_path / "summary.json"
    files.write_atomic(target, "old")

    def boom(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError):
        files.write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in Path(tmp_path).iterdir()] == ["summary.json"]


def test_a_contention_free_run_imports_no_scipy(tmp_path):
    """The report's theory cross-check uses closed-form CDFs and numpy's FFT, so a run of the
    seed example (report included) never pays for importing scipy (~0.5 CPU-s)."""
    import subprocess
    import sys

    code = ("import sys; from simulator.cli import main; "
            f"sys.argv = ['fansim', 'run', {str(SEED)!r}, '--duration', '0.2', '--out', "
            f"{str(tmp_path / 'run')!r}, '-q']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy')[:3])")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    assert (tmp_path / "run" / "report.html").is_file()
