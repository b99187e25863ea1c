"""Run directories are replaced whole or not at all (SPEC §3) and say how they were made
(SPEC §4): killed runs leave the previous run intact, concurrent runs do not interleave, the
output place is checked before simulating, and scenario.yaml reproduces the run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "scenarios" / "seed-example.yaml"
FANSIM = [sys.executable, "-c", "import sys; from simulator.cli import main; sys.exit(main())"]


def fansim(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([*FANSIM, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)  # fmt: skip


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file of a directory and its bytes."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """The files added, removed or changed between two snapshots."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def wait_for(condition, timeout_s: float = 60.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.002)


def staging(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.tmp-*"))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """A finished run (seed 1) in an output directory, and its files."""
    out = tmp_path_factory.mktemp("runs") / "out"
    done = subprocess.run([*FANSIM, *SHORT, "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out, snapshot(out)


# 0.5 simulated s (2,500 requests); the killed run is longer, to be caught simulating (half a
# second) and writing its report (about a second); the concurrent one longer still.
SHORT = ("run", str(SEED), "--duration", "0.1", "--set", "warmup_s=0.4", "-q")
KILLED = ("run", str(SEED), "--duration", "1", "--set", "warmup_s=0.5", "--seed", "2", "-q")
LONG = ("run", str(SEED), "--duration", "3", "--seed", "2", "-q")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("moment", ["simulating", "writing the report"])
def test_a_killed_run_leaves_the_previous_run_whole(first_run, sig, moment):
    """Killed while simulating or while writing its report, a run leaves the output directory
    exactly as the previous run left it; the next run cleans up and replaces it whole."""
    out, before = first_run
    proc = fansim(*KILLED, "--out", str(out))
    try:
        if moment == "simulating":
            wait_for(lambda: staging(out))
        else:  # the data files come first, then the charts and report.html
            wait_for(lambda: any((s / "summary.json").exists() for s in staging(out)))
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert changed(before, snapshot(out)) == [], proc.stderr.read() if proc.stderr else ""
    if sig != signal.SIGKILL:  # the run unwound and removed its staging directory
        assert staging(out) == [], proc.stderr.read() if proc.stderr else ""
        assert proc.returncode == 128 + sig
    # the next run finds the leftovers of a SIGKILL and replaces the directory whole
    again = subprocess.run([*FANSIM, *SHORT, "--out", str(out)], cwd=ROOT, capture_output=True,
                           text=True)  # fmt: skip
    assert again.returncode == 0, again.stderr
    # same scenario, same seed: byte for byte the same files
    assert changed(before, snapshot(out)) == []
    assert staging(out) == []


def test_a_second_run_into_the_same_directory_is_refused(tmp_path):
    """While one run writes a directory, another run into it exits 2 at once, in one line; the
    first one finishes whole."""
    out = tmp_path / "out"
    first = fansim(*LONG, "--out", str(out))
    try:
        wait_for(lambda: staging(out))
        second = subprocess.run([*FANSIM, "run", str(SEED), "--duration", "0.5", "--out",
                                 str(out), "-q"], cwd=ROOT, capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [
            f"{out}: another fansim is writing this directory now; wait for it or use --out"
        ]
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
    assert json.loads((out / "summary.json").read_text())["seed"] == 2
    assert (out / "report.html").exists()


def test_an_unwritable_output_is_refused_before_simulating(tmp_path):
    """--out under a file fails in one line before any simulation (this run would take half an
    hour)."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    start = time.monotonic()
    done = subprocess.run([*FANSIM, "run", str(SEED), "--duration", "3000", "--out",
                           str(blocker / "out"), "-q"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"{blocker / 'out'}: cannot write here: {blocker} is a file, not a directory"
    ]
    assert time.monotonic() - start < 60


def test_files_fansim_did_not_write_are_kept(tmp_path):
    """--out naming a directory with other files (a log being written, notes) keeps them,
    the same files, beside the run's; a directory holding directories is refused untouched."""
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "notes.txt").write_text("years of work")
    log = (mine / "err").open("w")  # as `fansim run ... 2>DIR/err` leaves it
    result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "0.2", "--out", str(mine)])
    assert result.exit_code == 0, result.output
    log.write("written after the swap\n")
    log.close()
    assert (mine / "notes.txt").read_text() == "years of work"
    assert (mine / "err").read_text() == "written after the swap\n"  # the same file, kept
    assert (mine / "summary.json").exists()
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "0.2", "--out", str(tree)])
    assert result.exit_code == 2
    assert "holds directories (src)" in result.output
    assert [p.name for p in tree.iterdir()] == ["src"]


def test_rerunning_leaves_no_stale_files(tmp_path):
    """A run replaces the whole directory: files of an earlier run that this one does not
    write are gone."""
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "0.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (out / "stale_chart.png").write_bytes(b"from an earlier scenario")
    result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "0.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "stale_chart.png").exists()
    assert (out / "summary.json").exists()


def test_provenance_and_scenario_yaml_reproduce_the_run(tmp_path):
    """summary.json records the version, command, overrides and replications; scenario.yaml
    (defaults filled, overrides applied) run as is gives the same summary."""
    out, again = tmp_path / "a", tmp_path / "b"
    args = ["run", str(SEED), "--duration", "0.3", "--seed", "7",
            "--set", "workload.rps=800", "--set", "services.db.workers=40"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fansim_version"] == CliRunner().invoke(app, ["--version"]).output.split()[1]
    assert summary["overrides"] == {
        "workload.rps": 800,
        "services.db.workers": 40,
        "duration_s": 0.3,
        "seed": 7,
    }
    assert summary["replications"] == 1
    assert "--set workload.rps=800" in summary["command"]
    result = CliRunner().invoke(app, ["run", str(out / "scenario.yaml"), "--out", str(again)])
    assert result.exit_code == 0, result.output
    rerun = json.loads((again / "summary.json").read_text())
    for key in ("command", "overrides"):
        summary.pop(key), rerun.pop(key)
    assert rerun == summary


def test_version_flag():
    """fansim --version prints the installed version."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("fansim ") and len(result.output.split()) == 2


def test_report_description_comes_from_the_resolved_scenario(tmp_path):
    """With --set the report says what was overridden and what the resolved scenario offers,
    not only the file's description."""
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "0.2", "--out", str(out),
                                      "--set", "workload.rps=800", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "This run overrides workload.rps=800: 800 rps offered" in html
    assert "16,000 ops/s by the topology" in html


def test_compare_names_what_changed(tmp_path):
    """compare lists, for each what-if, the keys of the resolved scenario that differ from the
    baseline's."""
    base, what_if, cmp = tmp_path / "base", tmp_path / "if", tmp_path / "cmp"
    for out, extra in ((base, []), (what_if, ["--set", "services.db.workers=400"])):
        result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "0.2", "--out",
                                          str(out), "-q", *extra])  # fmt: skip
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["compare", str(base), str(what_if), "--out", str(cmp)])
    assert result.exit_code == 0, result.output
    assert "services.db.workers unset → 400" in (cmp / "compare.html").read_text()


def test_flag_errors_name_the_flag(tmp_path):
    """A bad --duration is reported against --duration, not as a --set of duration_s."""
    result = CliRunner().invoke(app, ["run", str(SEED), "--duration", "-1"])
    assert result.exit_code == 2
    assert result.output.startswith("--duration: ")
    assert len(result.output.strip().splitlines()) == 1


def test_set_accepts_dotted_service_names(tmp_path):
    """--set finds a service whose name holds dots (services.db.primary.workers)."""
    path = tmp_path / "dotted.yaml"
    path.write_text(SEED.read_text().replace("db", "db.primary"))
    result = CliRunner().invoke(app, ["run", str(path), "--duration", "0.2", "--out",
                                      str(tmp_path / "o"), "-q",
                                      "--set", "services.db.primary.workers=400"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["services"]["db.primary"]["workers"] == 400
