"""Traces in: build a scenario from OpenTelemetry (OTLP JSON), Jaeger or Zipkin v2 traces.

``fansim import`` reads the files (``read``), turns each trace into a call tree (``calls``),
infers per service its steps, fan-outs, repeats, policies, error rate and own times
(``infer``), fits the latency distributions (``fit``) and writes a commented scenario
(``write``). Traces out (``fansim run --traces``) are ``simulator.results.traces``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .calls import build_requests
from .infer import arrival_rps, infer
from .read import TraceError, read_traces
from .write import Written, scenario_name, write_scenario

__all__ = ["ImportResult", "TraceError", "import_traces"]


@dataclass
class ImportResult:
    """A scenario built from traces: its text and empirical files (``written``), how many
    traces were used and skipped, and the formats read."""

    written: Written
    requests: int
    skipped: Counter  # bad traces by reason
    formats: list[str]


def import_traces(
    paths: list[Path], fmt: str | None = None, out: Path = Path("imported.yaml")
) -> ImportResult:
    """Build the scenario for ``paths`` to be written as ``out`` (its name and its CSV files'
    names come from it). Raises ``TraceError`` for unreadable files or no usable trace."""
    from .. import __version__

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
            version=__version__,
        )
    except ValueError as e:
        raise TraceError(f"{paths[0]}: {e}") from None
    return ImportResult(written, len(requests), skipped, formats)
