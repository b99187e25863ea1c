"""The report as a person gets it: one offline HTML file that parses, and renders in a browser.

Depends only on what any version of the report keeps: one HTML file with an ``<h1>``, and every
``<img>`` a ``data:image/png;base64,`` URI. Section names and chart counts are left to
``test_report.py``. The browser tests need headless Chromium and skip, saying so, without it.
"""

from __future__ import annotations

import base64
import binascii
import html.parser
import io
import os
import re
import shutil
import signal
import subprocess
import traceback
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from simulator.cli import app

# Two levels of fan-out with worker pools on both services, so every chart (the per-service
# utilisation and queue chart too) is drawn. ~8 backend ops per request at 300 rps: ~1-2 s.
SCENARIO_YAML = """\
name: browser-check
description: 300 rps fan out to 4 api calls, each making 2 db calls; both have worker pools.
duration_s: 10
warmup_s: 1
seed: 1
workload: {rps: 300, arrivals: poisson}
request:
  steps:
    - call: api
      fanout: 4
services:
  api:
    latency: {dist: lognormal, p50_ms: 2, p99_ms: 10}
    workers: 16
    steps:
      - call: db
        repeat: 2
  db:
    latency: {dist: exponential, mean_ms: 2}
    workers: 8
"""

# Elements that never have an end tag.
VOID_ELEMENTS = frozenset("area base br col embed hr img input link meta source track wbr".split())
# Elements whose end tag HTML lets an author omit; html.parser reports no implied end tag for
# them, so an unclosed one is not an error, and an outer end tag closes it implicitly.
OPTIONAL_END = frozenset(
    "html head body p li dt dd rt rp optgroup option colgroup thead tbody tfoot tr td th".split()
)
# Attributes that make a browser fetch something.
FETCH_ATTRIBUTES = frozenset({"src", "href", "srcset", "poster", "data", "action", "formaction"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_PNG = "data:image/png;base64,"
CHART_MIN_WIDTH_PX = 400

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
BROWSER_TIMEOUT_S = 120
WINDOW_PX = (1280, 2000)
# A rendered page is "blank" when nearly every pixel is the background colour.
MAX_BACKGROUND_FRACTION = 0.97
MIN_INK_PX = 1_000  # dark (text) pixels, and separately coloured (chart line) pixels


class BalanceChecker(html.parser.HTMLParser):
    """Tracks open elements; records each end tag that closes nothing, or skips open elements.

    ``problems`` and ``stack`` hold ``(tag, line)``; after :meth:`close` the document is balanced
    when there are no problems and nothing but optional-end elements is left open.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int]] = []
        self.problems: list[str] = []
        self.seen: dict[str, int] = {}
        self.fetches: list[tuple[str, str, str, int]] = []  # (tag, attribute, value, line)
        self.img_srcs: list[str] = []
        self.h1_text: list[str] = []
        self.style_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line = self.getpos()[0]
        self.seen[tag] = self.seen.get(tag, 0) + 1
        for name, value in attrs:
            if name in FETCH_ATTRIBUTES:
                self.fetches.append((tag, name, value or "", line))
        if tag == "img":
            self.img_srcs.append(dict(attrs).get("src") or "")
        if tag not in VOID_ELEMENTS:
            self.stack.append((tag, line))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # `<br/>` is a void element; `<div/>` opens a div in HTML (the slash is ignored).
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        line = self.getpos()[0]
        if tag in VOID_ELEMENTS:
            self.problems.append(f"</{tag}> on line {line}: <{tag}> is void and has no end tag")
            return
        open_tags = [t for t, _ in self.stack]
        if tag not in open_tags:
            self.problems.append(f"</{tag}> on line {line} closes nothing (open: {open_tags[-3:]})")
            return
        while self.stack[-1][0] != tag:
            inner, opened = self.stack.pop()
            if inner not in OPTIONAL_END:
                self.problems.append(
                    f"</{tag}> on line {line} closes <{inner}> opened on line {opened}, "
                    "which was never closed"
                )
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if any(t == "h1" for t, _ in self.stack):
            self.h1_text.append(data)
        if self.stack and self.stack[-1][0] == "style":
            self.style_text.append(data)

    def close(self) -> None:
        super().close()
        for tag, opened in self.stack:
            if tag not in OPTIONAL_END:
                self.problems.append(f"<{tag}> opened on line {opened} is never closed")


def parse(text: str) -> BalanceChecker:
    checker = BalanceChecker()
    checker.feed(text)
    checker.close()
    return checker


def blank_page_problems(pixels: np.ndarray) -> list[str]:
    """Why an ``(n, 3)`` RGB screenshot looks blank: mostly background, no text, or no chart."""
    pixels = pixels.astype(np.int16)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    background_fraction = counts.max() / len(pixels)
    dark = int((pixels.max(axis=1) < 100).sum())
    coloured = int((np.ptp(pixels, axis=1) >= 60).sum())
    problems = []
    if background_fraction >= MAX_BACKGROUND_FRACTION:
        background = tuple(int(c) for c in colours[counts.argmax()])
        problems.append(f"{background_fraction:.1%} of the page is background {background}")
    if dark < MIN_INK_PX:
        problems.append(f"only {dark} dark pixels: no text rendered")
    if coloured < MIN_INK_PX:
        problems.append(f"only {coloured} coloured pixels: no chart in the first screen")
    return problems


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium not installed (Debian package `chromium`; .ci/run installs it)")


def run_browser(
    browser: str, report: Path, work: Path, *output_flags: str
) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on the report in its own process group; kill the group on timeout."""
    args = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",  # screenshot pixels = CSS pixels on any display
        f"--user-data-dir={work / 'profile'}",
        f"--window-size={WINDOW_PX[0]},{WINDOW_PX[1]}",
        *output_flags,
        report.as_uri(),
    ]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{browser} did not finish in {BROWSER_TIMEOUT_S} s:\n{out[-2000:]}")
    return subprocess.CompletedProcess(args, proc.returncode, out, None)


def _fansim(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        pytest.fail(f"fansim {args[0]} raised while writing its page:\n{trace}")
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """report.html from `fansim run` on a small two-level fan-out with worker pools, and
    compare.html from `fansim compare` of that run against the same at 1.5x the load."""
    work = tmp_path_factory.mktemp("browser")
    scenario = work / "browser-check.yaml"
    scenario.write_text(SCENARIO_YAML)
    base, busier, compared = work / "base", work / "busier", work / "compared"
    _fansim("run", str(scenario), "--out", str(base), "-q")
    _fansim("run", str(scenario), "--out", str(busier), "--set", "workload.rps=450", "-q")
    _fansim("compare", str(base), str(busier), "--out", str(compared), "-q")
    return {"report": base / "report.html", "compare": compared / "compare.html"}


@pytest.fixture(params=["report", "compare"])
def report(request: pytest.FixtureRequest, pages: dict[str, Path]) -> Path:
    """Each page a person opens: the run report, and the comparison of two runs."""
    return pages[request.param]


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        pytest.param("<div><span>x</div>", r"</div> on line 1 closes <span>", id="unclosed-inner"),
        pytest.param("<div>\n<b>x</b>\n", r"<div> opened on line 1 is never closed", id="eof"),
        pytest.param("<p>x</p>\n</section>", r"</section> on line 2 closes nothing", id="stray"),
        pytest.param("<em><strong>x</em></strong>", r"</em> on line 1 closes <strong>", id="cross"),
        pytest.param("<img src=x></img>", r"</img> on line 1: <img> is void", id="void-end"),
    ],
)
def test_balance_checker_catches_broken_html(snippet: str, problem: str) -> None:
    """The tag-balance checker flags each kind of broken nesting, naming the tag and the line."""
    problems = parse(snippet).problems
    assert problems and re.search(problem, problems[0]), problems


def test_balance_checker_accepts_valid_html_with_omitted_end_tags() -> None:
    """Void elements and end tags HTML lets one omit (p, li, td, tr, ...) are not flagged."""
    valid = (
        "<!DOCTYPE html><html><head><meta charset=utf-8><title>t</title></head><body>"
        "<p>one<p>two<br><img src=x><ul><li>a<li>b</ul>"
        "<table><tr><td>1<td>2<tr><td>3</table><hr/></body></html>"
    )
    checker = parse(valid)
    assert checker.problems == []


def _page(text_px: int = 0, chart_px: int = 0, fill: int = 0) -> np.ndarray:
    """A white 100x100 page with dark, blue and light-grey pixels in its first rows."""
    page = np.full((10_000, 3), 255, dtype=np.uint8)
    page[:text_px] = (20, 20, 20)
    page[text_px : text_px + chart_px] = (31, 119, 180)
    page[text_px + chart_px : text_px + chart_px + fill] = (240, 240, 240)
    return page


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        pytest.param(_page(), "background (255, 255, 255)", id="white"),
        pytest.param(_page(fill=5_000), "no text", id="grey-boxes-only"),
        pytest.param(_page(text_px=2_000, fill=1_000), "no chart", id="text-only"),
    ],
)
def test_blank_page_check_catches_blank_renders(page: np.ndarray, problem: str) -> None:
    """The screenshot check rejects a white page, boxes without text, and text without charts."""
    assert problem in "; ".join(blank_page_problems(page))
    assert blank_page_problems(_page(text_px=1_500, chart_px=1_500)) == []


def test_report_html_parses_with_balanced_tags(report: Path) -> None:
    """The report is one HTML document that parses with every element closed, and has an h1."""
    text = report.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html>")
    checker = parse(text)
    assert checker.problems == [], "\n".join(checker.problems)
    assert checker.seen.get("h1", 0) >= 1, "the report has no <h1>"
    assert "".join(checker.h1_text).strip(), "the report's <h1> is empty"


def test_report_images_are_embedded_pngs_and_nothing_is_fetched(report: Path) -> None:
    """Every <img> is a base64 PNG data URI PIL decodes, ≥ 400 px wide; nothing loads from outside.

    Offline means no src/href to http(s), a protocol-relative //host, or any other file: only
    data: URIs and #fragments, and no CSS url() or @import that is not a data: URI.
    """
    checker = parse(report.read_text(encoding="utf-8"))
    assert checker.img_srcs, "the report has no <img> (the fixture's scenario draws every chart)"
    for i, src in enumerate(checker.img_srcs):
        assert src.startswith(DATA_PNG), f"<img> #{i} src is not a PNG data URI: {src[:60]!r}"
        try:
            png = base64.b64decode(src.removeprefix(DATA_PNG), validate=True)
        except binascii.Error as e:
            pytest.fail(f"<img> #{i}: base64 does not decode: {e}")
        assert png.startswith(PNG_SIGNATURE), f"<img> #{i} is not a PNG: {png[:8]!r}"
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG"
            image.load()  # decodes every pixel: a truncated or corrupt PNG raises here
            assert image.width >= CHART_MIN_WIDTH_PX, f"<img> #{i} is {image.size}, too small"
    outside = [
        f"<{tag} {name}={value[:60]!r}> on line {line}"
        for tag, name, value, line in checker.fetches
        if not value.startswith(("data:", "#"))
    ]
    assert outside == [], "the report loads from outside itself:\n" + "\n".join(outside)
    css = "".join(checker.style_text)
    assert not re.search(r"@import|url\(\s*['\"]?(?!data:)", css), "CSS loads from outside"


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    """Chromium renders the report's first 1280x2000 px with text and charts, not a blank page."""
    browser = find_browser()
    shot = tmp_path / "shot.png"
    done = run_browser(browser, report, tmp_path, f"--screenshot={shot}")
    assert done.returncode == 0 and shot.is_file(), (
        f"{browser} exited {done.returncode} without a screenshot:\n{done.stdout[-2000:]}"
    )
    if keep := os.environ.get("FANSIM_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / f"{report.stem}-first-screen.png")
    with Image.open(shot) as image:
        image.load()
        assert image.size == WINDOW_PX
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    problems = blank_page_problems(pixels)
    assert problems == [], f"{shot.name}: " + "; ".join(problems)


def test_report_prints_to_pdf(report: Path, tmp_path: Path) -> None:
    """Chromium prints the report to a PDF, so it can be printed or attached as a document."""
    browser = find_browser()
    pdf = tmp_path / "report.pdf"
    done = run_browser(browser, report, tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert done.returncode == 0 and pdf.is_file(), (
        f"{browser} exited {done.returncode} without a PDF:\n{done.stdout[-2000:]}"
    )
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 10_000, f"not a PDF: {data[:16]!r}"


# Every column of the per-service table in use: pools with a queue limit (rejections), errors,
# and a step with timeouts, retries and a hedge (13 columns).
WIDE_YAML = """\
name: wide-table
duration_s: 3
warmup_s: 0.5
seed: 1
workload: {rps: 400, arrivals: poisson}
request:
  steps:
    - call: [frontend-aggregator, recommendations-service]
      timeout_ms: 30
      retries: {max: 2}
      hedge: {after_ms: 10}
services:
  frontend-aggregator:
    latency: {dist: lognormal, p50_ms: 3, p99_ms: 40}
    workers: 3
    queue_limit: 2
    error_rate: 0.01
  recommendations-service:
    latency: {dist: exponential, mean_ms: 5}
    workers: 4
"""
# Reports the tables wider than their box, once the page has laid out (read by --dump-dom).
OVERFLOW_PROBE = """<script>
window.addEventListener('load', () => {
  const wide = [];
  for (const table of document.querySelectorAll('table')) {
    const box = table.closest('.scroll') || table.parentElement;
    if (table.scrollWidth > box.clientWidth + 1) {
      const where = (table.closest('section') || {}).id || '?';
      wide.push(where + ': ' + table.scrollWidth + ' px in ' + box.clientWidth + ' px');
    }
  }
  document.body.setAttribute('data-wide-tables', wide.join('; ') || 'none');
});
</script>"""


def wide_tables(browser: str, page: Path, work: Path) -> str:
    """The tables of ``page`` that overflow their box at the test window's width."""
    probe = work / f"probe-{page.name}"
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", OVERFLOW_PROBE + "</body>"))
    done = run_browser(browser, probe, work, "--dump-dom")
    found = re.search(r'data-wide-tables="([^"]*)"', done.stdout)
    assert found, f"the probe did not run:\n{done.stdout[-2000:]}"
    return html.unescape(found.group(1))


def test_no_table_overflows_its_box(report: Path, tmp_path: Path) -> None:
    """At 1280 px every table of the run report and the comparison shows all its columns
    (none scrolls sideways), also for a scenario that fills all 13 per-service columns."""
    browser = find_browser()
    wide = tmp_path / "wide.yaml"
    wide.write_text(WIDE_YAML)
    _fansim("run", str(wide), "--out", str(tmp_path / "wide"), "-q")
    for page in (report, tmp_path / "wide" / "report.html"):
        assert wide_tables(browser, page, tmp_path) == "none", page
    text = (tmp_path / "wide" / "report.html").read_text(encoding="utf-8")
    for heading in ("Rejected", "Errors", "Timeouts", "Retries", "Hedges", "p99 ms"):
        assert f">{heading}</th>" in text
