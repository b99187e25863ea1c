"""Traces in: build a scenario from OpenTelemetry (OTLP JSON), Jaeger or Zipkin v2 traces.

``fansim import`` reads the files (``read``), turns each trace into a call tree (``calls``),
infers per service its steps, fan-outs, repeats, policies, error rate and own times
(``infer``), fits the latency distributions (``fit``) and writes a commented scenario
(``write``). Traces out (``fansim run --traces``) are ``simulator.results.traces``.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..results.files import write_atomic
from ..results.provenance import fansim_version
from ..scenario.errors import ScenarioError
from ..scenario.loader import load_scenario
from .calls import build_requests
from .infer import arrival_rps, infer
from .read import FORMATS, TraceError, read_traces
from .write import Written, scenario_name, write_scenario

__all__ = ["ImportResult", "TraceError", "import_traces"]


@dataclass
class ImportResult:
    """A scenario built from traces: its text and empirical files (``written``), where it is
    to go (``out``), how many traces were used and skipped, and the formats read."""

    written: Written
    out: Path
    requests: int
    skipped: Counter  # bad traces by reason
    formats: list[str]

    def write(self) -> list[Path]:
        """Load the scenario from a scratch directory first (what is written must run), then
        write the latency files and the scenario, each atomically; return their paths.
        ``TraceError`` when it would not load or cannot be written: nothing is written then."""
        files = {name: "".join(f"{v:.6g}\n" for v in samples)
                 for name, samples in self.written.files.items()}  # fmt: skip
        with tempfile.TemporaryDirectory() as scratch:
            trial = Path(scratch) / self.out.name
            for name, text in files.items():
                (Path(scratch) / name).write_text(text)
            trial.write_text(self.written.text)
            try:
                load_scenario(trial)
            except ScenarioError as e:
                why = str(e).replace(str(trial), str(self.out))
                raise TraceError(
                    f"{self.out}: the imported scenario is invalid (a bug): {why}"
                ) from None
        try:
            paths = [write_atomic(self.out.parent / name, text) for name, text in files.items()]
            paths.append(write_atomic(self.out, self.written.text))
        except OSError as e:
            raise TraceError(f"{self.out}: cannot write the scenario: {e.strerror}") from None
        return paths

    def report(self) -> list[str]:
        """What ``fansim import`` prints: what was read and skipped, what to check, what was
        written and what to run next."""
        skipped = ", ".join(f"{n:,} {why}" for why, n in self.skipped.most_common())
        lines = [
            f"read {self.requests:,} traces ({', '.join(sorted(set(self.formats)))})"
            + (f"; skipped {sum(self.skipped.values()):,} bad ones: {skipped}" if skipped else "")
        ]
        lines += [f"check: {note}" for note in self.written.notes]
        files = len(self.written.files)
        extra = f" and {files} latency file{'s' * (files != 1)}" if files else ""
        return lines + [f"wrote {self.out}{extra}; next: fansim run {self.out}"]


def import_traces(
    paths: list[Path], fmt: str | None = None, out: Path = Path("imported.yaml")
) -> ImportResult:
    """Build the scenario for ``paths`` to be written as ``out`` (its name and its CSV files'
    names come from it): ``.write()`` writes them. Raises ``TraceError`` for unreadable
    files or no usable trace."""
    out = Path(out)
    if fmt is not None and fmt not in FORMATS:
        raise TraceError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")

    spans, formats = read_traces(paths, fmt)
    requests, skipped = build_requests(spans)
    if not requests:
        reasons = ", ".join(f"{n} {why}" for why, n in skipped.most_common()) or "no spans"
        raise TraceError(f"{paths[0]}: no usable trace ({reasons})")
    rps, ratio = arrival_rps(requests)
    sources = ", ".join(f"{p.name} ({f})" for p, f in zip(paths, formats, strict=True))
    try:
        written = write_scenario(
            infer(requests),
            name=scenario_name(out.stem),
            sources=sources,
            rps=rps,
            ratio=ratio,
            requests=len(requests),
            skipped=skipped,
            file_prefix=f"{out.stem}-",
            version=fansim_version(),
        )
    except ValueError as e:
        raise TraceError(f"{paths[0]}: {e}") from None
    return ImportResult(written, out, len(requests), skipped, formats)
