"""Every kind of bad input exits 2 with ``FILE:LINE:COL: message`` (or ``FILE: message`` where
there is no position), names the key, and never shows a traceback — from `run` and `validate`."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from simulator import load_scenario
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
    (
        "slow-period-longer-than-its-cycle",
        edit("workers: 4", "workers: 4\n    slow_periods: {every_s: 1, length_s: 2, factor: 3}"),
        13,
        ["services.api.slow_periods", "length_s must be at most every_s"],
    ),
    (
        "pause-as-long-as-its-cycle",
        edit("workers: 4", "workers: 4\n    pauses: {every_s: 1, length_ms: 1000}"),
        13,
        ["services.api.pauses", "length_ms must be shorter than every_s"],
    ),
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


def _chain(depth: int) -> str:
    """A scenario whose request calls s0 -> s1 -> ... -> s<depth - 1>."""
    services = "\n".join(
        f"  s{i}: {{latency: {{dist: constant, ms: 0.01}}"
        + (f", steps: [{{call: s{i + 1}}}]}}" if i < depth - 1 else "}")
        for i in range(depth)
    )
    return (
        "name: t\nduration_s: 1\nworkload: {rps: 10}\nrequest: {steps: [{call: s0}]}\n"
        f"services:\n{services}\n"
    )


def _latency(text: str) -> str:
    return edit("{dist: exponential, mean_ms: 2}", text)


_PAIRS = zip("bcdefghij", "abcdefghi", strict=True)  # b holds 10 a's, c 10 b's, ...
_LAUGHS = "".join(f"{a}: &{a} [{', '.join([f'*{b}'] * 10)}]\n" for a, b in _PAIRS)

# Inputs that used to end in a traceback, a hang or gigabytes of memory: each is now one line,
# exit 2, before any work. (case id, file text, expected line (None: no position), words)
FORMERLY_CRASHING = [
    ("infinite-rate", edit("rps: 100", "rps: .inf"), 4, ["workload.rps", "finite", "inf"]),
    ("overflowing-number", edit("rps: 100", "rps: 1e400"), 4, ["workload.rps", "finite"]),
    ("infinite-duration", edit("duration_s: 1", "duration_s: .inf"), 2, ["duration_s", "finite"]),
    ("nan-latency", edit("mean_ms: 2", "mean_ms: .nan"), 16, ["mean_ms", "finite"]),
    ("rate-1e12", edit("rps: 100", "rps: 1e12"), None, ["would simulate", "calls a run may take"]),
    ("fanout-1e9", edit("fanout: 2", "fanout: 1000000000"), None, ["would simulate", "calls"]),
    (
        "instances-1e9",
        edit("workers: 4", "workers: 4\n    instances: 1000000000"),
        None,
        ["memory", "limit"],
    ),
    ("duration-1e9", edit("duration_s: 1", "duration_s: 1e9"), None, ["would simulate"]),
    (
        "retries-5000",
        edit("fanout: 2", "fanout: 2\n      retries: {max: 5000, backoff_ms: 1}"),
        9,
        ["retries.max", "less than or equal to 1000"],
    ),
    (
        "backoff-overflow",
        edit("fanout: 2", "fanout: 2\n      retries: {max: 900, backoff_ms: 1}"),
        9,
        ["retry 900 would wait", "one day"],
    ),
    (
        "weibull-shape-1e-5",
        edit("{dist: exponential, mean_ms: 2}", "{dist: weibull, shape: 0.00001, scale_ms: 1}"),
        16,
        ["one call in a billion", "longer than a float holds"],
    ),
    (
        "lognormal-sigma-1000",
        edit("{dist: exponential, mean_ms: 2}", "{dist: lognormal, median_ms: 1, sigma: 1000}"),
        16,
        ["one call in a billion"],
    ),
    (
        "uncapped-cauchy",
        edit("{dist: exponential, mean_ms: 2}", "{dist: scipy, name: halfcauchy}"),
        16,
        ["one call in a billion would take about 6.37e+08 ms"],
    ),
    ("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + _LAUGHS + GOOD, None,
     ["expands to more than 1,000,000 values"]),
    ("tag-on-sequence", edit("- call: api", "- call: !custom [api]"), 7, ["YAML tag !custom"]),
    ("set-value", edit("name: t", "name: !!set {a, b}"), 1, ["set value is not supported"]),
    ("nesting-5000-deep", GOOD + "x-deep: " + "[" * 5000 + "]" * 5000 + "\n", None,
     ["nested too deeply"]),
    ("call-chain-3000-deep", _chain(3000), None, ["3000 services deep", "at most 100"]),
    ("not-utf8", "name: t\ndescription: caf\xe9\n", 2, ["not UTF-8 text (byte 0xe9)"]),
    # found by review: each of these validated and then crashed, hung or recursed
    ("gamma-cv-1e200", _latency("{dist: gamma, mean_ms: 10, cv: 1.0e200}"), 16,
     ["services.db.latency"]),
    ("pareto-alpha-1e-5", _latency("{dist: pareto, alpha: 0.00001, scale_ms: 1}"), 16,
     ["one call in a billion"]),
    ("yaml-int-0x", edit("name: t", 'name: !!int "0x"'), None, ["YAML value not understood"]),
    ("yaml-bool-maybe", edit("name: t", 'name: !!bool "maybe"'), None,
     ["YAML value not understood"]),
    ("bursty-every-1e-300",
     edit("rps: 100", "rps: 100\n  arrivals: bursty\n  bursty: "
                      "{burst_rps: 2, every_s: 1.0e-300, length_s: 1.0e-301}"),
     6, ["every_s must be at least 0.001"]),
    ("hedge-max-1e9", edit("fanout: 2", "fanout: 2\n      hedge: {after_ms: 0, max: 1000000000}"),
     9, ["hedge.max", "less than or equal to 100"]),
    ("replications-1e23",
     edit("duration_s: 1", "duration_s: 1\nreplications: 100000000000000000000000"), 3,
     ["replications", "less than or equal to 10000"]),
    ("doubled-got", edit("fanout: 2", "fanout: ten"), 8, ["got 'ten'"]),
    ("union-noise", edit("- call: api", "- call: 5"), 7, ["expected text or a list, got 5"]),
    ("class-name", edit("fanout: 2", "fanout: 2\n      retries: 3"), 9,
     ["retries: expected a mapping of keys, got 3"]),
]  # fmt: skip


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize(
    "case, text, line, words", FORMERLY_CRASHING, ids=[c[0] for c in FORMERLY_CRASHING]
)
def test_formerly_crashing_input_is_one_line(runner, tmp_path, command, case, text, line, words):
    """Inputs that once gave a traceback, a hang or gigabytes are refused in one line, exit 2,
    before any simulation."""
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(text.encode("latin-1") if case == "not-utf8" else text.encode())
    args = [command, str(path)] + (["--out", str(tmp_path / "out")] if command == "run" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert_one_problem(result.output, str(path), line, words)
    assert result.output.count(", got ") <= 1, result.output
    assert not (tmp_path / "out").exists()


def test_merge_keys_and_x_anchors_work(tmp_path):
    """YAML anchors under an x- key and merge keys (<<: *defaults) load as written."""
    text = GOOD.replace("services:\n", "x-defaults: &pool {workers: 4, instances: 2}\nservices:\n")
    text = text.replace("  db:\n", "  db:\n    <<: *pool\n")
    path = tmp_path / "merge.yaml"
    path.write_text(text)
    scenario = load_scenario(path)
    assert scenario.services["db"].workers == 4 and scenario.services["db"].instances == 2


def test_a_100_deep_call_chain_runs(runner, tmp_path):
    """The deepest call chain allowed runs on both engine paths, and its report is written."""
    for extra, name in (("", "free"), (", workers: 100", "pools")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(_chain(100).replace("ms: 0.01}", "ms: 0.01}" + extra))
        result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / name), "-q"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name / "report.html").exists()


def test_a_service_nobody_calls_does_not_break_the_report(runner, tmp_path):
    """A declared service with workers and exponential latency that no step calls gets a
    report (its queueing cross-check, with no arrivals, is left out)."""
    path = tmp_path / "lonely.yaml"
    path.write_text(GOOD + "  lonely: {latency: {dist: exponential, mean_ms: 2}, workers: 4}\n")
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "report.html").exists()


@pytest.mark.parametrize(
    "flag, value",
    [("--duration", "-1"), ("--seed", "-3"), ("--replications", "0"), ("--seed", "abc")],
)
def test_flag_errors_are_one_line_naming_the_flag(runner, tmp_path, flag, value):
    """A bad --duration, --seed or --replications is one line naming that flag, exit 2."""
    path = tmp_path / "ok.yaml"
    path.write_text(GOOD)
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from simulator.cli import main; main()",
         "run", str(path), flag, value, "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], done.stderr


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
