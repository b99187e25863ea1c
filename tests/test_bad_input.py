"""Every kind of bad input exits 2 with ``FILE:LINE:COL: message`` (or ``FILE: message`` where
there is no position), names the key, and never shows a traceback — from `run` and `validate`."""

from __future__ import annotations

import re
import textwrap

import pytest
from typer.testing import CliRunner

from simulator.cli import app

GOOD = textwrap.dedent("""\
    name: t
    duration_s: 1
    workload:
      rps: 100
    request:
      steps:
        - call: api
          fanout: 2
    services:
      api:
        latency: {dist: lognormal, p50_ms: 5, p99_ms: 40}
        workers: 4
        steps:
          - call: db
      db:
        latency: {dist: exponential, mean_ms: 2}
    """)


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


# (case id, file text, expected line (None: no position), words the message must contain)
CASES = [
    ("yaml-syntax", edit("rps: 100", "rps: [100"), 5, ["YAML syntax error", "starts at line 4"]),
    (
        "unknown-key",
        edit("workers: 4", "wrokers: 4"),
        12,
        ["services.api.wrokers", "unknown key", "workers"],
    ),
    ("wrong-type", edit("workers: 4", "workers: many"), 12, ["services.api.workers", "many"]),
    ("zero-rate", edit("rps: 100", "rps: 0"), 4, ["workload.rps", "greater than 0"]),
    ("negative-rate", edit("rps: 100", "rps: -5"), 4, ["workload.rps", "-5"]),
    ("unknown-service", edit("- call: db", "- call: dbb"), 14, ["unknown service 'dbb'", "db"]),
    (
        "call-cycle",
        edit("mean_ms: 2}", "mean_ms: 2}\n    steps: [{call: api}]"),
        None,
        ["call cycle", "api -> db -> api"],
    ),
    ("p99-below-p50", edit("p99_ms: 40", "p99_ms: 4"), 11, ["services.api.latency", "p99_ms"]),
    (
        "require-above-fanout",
        edit("fanout: 2", "fanout: 2\n      require: 3"),
        9,
        ["request.steps.0.require", "3", "2 calls"],
    ),
    (
        "unknown-distribution",
        edit("dist: exponential", "dist: expo"),
        16,
        ["services.db.latency.dist", "'expo'", "exponential"],
    ),
    (
        "missing-trace-file",
        edit("rps: 100", "arrivals: trace\n  trace: nowhere.csv"),
        5,
        ["workload.trace", "nowhere.csv"],
    ),
    ("missing-required-key", edit("duration_s: 1\n", ""), None, ["duration_s", "missing"]),
    ("not-a-mapping", "- just\n- a list\n", 1, ["mapping"]),
    ("empty-file", "", None, ["empty"]),
    ("comment-only-file", "# nothing here\n", None, ["empty"]),
    (
        "hedge-two-delays",
        edit("fanout: 2", "fanout: 2\n      hedge: {after: p95, after_ms: 3}"),
        9,
        ["request.steps.0.hedge", "not both"],
    ),
    (
        "retries-negative",
        edit("fanout: 2", "fanout: 2\n      retries: {max: -1}"),
        9,
        ["request.steps.0.retries.max", "-1"],
    ),
    ("bad-name", edit("name: t", "name: Bad Name"), 1, ["name"]),
    (
        "queue-without-workers",
        edit("mean_ms: 2}", "mean_ms: 2}\n    queue_limit: 3"),
        15,
        ["queue_limit needs workers"],
    ),
    ("error-rate-above-1", edit("workers: 4", "error_rate: 1.5"), 12, ["error_rate", "1.5"]),
    ("duplicate-key", edit("workers: 4", "workers: 4\n    workers: 5"), 13, ["duplicate"]),
]

LINE = re.compile(r"^(?P<file>[^:\n]+?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<msg>.+)$")


@pytest.fixture
def runner():
    return CliRunner()


def assert_one_problem(output: str, path: str, line, words) -> None:
    lines = [ln for ln in output.strip().splitlines() if ln]
    assert "Traceback" not in output
    assert len(lines) >= 1, output
    m = LINE.match(lines[0])
    assert m, f"not FILE:LINE:COL: message: {lines[0]!r}"
    assert m["file"] == path
    assert (int(m["line"]) if m["line"] else None) == line, lines[0]
    for word in words:
        assert word in m["msg"], f"{word!r} not in {m['msg']!r}"


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case, text, line, words", CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_is_one_positioned_line_and_exit_2(
    runner, tmp_path, command, case, text, line, words
):
    """The problem is reported as FILE:LINE:COL: key: message, exit code 2, no traceback."""
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    args = [command, str(path)] + (["--out", str(tmp_path / "out")] if command == "run" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert_one_problem(result.output, str(path), line, words)
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize("command", ["run", "validate"])
def test_missing_file(runner, tmp_path, command):
    """A scenario path that does not exist is `FILE: no such file`, exit 2."""
    path = str(tmp_path / "absent.yaml")
    result = runner.invoke(app, [command, path])
    assert result.exit_code == 2
    assert_one_problem(result.output, path, None, ["no such file"])


def test_directory_instead_of_file(runner, tmp_path):
    """A directory given as the scenario is reported, not a traceback."""
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2 and "directory" in result.output


@pytest.mark.parametrize(
    "setting, words",
    [
        ("nosuch.key=1", ["--set nosuch.key", "no key 'nosuch'"]),
        ("request.steps.5.fanout=2", ["--set request.steps.5.fanout", "not an index"]),
        ("services.db.workers=-1", ["--set services.db.workers", "greater than or equal to 1"]),
        ("workload.rps", ["--set workload.rps", "KEY=VALUE"]),
        ("workload.rps=[1", ["--set workload.rps", "cannot parse"]),
    ],
)
def test_bad_set_override(runner, tmp_path, setting, words):
    """A bad --set is reported as `--set KEY: message`, exit 2."""
    path = tmp_path / "ok.yaml"
    path.write_text(GOOD)
    result = runner.invoke(app, ["run", str(path), "--set", setting, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output


def test_validate_reports_each_problem_of_each_file(runner, tmp_path):
    """validate checks every file and prints one line per problem."""
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(edit("workers: 4", "workers: 0").replace("rps: 100", "rps: 0"))
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    problems = [ln for ln in result.output.splitlines() if ln.startswith(str(bad))]
    assert len(problems) == 2
    assert f"{good}: ok" in result.output


def test_bad_number_in_empirical_file(runner, tmp_path):
    """A non-number inside an empirical latency file names that file's line."""
    (tmp_path / "lat.csv").write_text("1.5\n2.0\nabc\n")
    path = tmp_path / "s.yaml"
    path.write_text(edit("{dist: exponential, mean_ms: 2}", "{dist: empirical, file: lat.csv}"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "lat.csv:3" in result.output and "abc" in result.output


def test_unwritable_output_directory(runner, tmp_path):
    """An --out path that cannot be written (here: an existing file) is one line, exit 2."""
    path = tmp_path / "ok.yaml"
    path.write_text(GOOD)
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a directory")
    result = runner.invoke(app, ["run", str(path), "--out", str(blocker), "-q"])
    assert result.exit_code == 2, result.output
    assert_one_problem(result.output, str(blocker), None, ["cannot write"])
