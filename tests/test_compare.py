"""``fansim compare``: runs side by side in one page and PNGs; bad input is one line, exit 2."""

from __future__ import annotations

import base64
import html.parser
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT
from PIL import Image
from typer.testing import CliRunner

from simulator.cli import app
from simulator.report.compare import Metric, describe_change
from simulator.report.runs import default_out_dir
from simulator.results.format import fmt_num

DATA_URI = re.compile(r'src="data:image/png;base64,([^"]*)"')
# A tiny scenario: a front service fanning out to 2 calls of a db with few workers.
SCENARIO = """\
name: tiny
duration_s: 1
warmup_s: 0.5
seed: 1
workload: {rps: 200, arrivals: poisson}
request:
  steps:
    - call: front
services:
  front:
    latency: {dist: exponential, mean_ms: 1}
    steps:
      - call: db
        fanout: 2
  db:
    latency: {dist: exponential, mean_ms: 5}
    workers: 8
"""


def fansim(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two run directories of one scenario: ``a`` at 200 rps, ``b`` at twice that."""
    root = tmp_path_factory.mktemp("runs")
    scenario = root / "tiny.yaml"
    scenario.write_text(SCENARIO)
    for name, rps in (("a", 200), ("b", 400)):
        result = fansim("run", scenario, "--out", root / name, "-q", "--set", f"workload.rps={rps}")
        assert result.exit_code == 0, result.output
    return root / "a", root / "b"


@pytest.fixture(scope="module")
def compared(runs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "out"
    result = fansim("compare", *runs, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith(f"wrote {out / 'compare.html'}")
    return out


class Page(html.parser.HTMLParser):
    """Checks that every element closes in order, and collects each section's table rows as
    lists of cell texts (a cell's text pieces joined by single spaces)."""

    VOID = {"br", "img", "meta", "link", "hr", "input", "col", "wbr", "source"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.section = ""
        self.cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "section":
            self.section = dict(attrs).get("id") or ""
        elif tag == "tr":
            self.tables.setdefault(self.section, []).append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> at {self.getpos()} with open {self.stack[-3:]}")
        else:
            self.stack.pop()
        if tag in ("td", "th") and self.cell is not None:
            self.tables[self.section][-1].append(" ".join(self.cell))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None and data.strip():
            self.cell.append(" ".join(data.split()))

    def row(self, section: str, first_cell: str) -> list[str]:
        rows = [r for r in self.tables[section] if r and r[0] == first_cell]
        assert len(rows) == 1, f"{first_cell!r} in #{section}: {self.tables[section]}"
        return rows[0]


def page(out: Path) -> Page:
    return Page((out / "compare.html").read_text(encoding="utf-8"))


def test_compare_writes_html_and_one_png_per_chart(compared: Path) -> None:
    """compare writes compare.html and the PNGs, and leaves no temporary file."""
    names = sorted(p.name for p in compared.iterdir())
    assert "compare.html" in names
    assert {"compare_latency_percentiles.png", "compare_over_time.png"} <= set(names)
    assert "compare_services.png" in names  # the runs have services
    assert all(n == "compare.html" or n.endswith(".png") for n in names)  # nothing else


def test_the_terminal_shows_each_run_against_the_baseline(runs: tuple[Path, Path]) -> None:
    """compare prints a table: each run's p50, p99, ok share and load, a what-if's change in
    brackets (twice the rate: twice the ops per second)."""
    out = runs[0].parent / "terminal"
    result = CliRunner().invoke(app, ["compare", *map(str, runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "compared with the baseline, a" in result.output
    assert max(len(line) for line in lines) <= 80
    row = next(line for line in lines if line.startswith("│ b "))
    assert row.count("│") == 10  # one line per run: run, then 4 figures with their change


def test_the_trade_off_chart_puts_each_run_on_p99_against_load(compared: Path) -> None:
    assert (compared / "compare_tradeoff.png").is_file()
    assert "down and to the left is better" in (compared / "compare.html").read_text()


def test_html_is_well_formed_and_self_contained(compared: Path) -> None:
    """The page parses with every element closed in order and loads nothing from outside."""
    text = (compared / "compare.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    parsed = Page(text)
    assert parsed.problems == [] and parsed.stack == []
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script" not in text and "<link" not in text


def test_every_embedded_image_is_the_png_on_disk(compared: Path) -> None:
    """Each <img> data URI decodes to a PNG that PIL reads, and equals one written file."""
    text = (compared / "compare.html").read_text(encoding="utf-8")
    embedded = [base64.b64decode(b64, validate=True) for b64 in DATA_URI.findall(text)]
    on_disk = sorted(p.read_bytes() for p in compared.glob("*.png"))
    assert len(embedded) == text.count("<img") == len(on_disk) >= 3
    assert sorted(embedded) == on_disk
    for png in embedded:
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and im.width >= 600 and im.height >= 200
            im.verify()


def test_headline_shows_both_runs_and_the_change(runs: tuple[Path, Path], compared: Path) -> None:
    """The headline names both runs, gives each its own figures, and the what-if's change:
    the offered load doubled, shown as ×2 under the what-if's 400."""
    parsed = page(compared)
    header = parsed.tables["headline"][0]
    # one scenario compared with itself: labels are the directory names alone
    assert header[1].startswith("a ") and "baseline" in header[1]
    assert header[2] == "b"
    assert parsed.row("headline", "Offered rps") == ["Offered rps", "200", "400 ×2"]
    for column, run in ((1, runs[0]), (2, runs[1])):
        summary = json.loads((run / "summary.json").read_text())
        cell = parsed.row("headline", "Arrived requests")[column]
        assert cell.split()[0] == fmt_num(summary["requests"]["arrived"])


def test_services_are_matched_by_name_and_a_missing_one_shows_a_dash(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """A service only the baseline has gets a row of dashes for the what-if; a what-if
    without percentiles.csv or new keys still compares, its gaps shown as dashes."""
    whatif = tmp_path / "c"
    shutil.copytree(runs[1], whatif)
    summary = json.loads((whatif / "summary.json").read_text())
    del summary["services"]["db"], summary["offered_rps"], summary["latency_ms"]["p999"]
    (whatif / "summary.json").write_text(json.dumps(summary))
    (whatif / "percentiles.csv").unlink()
    out = tmp_path / "out"
    result = fansim("compare", runs[0], whatif, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    parsed = page(out)
    rows = parsed.tables["services"]
    db = [i for i, r in enumerate(rows) if r[0] == "db"][0]
    assert rows[db][1] == "a" and rows[db][2] != "—"  # the run's directory name
    assert rows[db + 1][0] == "c" and set(rows[db + 1][1:]) == {"—"}
    assert parsed.row("headline", "Offered rps")[2] == "—"
    assert parsed.row("headline", "p99.9 ms")[2] == "—"
    text = (out / "compare.html").read_text(encoding="utf-8")
    assert "c: no percentiles.csv" in text


def test_default_out_dir_names_the_first_two_runs(
    runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --out: reports/compare-<first>-vs-<second>, plus -and-N-more beyond two."""
    assert default_out_dir(["x/a", "y/b", "c", "d"]) == Path("reports/compare-a-vs-b-and-2-more")
    monkeypatch.chdir(tmp_path)
    result = fansim("compare", *runs, "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "compare-a-vs-b" / "compare.html").is_file()


def bad_inputs(runs: tuple[Path, Path], tmp: Path) -> dict[str, tuple[list[Path], Path, str]]:
    """name -> (compare's arguments, the path the message must name, words it must say)."""
    empty = tmp / "empty"
    empty.mkdir()
    corrupt = tmp / "corrupt"
    corrupt.mkdir()
    (corrupt / "summary.json").write_text('{"requests": \n')
    not_object = tmp / "list"
    not_object.mkdir()
    (not_object / "summary.json").write_text("[1, 2]")
    bad_csv = tmp / "bad_csv"
    shutil.copytree(runs[1], bad_csv)
    (bad_csv / "percentiles.csv").write_text("percentile,latency_ms\n50,fast\n")
    a_file = tmp / "file.txt"
    a_file.write_text("x")
    return {
        "one run": ([runs[0]], runs[0], "at least two run directories"),
        "no summary": ([runs[0], empty], empty, "no summary.json"),
        "corrupt summary": (
            [runs[0], corrupt],
            corrupt / "summary.json",
            "summary.json:2:1: invalid JSON",
        ),
        "summary not an object": (
            [not_object, runs[0]],
            not_object / "summary.json",
            "expected a JSON object",
        ),
        "bad percentiles": ([runs[0], bad_csv], bad_csv / "percentiles.csv", "not a number"),
        "missing": ([runs[0], tmp / "nope"], tmp / "nope", "no such run directory"),
        "a file": ([runs[0], a_file], a_file, "not a directory"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "one run",
        "no summary",
        "corrupt summary",
        "summary not an object",
        "bad percentiles",
        "missing",
        "a file",
    ],
)
def test_bad_input_is_one_line_naming_the_path(
    case: str, runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Each unusable input exits 2 with one line `PATH: message` and no traceback."""
    args, path, words = bad_inputs(runs, tmp_path)[case]
    out = tmp_path / "out"
    result = fansim("compare", *args, "--out", out)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{path}:") and words in lines[0], lines[0]
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert not out.exists()  # nothing written on bad input


def test_unwritable_out_dir_is_one_line(runs: tuple[Path, Path], tmp_path: Path) -> None:
    """An --out that cannot be created (under a regular file) exits 2 with one line."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = fansim("compare", *runs, "--out", blocker / "out")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{blocker / 'out'}: cannot write"), lines


@pytest.mark.parametrize(
    ("metric", "base", "new", "text", "tone"),
    [
        (Metric("p99", "p99", str, better="lower"), (10.0, 0.5), (12.0, 0.5), "+20.0%", "worse"),
        (Metric("p99", "p99", str, better="lower"), (10.0, 0.5), (8.0, 0.5), "−20.0%", "better"),
        (Metric("rps", "rps", str, better="higher"), (10.0, 1.0), (25.0, 1.0), "×2.5", "better"),
        # Single seeds: no interval tells a change from noise, so no verdict, only a mark.
        (Metric("p99", "p99", str, better="lower"), (10.0, None), (12.0, None), "+20.0%", "unsure"),
        (Metric("rps", "rps", str, better="higher"), (10.0, None), (25.0, None), "×2.5", "unsure"),
        (Metric("ops", "ops", str), (10.0, None), (4.0, None), "×0.4", ""),
        (
            Metric("fail", "f", str, better="lower", points=True),
            (0.1, None),
            (0.15, None),
            "+5.0 pp",
            "unsure",
        ),  # fmt: skip
        (Metric("x", "x", str, better="lower"), (3.0, None), (3.0, None), "=", "same"),
        # Within the combined 95% half-widths (hypot(2, 2) = 2.83 > 2): no verdict.
        (Metric("p99", "p99", str, better="lower"), (10.0, 2.0), (12.0, 2.0), "+20.0%", "same"),
        (Metric("p99", "p99", str, better="lower"), (10.0, 1.0), (14.0, 1.0), "+40.0%", "worse"),
        (Metric("p99", "p99", str, better="lower"), (None, None), (14.0, None), "", ""),
        # Only the what-if has replications: its own half-width decides.
        (Metric("p99", "p99", str, better="lower"), (10.0, None), (10.5, 1.0), "+5.0%", "same"),
        (Metric("p99", "p99", str, better="lower"), (10.0, None), (10.05, None), "+0.5%", ""),
        (
            Metric("ok", "ok", str, better="higher", points=True),
            (0.9995, None),
            (0.9991, None),
            "\u22120.04 pp",
            "",
        ),  # fmt: skip
    ],
)
def test_change_against_the_baseline(
    metric: Metric, base: tuple, new: tuple, text: str, tone: str
) -> None:
    """A what-if's change reads as a percentage, a factor from ×2 (or ×0.5), or percentage
    points for shares; better/worse only when the 95% intervals do not overlap, and marked
    unsure (no verdict) between single seeds."""
    got_text, got_tone, _ = describe_change(metric, base, new)
    assert (got_text, got_tone) == (text, tone)


def test_runs_of_different_scenarios_carry_a_warning(runs: tuple[Path, Path], tmp_path: Path):
    """Comparing two scenarios (not two what-ifs of one) says so, on the page and in the
    terminal; two what-ifs of one scenario do not."""
    from simulator.report.compare import mixed_scenarios
    from simulator.report.runs import load_runs

    assert mixed_scenarios(load_runs(list(runs))) is None
    other = tmp_path / "other.yaml"
    other.write_text(SCENARIO.replace("name: tiny", "name: other"))
    result = fansim("run", other, "--out", tmp_path / "other", "-q")
    assert result.exit_code == 0, result.output
    result = fansim("compare", runs[0], tmp_path / "other", "--out", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    assert "different scenarios (tiny, other)" in result.output
    assert "different scenarios (tiny, other)" in (tmp_path / "cmp" / "compare.html").read_text()


def test_no_empty_or_hidden_panels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs without worker limits get no utilization panel, runs without retries or hedges
    no ops-split chart, and a what-if identical to the baseline is named as such in the
    over-time legend instead of vanishing under it."""
    from simulator.report import compare_charts
    from simulator.report.runs import load_runs

    scenario = ROOT / "scenarios" / "seed-example.yaml"
    for name in ("a", "b"):
        result = fansim("run", scenario, "--duration", "1", "--out", tmp_path / name, "-q")
        assert result.exit_code == 0, result.output
    labels: list[str] = []
    original = compare_charts.plot_steps

    def spy(ax, t, values, edges=None, **style):
        labels.append(style.get("label") or "")
        return original(ax, t, values, edges, **style)

    monkeypatch.setattr(compare_charts, "plot_steps", spy)
    charts = {
        c.filename: c
        for c in compare_charts.draw_charts(load_runs([tmp_path / "a", tmp_path / "b"]))
    }
    assert "compare_ops_split.png" not in charts
    assert charts["compare_services.png"].title == "Services: calls"
    assert "b (identical to a)" in labels
