"""The run report: files written, HTML well formed, charts real PNGs, empty runs survive."""

from __future__ import annotations

import base64
import html.parser
import io
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from simulator.report.run_report import write_report
from simulator.results.format import fmt_ms, fmt_num, fmt_pct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r'src="data:image/png;base64,([^"]*)"')
VOID_ELEMENTS = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
P99_MS = 87.654  # rendered with 3 significant digits as "87.7"


def make_summary(**overrides: object) -> dict:
    summary = {
        "scenario": "seed-example",
        "seed": 1,
        "duration_s": 60,
        "warmup_s": 5,
        "replications": 1,
        "requests": {"arrived": 20_000, "ok": 19_900, "partial": 40, "failed": 50, "rejected": 10},
        "throughput_rps": 332.3,
        "offered_rps": 333.3,
        "latency_ms": {
            "mean": 24.1,
            "p50": 20.0,
            "p90": 43.0,
            "p95": 53.0,
            "p99": P99_MS,
            "p999": 130.0,
            "max": 250.0,
        },
        "amplification": {
            "calls_per_request": 30.0,
            "ops_per_request": 20.05,
            "ops_per_sec": 6_683.0,
            "nominal_ops_per_request": 20,
        },
        "services": {
            "api": {
                "calls": 200_000,
                "calls_per_sec": 3_333.3,
                "utilization": None,
                "rejected": 0,
                "errors": 3,
                "timeouts": 0,
                "retries": 3,
                "hedges": 0,
                "latency_ms": {"p50": 5.0, "p99": 40.0},
            },
            "db": {
                "calls": 400_000,
                "calls_per_sec": 6_666.7,
                "utilization": 0.71,
                "rejected": 2,
                "errors": 0,
                "timeouts": 1,
                "retries": 0,
                "hedges": 0,
                "latency_ms": {"p50": 2.0, "p99": 19.9},
            },
        },
    }
    summary.update(overrides)
    return summary


def make_timeseries(rows: int = 70, seed: int = 3) -> dict[str, np.ndarray]:
    """A 70-second run: 5 s warm-up, 60 s window, 5 s drain; one service with util and queue."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=float)
    in_window = t < 65
    p50 = rng.normal(20.0, 1.0, rows)
    p99 = rng.normal(85.0, 5.0, rows)
    p50[~in_window] = np.nan
    p99[~in_window] = np.nan
    completions = np.where(in_window, rng.poisson(333, rows), 0).astype(float)
    return {
        "t_s": t,
        "arrivals": np.where(in_window, rng.poisson(333, rows), 0).astype(float),
        "completions": completions,
        "ops": completions * 20,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": rng.poisson(0.5, rows).astype(float),
        "queue_db": rng.poisson(2.0, rows).astype(float),
        "util_db": np.clip(rng.normal(0.7, 0.05, rows), 0.0, 1.0),
    }


def make_latencies(n: int = 20_000, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(20.0), 0.6, n)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[pathlib.Path]]:
    out = tmp_path_factory.mktemp("report")
    paths = write_report(
        out,
        make_summary(),
        make_latencies(),
        make_timeseries(),
        "seed-example",
        "5,000 rps → fan-out 10 → <2 db calls> & more",
    )
    return out, paths


class StructureChecker(html.parser.HTMLParser):
    """Records every end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> at {self.getpos()} with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def read_png(data: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(data), format="png")


def test_writes_report_html_and_every_chart(
    report: tuple[pathlib.Path, list[pathlib.Path]],
) -> None:
    """A run with a util/queue service writes report.html and six PNGs (no call graph without
    a scenario), in page order, and returns them."""
    out, paths = report
    assert [p.name for p in paths] == [
        "latency_percentiles.png",
        "latency_distribution.png",
        "amplification.png",
        "throughput_over_time.png",
        "latency_over_time.png",
        "services_over_time.png",
        "report.html",
    ]
    assert all(p.parent == out and p.is_file() for p in paths)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp left


def test_html_is_well_formed(report: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    """The report parses with every element closed in order and nothing left open."""
    text = (report[0] / "report.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    checker = StructureChecker()
    checker.feed(text)
    checker.close()
    assert checker.problems == []
    assert checker.stack == []


def test_html_is_self_contained(report: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    """The report loads nothing from outside itself: no http(s) sources, links or scripts."""
    text = (report[0] / "report.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script" not in text and "<link" not in text


def test_every_embedded_image_is_a_readable_png(
    report: tuple[pathlib.Path, list[pathlib.Path]],
) -> None:
    """Each data:image/png URI decodes to the same PNG as on disk, and matplotlib reads it."""
    out, paths = report
    text = (out / "report.html").read_text(encoding="utf-8")
    embedded = [base64.b64decode(b64, validate=True) for b64 in DATA_URI.findall(text)]
    on_disk = [p.read_bytes() for p in paths if p.suffix == ".png"]
    assert len(embedded) == 6
    assert embedded == on_disk
    for png in embedded:
        assert png.startswith(PNG_SIGNATURE)
        assert read_png(png).shape[:2] == (594, 1056)  # 8 x 4.5 in at 132 dpi


def test_pngs_on_disk_are_not_blank(report: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    """Every chart file has more than one colour in it, so something was drawn."""
    for path in report[1]:
        if path.suffix == ".png":
            assert read_png(path.read_bytes()).std() > 0, path.name


def test_html_shows_scenario_description_and_p99(
    report: tuple[pathlib.Path, list[pathlib.Path]],
) -> None:
    """The page title names the scenario and the headline shows p99 to 3 significant digits."""
    text = (report[0] / "report.html").read_text(encoding="utf-8")
    assert "<title>fansim — seed-example</title>" in text
    assert "87.7" in text
    assert "fan-out 10 → &lt;2 db calls&gt; &amp; more" in text  # autoescaped


def test_null_utilization_shows_a_dash(report: tuple[pathlib.Path, list[pathlib.Path]]) -> None:
    """A service with unlimited workers (utilization null) shows '—', a limited one a percent."""
    text = (report[0] / "report.html").read_text(encoding="utf-8")
    api_row = re.search(r'<th scope="row">api</th>(.*?)</tr>', text, re.S)
    db_row = re.search(r'<th scope="row">db</th>(.*?)</tr>', text, re.S)
    assert api_row and db_row
    assert re.findall(r'<td class="num">([^<]*)</td>', api_row.group(1))[2] == "—"
    assert "71.0%" in db_row.group(1)


def test_ci95_half_widths_appear_beside_figures(tmp_path: pathlib.Path) -> None:
    """With replications > 1 the ci95 half-widths show as '± x' next to their figures."""
    summary = make_summary(
        replications=5,
        ci95={
            "latency_ms": {"p99": 1.234},
            "throughput_rps": 2.5,
            "services": {"db": {"utilization": 0.012}},
        },
    )
    write_report(tmp_path, summary, make_latencies(500), {}, "seed-example")
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert '87.7 <span class="ci">± 1.23</span>' in text
    assert "± 2.5" in text and "± 1.2%" in text
    assert "seeds 1–5" in text


@pytest.mark.parametrize(
    ("latencies", "timeseries"),
    [
        pytest.param(np.array([]), make_timeseries(), id="no-latencies"),
        pytest.param(make_latencies(200), {}, id="no-timeseries-columns"),
        pytest.param(
            np.array([]),
            {k: v[:0] for k, v in make_timeseries().items()},
            id="zero-row-timeseries",
        ),
    ],
)
def test_empty_inputs_still_write_a_report(
    tmp_path: pathlib.Path, latencies: np.ndarray, timeseries: dict[str, np.ndarray]
) -> None:
    """An empty latency array or timeseries gives placeholder charts, not an exception."""
    paths = write_report(tmp_path, make_summary(), latencies, timeseries, "empty-run")
    names = [p.name for p in paths]
    assert names[:2] == ["latency_percentiles.png", "latency_distribution.png"]
    assert {"throughput_over_time.png", "latency_over_time.png"} <= set(names)
    assert names[-1] == "report.html"
    for path in paths[:-1]:
        assert read_png(path.read_bytes()).std() > 0, path.name
    assert "empty-run" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_no_service_columns_means_no_services_chart(tmp_path: pathlib.Path) -> None:
    """Without util_/queue_ columns the services chart is skipped rather than drawn empty."""
    ts = {k: v for k, v in make_timeseries().items() if not k.startswith(("util_", "queue_"))}
    paths = write_report(tmp_path, make_summary(), make_latencies(300), ts, "seed-example")
    assert "services_over_time.png" not in [p.name for p in paths]


def test_unequal_timeseries_columns_are_rejected_by_name(tmp_path: pathlib.Path) -> None:
    """A column whose length differs from t_s raises, naming the column and both lengths."""
    ts = make_timeseries()
    ts["ops"] = ts["ops"][:-1]
    with pytest.raises(ValueError, match=r"'ops' has 69 rows, expected 70"):
        write_report(tmp_path, make_summary(), make_latencies(100), ts, "seed-example")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (87.654, "87.7"),
        (0.012345, "0.0123"),
        (1234.5, "1,230"),
        (9.996, "10.0"),
        (0, "0"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_ms_have_three_significant_digits(value: float | None, text: str) -> None:
    """Latencies print with 3 significant digits, thousands separators, and '—' when absent."""
    assert fmt_ms(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(100_150.0, "100,150"), (20.05, "20.05"), (30.0, "30"), (4_987.3, "4,987"), (None, "—")],
)
def test_counts_and_rates_use_thousands_separators(value: float | None, text: str) -> None:
    """Counts and rates print whole above 1,000 with separators, else up to 4 digits."""
    assert fmt_num(value) == text


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (0.8734, 1, "87.3%"),
        (0.0, 1, "0.0%"),
        (0.00042, 1, "0.042%"),
        (1.0, 1, "100.0%"),
        (0.48271, 2, "48.27%"),
        (None, 1, "—"),
    ],
)
def test_shares_print_as_percentages(value: float | None, decimals: int, text: str) -> None:
    """Shares print as percentages; one too small for the decimals keeps 2 significant digits."""
    assert fmt_pct(value, decimals) == text


@pytest.mark.parametrize(
    "module",
    [
        "simulator.report.run_report",
        "simulator.report.charts",
        "simulator.report.compare",
        "simulator.report.run_dir",
    ],
)
def test_import_does_not_load_matplotlib_or_jinja2(module: str) -> None:
    """Importing the report or its charts stays cheap: matplotlib and jinja2 load only when used."""
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('matplotlib', 'jinja2') if m in sys.modules))"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.stdout.strip() == "[]"
